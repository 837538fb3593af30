package broker

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// The AMQP model: virtual hosts, exchanges, queues and bindings, with
// RabbitMQ's semantics, independent of any wire protocol. The AMQP 0-9-1
// adapter (and later the REST gateway) drive it through the Broker methods
// in amqp_broker.go; it never sees a frame.
//
// Everything in it is metadata kept in the State and changed only by
// commands (AMQPChange, amqp_commands.go). Messages are not stored here yet.
//
// # Durability
//
// A durable exchange, a durable queue, and a binding whose source and
// destination are both durable survive a restart; everything else does not
// (exclusive queues are never durable, as in RabbitMQ). The command log
// holds exactly the changes to durable objects: each AMQPChange is split
// into steps, a step that creates, deletes, binds or unbinds only durable
// things (vhosts always are) is appended to the log, and a step about a
// transient thing is applied to the State without being logged. The
// invariant is that replaying the log gives the durable part of the live
// State: for every prefix of the log, replay(prefix) equals the live State
// after it with every transient exchange, transient queue and binding
// involving one removed. It holds because
//
//   - a logged step names only durable objects, so it finds on replay
//     everything it found live;
//   - deleting an object removes its bindings, durable or not, and the
//     durable ones are the same live and on replay;
//   - effects that depend on transient state (an auto-delete exchange
//     losing its last binding to a transient queue) are decided before the
//     command is made and written as explicit steps (DeleteExchange of the
//     auto-deleted exchange), never inferred during Apply.
//
// A restart therefore needs no clean-up pass: transient objects were never
// in the log. A durable auto-delete exchange whose only bindings were
// transient comes back with no bindings; like a new one, it is deleted when
// a binding it later gets is removed. Transient objects live only in this
// node's memory, as RabbitMQ's transient queues live on their node, and
// cost no log write (an exclusive queue per connection is common).
// Replaying gives the same objects and bindings; the order of bindings
// inside a routing index may differ, which changes only the order of
// Route's result, never its set.
//
// # Errors
//
// Refusals are *ModelError values whose Kind is one of the sentinels below
// (test with errors.Is) and whose text is RabbitMQ's reply text, so the
// adapter can send "PRECONDITION_FAILED - " + err.Error() unchanged.

// Sentinel kinds of model errors and the AMQP reply codes they stand for.
var (
	ErrNotFound           = errors.New("not found")           // 404 NOT_FOUND
	ErrAccessRefused      = errors.New("access refused")      // 403 ACCESS_REFUSED
	ErrResourceLocked     = errors.New("resource locked")     // 405 RESOURCE_LOCKED
	ErrPreconditionFailed = errors.New("precondition failed") // 406 PRECONDITION_FAILED
	ErrNotImplemented     = errors.New("not implemented")     // 540 NOT_IMPLEMENTED
	// ErrVhostNotFound is 530 NOT_ALLOWED when a connection opens an
	// unknown vhost, and 404 for vhost operations.
	ErrVhostNotFound = errors.New("vhost not found")
	ErrVhostExists   = errors.New("vhost already exists")
)

// ModelError is a refusal of the AMQP model: Kind is one of the sentinel
// errors above, Text is the reply text as RabbitMQ words it.
type ModelError struct {
	Kind error
	Text string
}

func (e *ModelError) Error() string { return e.Text }

// Unwrap returns the sentinel kind.
func (e *ModelError) Unwrap() error { return e.Kind }

func modelErr(kind error, format string, args ...any) error {
	return &ModelError{Kind: kind, Text: fmt.Sprintf(format, args...)}
}

// rs names a resource the way RabbitMQ's messages do: "queue 'q' in vhost '/'".
func rs(kind, vhost, name string) string {
	return fmt.Sprintf("%s '%s' in vhost '%s'", kind, name, vhost)
}

// DefaultVhost is the vhost every broker starts with.
const DefaultVhost = "/"

// ExchangeType is an exchange's routing algorithm.
type ExchangeType string

// The exchange types.
const (
	ExchangeDirect  ExchangeType = "direct"
	ExchangeFanout  ExchangeType = "fanout"
	ExchangeTopic   ExchangeType = "topic"
	ExchangeHeaders ExchangeType = "headers"
)

func (t ExchangeType) valid() bool {
	switch t {
	case ExchangeDirect, ExchangeFanout, ExchangeTopic, ExchangeHeaders:
		return true
	}
	return false
}

// predeclaredExchange is an exchange every vhost has.
type predeclaredExchange struct {
	name string
	typ  ExchangeType
}

// predeclaredExchanges lists the exchanges every vhost has: the default
// exchange "" and the amq.* ones, all durable.
func predeclaredExchanges() [6]predeclaredExchange {
	return [6]predeclaredExchange{
		{"", ExchangeDirect},
		{"amq.direct", ExchangeDirect},
		{"amq.fanout", ExchangeFanout},
		{"amq.topic", ExchangeTopic},
		{"amq.headers", ExchangeHeaders},
		{"amq.match", ExchangeHeaders},
	}
}

// ArgAlternateExchange is the exchange argument naming the exchange that
// gets the messages this one routes nowhere.
const ArgAlternateExchange = "alternate-exchange"

// ExchangeSpec is an exchange.declare.
type ExchangeSpec struct {
	Name string
	// Type is the exchange type as the client named it ("direct", ...).
	Type string
	// Passive only checks that the exchange exists.
	Passive    bool
	Durable    bool
	AutoDelete bool
	// Internal exchanges cannot be published to, only routed through.
	Internal  bool
	Arguments Table
}

// ExchangeInfo describes an exchange.
type ExchangeInfo struct {
	Vhost      string
	Name       string
	Type       ExchangeType
	Durable    bool
	AutoDelete bool
	Internal   bool
	Arguments  Table
	// AlternateExchange is the alternate-exchange argument, "" if none.
	AlternateExchange string
}

// QueueID is a queue's 16-byte unique id: it tells a queue from an earlier
// one of the same name, as a TopicID does for topics.
type QueueID [16]byte

// String returns the id in hex.
func (id QueueID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id in hex.
func (id QueueID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex id.
func (id *QueueID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("queue id %q: want %d hex digits", b, 2*len(id))
	}
	_, err := hex.Decode(id[:], b)
	return err
}

// QueueType is a queue's x-queue-type: it decides which arguments the
// queue accepts; classic and quorum queues behave alike for now, a stream
// queue is a log read by offset (stream.go).
type QueueType string

// The queue types.
const (
	QueueClassic QueueType = "classic"
	QueueQuorum  QueueType = "quorum"
	QueueStream  QueueType = "stream"
)

// ServerNamedQueuePrefix starts the names the broker gives queues declared
// with an empty name.
const ServerNamedQueuePrefix = "amq.gen-"

// QueueSpec is a queue.declare. The connection declaring it is passed
// separately.
type QueueSpec struct {
	// Name is the queue name; empty asks the broker for a name.
	Name string
	// Passive only checks that the queue exists (and is not another
	// connection's exclusive queue).
	Passive bool
	Durable bool
	// Exclusive makes the queue belong to the declaring connection: only it
	// may use the queue, and it is deleted when the connection closes.
	Exclusive bool
	// AutoDelete deletes the queue when its last consumer goes (see
	// Broker.QueueUnused).
	AutoDelete bool
	Arguments  Table
}

// QueueInfo describes a queue.
type QueueInfo struct {
	Vhost      string
	Name       string
	ID         QueueID
	Type       QueueType
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	// Owner is the connection an exclusive queue belongs to.
	Owner     string
	Arguments Table
}

// QueueRef names a queue a message was routed to.
type QueueRef struct {
	Name string
	ID   QueueID
}

// QueueDeleteCheck carries queue.delete's conditions and the delivery state
// they are checked against, which the caller knows and the model does not.
type QueueDeleteCheck struct {
	IfUnused     bool // refuse to delete a queue that has consumers
	IfEmpty      bool // refuse to delete a queue that has messages
	HasConsumers bool
	HasMessages  bool
}

// BindingSpec is a queue.bind, queue.unbind, exchange.bind or
// exchange.unbind.
type BindingSpec struct {
	// Source is the exchange messages come from.
	Source string
	// Destination is the queue or exchange they go to.
	Destination string
	RoutingKey  string
	Arguments   Table
}

// BindingInfo describes a binding.
type BindingInfo struct {
	Vhost       string
	Source      string
	Destination string
	// DestinationIsExchange tells an exchange-to-exchange binding.
	DestinationIsExchange bool
	RoutingKey            string
	Arguments             Table
}
