package amqp

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// channel is one AMQP channel of a connection. The connection's reader
// handles its methods in order; queues deliver to its consumers from other
// goroutines. mu guards what both touch: the delivery tag counter, the
// unacknowledged deliveries and the consumers. The reader never holds mu
// while it calls the broker or a queue (queues call Deliver with their own
// lock held, and Deliver takes mu: queue before channel, always).
type channel struct {
	c   *conn
	id  uint16
	asm *wire.Assembler

	closing bool // channel.close sent; frames are dropped until close-ok

	// rmu is held by the reader while it handles a frame of the channel,
	// and by the consumer timeout check (timeout.go) while it closes the
	// channel: the one change to the channel's reader state made from
	// another goroutine. Lock order: rmu before mu.
	rmu sync.Mutex

	// Reader-only state.
	lastQueue string // the last queue declared, for methods naming ""
	prefetch  int    // basic.qos global=false: the limit of new consumers
	shared    *broker.Credit
	flowOff   atomic.Bool // channel.flow active=false: consumers get nothing
	confirms  *confirmer  // non-nil in confirm mode
	publishes uint64      // confirm mode: the last publish sequence number
	tx        *txState    // non-nil in transactional mode
	// unpersisted lists the queues in which this channel acked or dropped
	// messages whose settlement is not yet written: it is written before
	// the next reply on the channel (see persistSettlements).
	unpersisted []*broker.Queue

	mu        sync.Mutex
	nextTag   uint64
	unacked   unackedList
	consumers map[string]*consumer
	streams   map[string]*streamConsumer // consumers of stream queues (stream.go)
	closed    bool
	direct    *replyConsumer // the consumer of amq.rabbitmq.reply-to (replyto.go)
}

// consumer is a basic.consume on this channel.
type consumer struct {
	bc      *broker.Consumer
	q       *broker.Queue
	started atomic.Bool // consume-ok has been sent: deliveries may go
}

func newChannel(c *conn, id uint16) *channel {
	return &channel{
		c: c, id: id,
		asm:       wire.NewAssembler(uint64(c.s.opts.MaxMessageBytes)),
		shared:    broker.NewCredit(0),
		consumers: map[string]*consumer{},
		unacked:   newUnackedList(),
	}
}

// handleFrame feeds a frame to the channel.
func (ch *channel) handleFrame(f wire.Frame) error {
	if ch.closing {
		return ch.closingFrame(f)
	}
	cmd, ok, err := ch.asm.Add(f)
	if err != nil {
		return ch.fail(asCloseError(err))
	}
	if !ok {
		return nil
	}
	if err := ch.handle(cmd); err != nil {
		return ch.fail(asCloseError(err).forMethod(cmd.Method))
	}
	return nil
}

// fail closes the channel for a soft error, and hands a hard one to the
// connection.
func (ch *channel) fail(e *closeError) error {
	if e.hard() {
		return e
	}
	if !ch.c.logRefusal(e) {
		ch.c.logger.Info("closing channel", "channel", ch.id, "code", e.code, "text", e.text)
	}
	ch.closing = true
	ch.asm.Reset()
	ch.teardown()
	return ch.c.sendMethod(ch.id, &wire.ChannelClose{ReplyCode: e.code, ReplyText: e.text, FailingClassID: e.classID, FailingMethodID: e.methodID})
}

// closingFrame handles a frame after channel.close was sent: close-ok ends
// the channel, a crossing channel.close is answered, the rest is dropped.
func (ch *channel) closingFrame(f wire.Frame) error {
	if f.Type != wire.FrameMethod {
		return nil
	}
	m, err := wire.DecodeMethod(f.Payload)
	if err != nil {
		return nil
	}
	switch m.(type) {
	case *wire.ChannelCloseOk:
		ch.c.removeChannel(ch.id)
	case *wire.ChannelClose:
		ch.c.removeChannel(ch.id)
		return ch.c.sendMethod(ch.id, &wire.ChannelCloseOk{})
	}
	return nil
}

// handle runs one complete command.
func (ch *channel) handle(cmd wire.Command) error {
	if len(ch.unpersisted) > 0 && awaitsReply(cmd.Method) {
		if err := ch.persistSettlements(); err != nil {
			return err
		}
	}
	if err := ch.checkAccess(cmd.Method); err != nil {
		return err
	}
	switch m := cmd.Method.(type) {
	case *wire.BasicPublish:
		return ch.publish(m, &cmd)
	case *wire.BasicAck:
		return ch.ack(m.DeliveryTag, m.Multiple)
	case *wire.BasicNack:
		return ch.reject(m.DeliveryTag, m.Multiple, m.Requeue, m)
	case *wire.BasicReject:
		return ch.reject(m.DeliveryTag, false, m.Requeue, m)
	case *wire.BasicConsume:
		return ch.consume(m)
	case *wire.BasicCancel:
		return ch.cancel(m)
	case *wire.BasicGet:
		return ch.get(m)
	case *wire.BasicQos:
		return ch.qos(m)
	case *wire.BasicRecover:
		return ch.recover(m.Requeue, true)
	case *wire.BasicRecoverAsync:
		return ch.recover(m.Requeue, false)

	case *wire.ExchangeDeclare:
		return ch.exchangeDeclare(m)
	case *wire.ExchangeDelete:
		return ch.exchangeDelete(m)
	case *wire.ExchangeBind:
		return ch.exchangeBind(m)
	case *wire.ExchangeUnbind:
		return ch.exchangeUnbind(m)
	case *wire.QueueDeclare:
		return ch.queueDeclare(m)
	case *wire.QueueBind:
		return ch.queueBind(m)
	case *wire.QueueUnbind:
		return ch.queueUnbind(m)
	case *wire.QueuePurge:
		return ch.queuePurge(m)
	case *wire.QueueDelete:
		return ch.queueDelete(m)

	case *wire.ConfirmSelect:
		return ch.confirmSelect(m)
	case *wire.TxSelect:
		return ch.txSelect()
	case *wire.TxCommit:
		return ch.txCommit()
	case *wire.TxRollback:
		return ch.txRollback()

	case *wire.ChannelFlow:
		ch.flowOff.Store(!m.Active)
		if err := ch.c.sendMethod(ch.id, &wire.ChannelFlowOk{Active: m.Active}); err != nil {
			return err
		}
		if m.Active {
			ch.kickQueues()
		}
		return nil
	case *wire.ChannelClose:
		ch.teardown()
		ch.c.removeChannel(ch.id)
		return ch.c.sendMethod(ch.id, &wire.ChannelCloseOk{})
	case *wire.ChannelOpen:
		return newCloseError(wire.ReplyChannelError, "second 'channel.open' seen on channel %d", ch.id)
	case *wire.ChannelCloseOk:
		return newCloseError(wire.ReplyChannelError, "channel.close-ok on channel %d, which is not closing", ch.id)
	case *wire.AccessRequest:
		return ch.c.sendMethod(ch.id, &wire.AccessRequestOk{Ticket: 1})
	}
	m := cmd.Method
	if m.ClassID() == wire.ClassConnection {
		return newCloseError(wire.ReplyCommandInvalid, "%s on channel %d; connection methods go on channel 0", m.Name(), ch.id)
	}
	return newCloseError(wire.ReplyCommandInvalid, "%s is not a method a client sends", m.Name())
}

// queueName resolves "" to the last queue declared on the channel.
func (ch *channel) queueName(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if ch.lastQueue == "" {
		return "", newCloseError(wire.ReplyNotFound, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

// queue resolves a queue named by a method ("" is the last declared) to
// its delivery state, checking exclusive access.
func (ch *channel) queue(name string) (*broker.Queue, error) {
	name, err := ch.queueName(name)
	if err != nil {
		return nil, err
	}
	return ch.c.b.Queue(ch.c.vhost, ch.c.id, name)
}

// teardown ends the channel's work: consumers are cancelled, pending
// publishes of a transaction dropped, and unacknowledged messages go back
// to their queues in order. It is safe to call more than once.
func (ch *channel) teardown() {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed = true
	consumers := ch.consumers
	ch.consumers = map[string]*consumer{}
	ch.mu.Unlock()
	ch.cancelReply()
	ch.stopStreams()
	ctx := context.Background()
	for _, cs := range consumers {
		if err := ch.c.b.CancelConsumer(ctx, cs.q, cs.bc); err != nil {
			ch.c.logger.Warn("cancelling a consumer", "queue", cs.q.Name, "err", err)
		}
	}
	if ch.confirms != nil {
		ch.confirms.stop()
	}
	var back []unackedEntry
	if ch.tx != nil {
		back = append(back, ch.tx.settledDeliveries()...)
		ch.tx = nil
	}
	ch.mu.Lock()
	back = append(back, creditStreams(ch.unacked.takeAll())...)
	ch.mu.Unlock()
	requeueByQueue(back)
}

// kickQueues asks the queues of the channel's consumers to deliver again.
func (ch *channel) kickQueues() {
	ch.kickStreams()
	ch.mu.Lock()
	qs := make([]*broker.Queue, 0, len(ch.consumers))
	for _, cs := range ch.consumers {
		qs = append(qs, cs.q)
	}
	ch.mu.Unlock()
	seen := map[*broker.Queue]bool{}
	for _, q := range qs {
		if !seen[q] {
			seen[q] = true
			q.Kick()
		}
	}
}

// requeueByQueue puts deliveries back, one call per queue, keeping their
// order.
func requeueByQueue(es []unackedEntry) {
	settleByQueue(es, (*broker.Queue).Requeue)
}

// settleByQueue calls fn once per queue with that queue's deliveries, in
// order.
func settleByQueue(es []unackedEntry, fn func(*broker.Queue, []broker.Delivery)) {
	if len(es) == 0 {
		return
	}
	same := true
	for _, e := range es[1:] {
		if e.d.Queue != es[0].d.Queue {
			same = false
			break
		}
	}
	if same {
		if len(es) == 1 {
			var one [1]broker.Delivery
			one[0] = es[0].d
			fn(es[0].d.Queue, one[:])
			return
		}
		ds := make([]broker.Delivery, len(es))
		for i, e := range es {
			ds[i] = e.d
		}
		fn(es[0].d.Queue, ds)
		return
	}
	var order []*broker.Queue
	by := map[*broker.Queue][]broker.Delivery{}
	for _, e := range es {
		if _, ok := by[e.d.Queue]; !ok {
			order = append(order, e.d.Queue)
		}
		by[e.d.Queue] = append(by[e.d.Queue], e.d)
	}
	for _, q := range order {
		fn(q, by[q])
	}
}
