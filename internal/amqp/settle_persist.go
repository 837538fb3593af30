package amqp

import (
	"slices"

	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// An ack (or a reject without requeue) has no reply, so a client cannot
// tell when the server has it. What it can tell is that the server
// answered a later method on the same channel. So a channel writes the
// settlements it made to its queues' acks files before it answers
// anything after them: once a client has a reply to basic.get, basic.qos,
// channel.close, connection.close or any other method with a reply that it
// sent after its acks, those messages never come back, crash or not.
// Settlements with nothing answered after them are written by the queue's
// periodic flush (within a second) and may come back, redelivered, after a
// crash: at-least-once, as in RabbitMQ. Publisher confirms are not replies
// to the acks and do not wait for them. tx.commit writes its own.

// awaitsReply reports whether the server answers m: every method a client
// sends on a channel except publish and the settlements.
func awaitsReply(m wire.Method) bool {
	switch m.(type) {
	case *wire.BasicPublish, *wire.BasicAck, *wire.BasicNack, *wire.BasicReject, *wire.BasicRecoverAsync:
		return false
	}
	return true
}

// noteSettled remembers the queues of settled deliveries, for
// persistSettlements. Reader goroutine only.
func (ch *channel) noteSettled(ds []unackedEntry) {
	for _, e := range ds {
		if !slices.Contains(ch.unpersisted, e.d.Queue) {
			ch.unpersisted = append(ch.unpersisted, e.d.Queue)
		}
	}
}

// persistSettlements writes (and fsyncs) the settlements the channel made
// since the last call. A queue that cannot write them fails the connection
// with 541, as a failed tx.commit does: the client must not be told
// anything more on a channel whose acks may be lost.
func (ch *channel) persistSettlements() error {
	qs := ch.unpersisted
	ch.unpersisted = nil
	for _, q := range qs {
		if err := q.PersistSettlements(); err != nil {
			return newCloseError(wire.ReplyInternalError, "storing acknowledgements of queue '%s': %v", q.Name, err)
		}
	}
	return nil
}

// persistSettlements writes every channel's settlements, before
// connection.close-ok. Failures are logged: the connection is ending.
func (c *conn) persistSettlements() {
	for _, ch := range c.openChannels() {
		if err := ch.persistSettlements(); err != nil {
			c.logger.Error("closing connection", "err", err)
		}
	}
}
