package amqp

import (
	"strings"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
)

// Permissions, as RabbitMQ checks them for AMQP 0-9-1 (the user's
// configure, write and read expressions in the connection's vhost; see
// internal/auth):
//
//	connection.open                  some permission in the vhost (else 530)
//	exchange.declare, exchange.delete  configure on the exchange
//	queue.declare, queue.delete      configure on the queue
//	queue.bind, queue.unbind         write on the queue, read on the exchange
//	exchange.bind, exchange.unbind   write on the destination, read on the source
//	queue.purge                      read on the queue
//	basic.publish                    write on the exchange
//	basic.consume, basic.get         read on the queue
//
// A passive declaration checks nothing but existence, as in RabbitMQ. The
// default exchange is named amq.default in these checks. A server-named
// queue is checked as "amq.gen-" (its name is made after the check).
// Direct reply-to (amq.rabbitmq.reply-to) is not a queue and needs no
// permission. A refusal closes the channel with 403 ACCESS_REFUSED and
// RabbitMQ's text; nothing is changed.

// defaultExchangeResource is the name the default exchange has in
// permission checks.
const defaultExchangeResource = "amq.default"

// accessNeed is one permission a method needs.
type accessNeed struct {
	access auth.Access
	kind   string // "exchange" or "queue"
	name   string
}

// checkAccess refuses a method the user may not run in the vhost.
func (ch *channel) checkAccess(m wire.Method) error {
	users := ch.c.s.opts.Users
	if users == nil {
		return nil
	}
	for _, n := range ch.accessNeeds(m) {
		if users.Allowed(ch.c.user, ch.c.vhost, n.access, n.name) {
			continue
		}
		return newCloseError(wire.ReplyAccessRefused, "access to %s '%s' in vhost '%s' refused for user '%s'",
			n.kind, n.name, ch.c.vhost, ch.c.user)
	}
	return nil
}

func exchangeResource(name string) string {
	if name == "" {
		return defaultExchangeResource
	}
	return name
}

// accessNeeds lists what a method needs; nothing for methods that touch
// no exchange or queue.
func (ch *channel) accessNeeds(m wire.Method) []accessNeed {
	q := func(a auth.Access, name string) accessNeed {
		if name == "" {
			name = ch.lastQueue
		}
		return accessNeed{a, "queue", name}
	}
	x := func(a auth.Access, name string) accessNeed { return accessNeed{a, "exchange", exchangeResource(name)} }
	switch m := m.(type) {
	case *wire.ExchangeDeclare:
		if !m.Passive {
			return []accessNeed{x(auth.Configure, m.Exchange)}
		}
	case *wire.ExchangeDelete:
		return []accessNeed{x(auth.Configure, m.Exchange)}
	case *wire.QueueDeclare:
		switch {
		case m.Passive || strings.HasPrefix(m.Queue, replyQueue):
		case m.Queue == "":
			return []accessNeed{{auth.Configure, "queue", broker.ServerNamedQueuePrefix}}
		default:
			return []accessNeed{q(auth.Configure, m.Queue)}
		}
	case *wire.QueueDelete:
		return []accessNeed{q(auth.Configure, m.Queue)}
	case *wire.QueueBind:
		name := m.Queue
		if name == "" && m.RoutingKey == "" {
			name = ch.lastQueue
		}
		return []accessNeed{q(auth.Write, name), x(auth.Read, m.Exchange)}
	case *wire.QueueUnbind:
		return []accessNeed{q(auth.Write, m.Queue), x(auth.Read, m.Exchange)}
	case *wire.ExchangeBind:
		return []accessNeed{x(auth.Write, m.Destination), x(auth.Read, m.Source)}
	case *wire.ExchangeUnbind:
		return []accessNeed{x(auth.Write, m.Destination), x(auth.Read, m.Source)}
	case *wire.QueuePurge:
		return []accessNeed{q(auth.Read, m.Queue)}
	case *wire.BasicPublish:
		return []accessNeed{x(auth.Write, m.Exchange)}
	case *wire.BasicConsume:
		if !strings.HasPrefix(m.Queue, replyQueue) {
			return []accessNeed{q(auth.Read, m.Queue)}
		}
	case *wire.BasicGet:
		return []accessNeed{q(auth.Read, m.Queue)}
	}
	return nil
}
