package service

import (
	"context"
	"fmt"
	"time"

	"github.com/wharfmq/wharf/internal/amqp/tables"
	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// Publishing is a message to publish to an exchange, as basic.publish
// carries it. Headers, when not nil, are both the message's headers and
// what a headers exchange routes on.
type Publishing struct {
	Vhost      string
	Exchange   string
	RoutingKey string
	Properties wire.Properties
	Body       []byte
	Mandatory  bool
}

// Publish routes a message through an exchange and returns the number of
// queues it reached once it is durable in every durable queue it was
// stored in (persistent messages, delivery mode 2), as a publisher
// confirm does. A mandatory message that reaches no queue is an error.
func (s *Service) Publish(ctx context.Context, p Publishing) (int, error) {
	res, err := s.Route(p)
	if err != nil {
		return 0, err
	}
	if err := res.Wait(ctx); err != nil {
		return 0, AsError(fmt.Errorf("waiting for the message to be durable: %w", err))
	}
	return res.Routed, nil
}

// Route is Publish without the wait: the message is in its queues when it
// returns, and the result's Wait says when it is durable.
func (s *Service) Route(p Publishing) (broker.PublishResult, error) {
	if err := s.b.Alarms().Err(); err != nil {
		return broker.PublishResult{}, AsError(err)
	}
	if len(p.Body) > s.opts.MaxMessageBytes {
		return broker.PublishResult{}, Errorf(CodeTooLarge, "message body of %d bytes is larger than the limit of %d", len(p.Body), s.opts.MaxMessageBytes)
	}
	vhost := p.Vhost
	if vhost == "" {
		vhost = broker.DefaultVhost
	}
	x, ok := s.b.LookupExchange(vhost, p.Exchange)
	if !ok {
		return broker.PublishResult{}, Errorf(CodeNotFound, "no exchange '%s' in vhost '%s'", p.Exchange, vhost)
	}
	if x.Internal {
		return broker.PublishResult{}, Errorf(CodeForbidden, "cannot publish to internal exchange '%s' in vhost '%s'", p.Exchange, vhost)
	}
	// Sender-selected distribution, as for an AMQP publish: CC and BCC
	// headers add routing keys, and BCC is not delivered.
	keys, bcc := tables.RoutingKeys(p.RoutingKey, p.Properties.Headers)
	stored := p.Properties
	if bcc {
		stored.Headers = tables.WithoutBCC(p.Properties.Headers)
	}
	props, err := wire.EncodeProperties(&stored)
	if err != nil {
		return broker.PublishResult{}, Errorf(CodeInvalid, "message properties: %v", err)
	}
	msg := &broker.Message{
		Exchange:   p.Exchange,
		RoutingKey: p.RoutingKey,
		Properties: props,
		Body:       p.Body,
		Persistent: p.Properties.DeliveryMode == 2,
		Timestamp:  s.opts.Now().UnixMilli(),
	}
	res, err := s.b.Publish(vhost, p.Exchange, keys, tables.ToBroker(p.Properties.Headers), msg)
	if err != nil {
		return broker.PublishResult{}, AsError(err)
	}
	if res.Routed == 0 && p.Mandatory && !res.Duplicate {
		return broker.PublishResult{}, Errorf(CodeNotFound, "NO_ROUTE: exchange '%s' in vhost '%s' routed the message to no queue", p.Exchange, vhost)
	}
	return res, nil
}

// Message is a message taken from a queue, with its properties decoded.
type Message struct {
	Exchange    string
	RoutingKey  string
	Redelivered bool
	Properties  wire.Properties
	Body        []byte
	// Remaining is, for Get, the number of messages left ready.
	Remaining int
}

// DecodeMessage decodes a delivery's message.
func DecodeMessage(d broker.Delivery) (Message, error) {
	props, err := wire.DecodeProperties(d.Message.Properties)
	if err != nil {
		return Message{}, fmt.Errorf("decoding the properties of a message from %s: %w", d.Queue, err)
	}
	return Message{
		Exchange: d.Message.Exchange, RoutingKey: d.Message.RoutingKey, Redelivered: d.Redelivered,
		Properties: props, Body: d.Message.Body, Remaining: d.Remaining,
	}, nil
}

// Ack modes of Get, RabbitMQ management's names.
const (
	AckRequeueFalse    = "ack_requeue_false"    // settled: the message is gone
	AckRequeueTrue     = "ack_requeue_true"     // looked at and put back, redelivered
	RejectRequeueFalse = "reject_requeue_false" // rejected: the message is gone
	RejectRequeueTrue  = "reject_requeue_true"  // rejected and put back, redelivered
)

// getDurableWait bounds how long Get waits for stored messages to become
// durable (they are handed out only then) before it returns what it has.
const getDurableWait = 5 * time.Second

// Get takes up to count messages from a queue (basic.get), settling each
// as mode says. owner is the connection id for exclusive queues ("" for
// none). A message still waiting for its fsync is waited for, at most
// getDurableWait.
func (s *Service) Get(ctx context.Context, vhost, queue, owner string, count int, mode string) ([]Message, error) {
	ctx, cancel := context.WithTimeout(ctx, getDurableWait)
	defer cancel()
	if vhost == "" {
		vhost = broker.DefaultVhost
	}
	switch mode {
	case AckRequeueFalse, AckRequeueTrue, RejectRequeueFalse, RejectRequeueTrue:
	default:
		return nil, Errorf(CodeInvalid, "ack mode %q: give %s, %s, %s or %s", mode, AckRequeueFalse, AckRequeueTrue, RejectRequeueFalse, RejectRequeueTrue)
	}
	if count < 1 || count > 10000 {
		return nil, Errorf(CodeInvalid, "count %d: give 1 to 10000", count)
	}
	q, err := s.b.Queue(vhost, owner, queue)
	if err != nil {
		return nil, AsError(err)
	}
	var out []Message
	var taken []broker.Delivery
	for range count {
		noAck := mode == AckRequeueFalse
		d, ok := q.Get(ctx, noAck)
		if !ok {
			break
		}
		m, err := DecodeMessage(d)
		if err != nil {
			s.logger.Error("a queued message has undecodable properties", "vhost", vhost, "queue", queue, "err", err)
		}
		out = append(out, m)
		if !noAck {
			taken = append(taken, d)
		}
	}
	switch mode {
	case AckRequeueTrue, RejectRequeueTrue:
		q.Requeue(taken)
	case RejectRequeueFalse:
		q.Discard(taken)
	}
	// Messages handed out for good are settled on disk before the answer:
	// they do not come back after a crash once the client has them.
	if len(out) > 0 && (mode == AckRequeueFalse || mode == RejectRequeueFalse) {
		if err := q.PersistSettlements(); err != nil {
			return nil, AsError(err)
		}
	}
	return out, nil
}
