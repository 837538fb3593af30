package amqp

import (
	"time"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// Consumer timeouts, as RabbitMQ's consumer_timeout: a delivery that needs
// an acknowledgement (to a consumer or basic.get) and stays
// unacknowledged longer than its timeout closes its channel with 406
// PRECONDITION_FAILED; the channel's unacknowledged messages go back to
// their queues, redelivered. Deliveries are checked every
// Options.ConsumerTimeoutCheck on the server's clock (Options.Now), as
// RabbitMQ checks periodically, so a timeout fires up to one check
// interval late. A delivery's timeout is fixed when it goes out, with
// RabbitMQ's precedence: the consumer's x-consumer-timeout argument of
// basic.consume, else its queue's x-consumer-timeout, else the server's
// Options.ConsumerTimeout (none when zero). A consumer argument that is not
// a non-negative integer is ignored.

// consumerTimeoutArg reads a basic.consume's x-consumer-timeout argument,
// in milliseconds; -1 when it has none.
func consumerTimeoutArg(args map[string]any) int64 {
	v, ok := tableInt(args["x-consumer-timeout"])
	if !ok || v < 0 {
		return -1
	}
	return v
}

// deliveryTimeout is the timeout of a delivery from q to a consumer whose
// own timeout is consumer (-1: none, as for basic.get), in milliseconds;
// -1 for none.
func (c *conn) deliveryTimeout(q *broker.Queue, consumer int64) int64 {
	if consumer >= 0 {
		return consumer
	}
	if t, ok := q.ConsumerTimeout(); ok {
		return t.Milliseconds()
	}
	if def := c.s.opts.ConsumerTimeout; def > 0 {
		return def.Milliseconds()
	}
	return -1
}

// consumerTimeoutLoop checks the connection's deliveries until it ends.
func (c *conn) consumerTimeoutLoop() {
	t := time.NewTicker(c.s.opts.ConsumerTimeoutCheck)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		if c.closing.Load() {
			continue
		}
		now := c.s.opts.Now().UnixMilli()
		for _, ch := range c.openChannels() {
			if timeout, ok := ch.timedOut(now); ok {
				ch.closeTimedOut(timeout)
			}
		}
	}
}

// timedOut reports whether a delivery on the channel has waited for its
// acknowledgement longer than its timeout, and that timeout in
// milliseconds.
func (ch *channel) timedOut(now int64) (int64, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return 0, false
	}
	u := &ch.unacked
	for i := u.head; i < len(u.items); i++ {
		e := &u.items[i]
		if !e.live {
			continue
		}
		if e.timeout >= 0 && now-e.at > e.timeout {
			return e.timeout, true
		}
	}
	return 0, false
}

// closeTimedOut closes the channel for a delivery acknowledgement timeout,
// with RabbitMQ's text: its consumers are cancelled and its
// unacknowledged messages requeued.
func (ch *channel) closeTimedOut(timeout int64) {
	ch.rmu.Lock()
	defer ch.rmu.Unlock()
	if ch.closing || ch.c.closing.Load() {
		return
	}
	e := newCloseError(wire.ReplyPreconditionFailed, "delivery acknowledgement on channel %d timed out. Timeout value used: %d ms. "+
		"This timeout value can be configured, see consumers doc guide to learn more", ch.id, timeout)
	ch.c.logger.Warn("closing channel: a delivery was not acknowledged in time", "channel", ch.id, "timeout_ms", timeout)
	ch.closing = true
	ch.teardown()
	ch.c.sendMethod(ch.id, &wire.ChannelClose{ReplyCode: e.code, ReplyText: e.text})
}
