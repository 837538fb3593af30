package amqp

import (
	"time"

	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// Consumer timeouts, as RabbitMQ's consumer_timeout: a delivery that needs
// an acknowledgement (to a consumer or basic.get) and stays
// unacknowledged longer than its queue's x-consumer-timeout, or else the
// server's Options.ConsumerTimeout, closes its channel with 406
// PRECONDITION_FAILED; the channel's unacknowledged messages go back to
// their queues, redelivered. Deliveries are checked every
// Options.ConsumerTimeoutCheck on the server's clock (Options.Now), as
// RabbitMQ checks periodically, so a timeout fires up to one check
// interval late.

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
	def := ch.c.s.opts.ConsumerTimeout
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
		timeout, ok := e.d.Queue.ConsumerTimeout()
		if !ok {
			if def <= 0 {
				continue
			}
			timeout = def
		}
		if ms := timeout.Milliseconds(); now-e.at > ms {
			return ms, true
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
