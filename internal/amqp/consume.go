package amqp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// consume is basic.consume: the consumer is added not yet started (its
// queue sees it busy), consume-ok goes out, and only then may deliveries
// follow, so a client always learns its consumer tag first.
func (ch *channel) consume(m *wire.BasicConsume) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = newConsumerTag()
	}
	ch.mu.Lock()
	_, dup := ch.consumers[tag]
	_, dupStream := ch.streams[tag]
	dup = dup || dupStream || ch.direct != nil && ch.direct.tag == tag
	ch.mu.Unlock()
	if dup {
		return newCloseError(wire.ReplyNotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	if name == replyQueue {
		return ch.consumeReply(m, tag)
	}
	var priority int64
	if v, ok := m.Arguments["x-priority"]; ok {
		p, ok := tableInt(v)
		if !ok {
			return newCloseError(wire.ReplyPreconditionFailed, "invalid arg 'x-priority' for consumer '%s': expected an integer", tag)
		}
		priority = p
	}
	if s, ok, err := ch.c.b.Stream(ch.c.vhost, ch.c.id, name); err != nil {
		return err
	} else if ok {
		return ch.consumeStream(m, tag, s)
	}
	q, err := ch.c.b.Queue(ch.c.vhost, ch.c.id, name)
	if err != nil {
		return err
	}
	cs := &consumer{q: q}
	bc := &broker.Consumer{Tag: tag, NoAck: m.NoAck, Exclusive: m.Exclusive, Priority: priority, Channel: ch.shared}
	if ch.prefetch > 0 {
		bc.Limit = broker.NewCredit(ch.prefetch)
	}
	bc.Busy = func() bool { return !cs.started.Load() || ch.flowOff.Load() || ch.c.busy() }
	timeout := consumerTimeoutArg(m.Arguments)
	bc.Deliver = func(d broker.Delivery) { ch.deliver(tag, d, timeout) }
	bc.Cancelled = func() { ch.queueGone(tag) }
	cs.bc = bc
	ch.mu.Lock()
	ch.consumers[tag] = cs
	ch.mu.Unlock()
	if err := q.Consume(bc); err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		return err
	}
	if !m.NoWait {
		if err := ch.c.sendMethod(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag}); err != nil {
			return err
		}
	}
	cs.started.Store(true)
	q.Kick()
	return nil
}

// deliver sends a delivery to a consumer whose own consumer timeout is
// timeout (-1: none, see timeout.go). Queues call it with their lock held;
// it takes only the channel's lock and the outbox's.
func (ch *channel) deliver(tag string, d broker.Delivery, timeout int64) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.nextTag++
	dt := ch.nextTag
	if !d.Consumer.NoAck {
		ch.unacked.add(dt, d, ch.c.s.opts.Now().UnixMilli(), ch.c.deliveryTimeout(d.Queue, timeout))
	}
	msg := d.Message
	err := ch.c.sendMessage(ch.id, &wire.BasicDeliver{ConsumerTag: tag, DeliveryTag: dt, Redelivered: d.Redelivered, Exchange: msg.Exchange, RoutingKey: msg.RoutingKey}, msg.Properties, msg.Body)
	if err != nil && err != errConnClosed {
		ch.c.logger.Error("encoding a delivery", "queue", d.Queue.Name, "err", err)
	}
}

// queueGone is a consumer's queue being deleted: the consumer goes, and a
// client that understands it is told with basic.cancel.
func (ch *channel) queueGone(tag string) {
	ch.mu.Lock()
	_, ok := ch.consumers[tag]
	delete(ch.consumers, tag)
	closed := ch.closed
	ch.mu.Unlock()
	if ok && !closed && ch.c.cancelNotify {
		ch.c.sendMethod(ch.id, &wire.BasicCancel{ConsumerTag: tag, NoWait: true})
	}
}

// cancel is basic.cancel. Cancelling an unknown tag succeeds, as in
// RabbitMQ.
func (ch *channel) cancel(m *wire.BasicCancel) error {
	if ch.direct != nil && ch.direct.tag == m.ConsumerTag {
		ch.cancelReply()
		return ch.reply(m.NoWait, &wire.BasicCancelOk{ConsumerTag: m.ConsumerTag})
	}
	if ch.cancelStream(m.ConsumerTag) {
		return ch.reply(m.NoWait, &wire.BasicCancelOk{ConsumerTag: m.ConsumerTag})
	}
	ch.mu.Lock()
	cs, ok := ch.consumers[m.ConsumerTag]
	delete(ch.consumers, m.ConsumerTag)
	ch.mu.Unlock()
	if ok {
		if err := ch.c.b.CancelConsumer(context.Background(), cs.q, cs.bc); err != nil {
			return err
		}
	}
	if m.NoWait {
		return nil
	}
	return ch.c.sendMethod(ch.id, &wire.BasicCancelOk{ConsumerTag: m.ConsumerTag})
}

// getDurableWait bounds how long basic.get waits for the next message's
// fsync (a stored message is handed out only once durable) before it
// answers get-empty; it stays under half the shortest heartbeat interval.
const getDurableWait = 5 * time.Second

// get is basic.get: get-ok with the next message, or get-empty.
func (ch *channel) get(m *wire.BasicGet) error {
	if name, err := ch.queueName(m.Queue); err == nil {
		if s, ok, _ := ch.c.b.Stream(ch.c.vhost, ch.c.id, name); ok {
			return streamGetRefused(s)
		}
	}
	q, err := ch.queue(m.Queue)
	if err != nil {
		return err
	}
	wait := getDurableWait
	if hb := ch.c.heartbeat; hb > 0 {
		wait = min(wait, hb/2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	d, ok := q.Get(ctx, m.NoAck)
	cancel()
	if !ok {
		return ch.c.sendMethod(ch.id, &wire.BasicGetEmpty{})
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.nextTag++
	dt := ch.nextTag
	if !m.NoAck {
		ch.unacked.add(dt, d, ch.c.s.opts.Now().UnixMilli(), ch.c.deliveryTimeout(q, -1))
	}
	msg := d.Message
	return ch.c.sendMessage(ch.id, &wire.BasicGetOk{DeliveryTag: dt, Redelivered: d.Redelivered, Exchange: msg.Exchange, RoutingKey: msg.RoutingKey, MessageCount: uint32(d.Remaining)}, msg.Properties, msg.Body)
}

// qos is basic.qos with RabbitMQ's meaning: global=false sets the limit of
// each consumer created afterwards on the channel, global=true one limit
// shared by all the channel's consumers. prefetch_size is not supported,
// as in RabbitMQ.
func (ch *channel) qos(m *wire.BasicQos) error {
	if m.PrefetchSize != 0 {
		return newCloseError(wire.ReplyNotImplemented, "prefetch_size!=0 (%d)", m.PrefetchSize)
	}
	if m.Global {
		ch.shared.SetLimit(int(m.PrefetchCount))
	} else {
		ch.prefetch = int(m.PrefetchCount)
	}
	if err := ch.c.sendMethod(ch.id, &wire.BasicQosOk{}); err != nil {
		return err
	}
	ch.kickQueues()
	return nil
}

// newConsumerTag makes a server-generated consumer tag, as RabbitMQ does.
func newConsumerTag() string {
	var r [16]byte
	rand.Read(r[:])
	return "amq.ctag-" + base64.RawURLEncoding.EncodeToString(r[:])
}

// tableInt reads any integer field-table value.
func tableInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case uint8:
		return int64(n), true
	case int16:
		return int64(n), true
	case uint16:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}
