package broker

import "fmt"

// Quorum queue poison message handling, with RabbitMQ 4's semantics. A
// quorum queue (x-queue-type quorum) counts, per message, its failed
// delivery attempts: every time a delivery comes back to the queue
// unacknowledged (basic.reject or basic.nack with requeue, basic.recover
// with requeue, or its channel or connection closing with it unacked).
// Every later delivery of the message carries that count in the
// x-delivery-count header (a long); a message never returned has none.
// When a return makes the count exceed the queue's x-delivery-limit, the
// message is dead-lettered with reason delivery_limit instead of being
// requeued (dropped without a dead-letter exchange). As in RabbitMQ 4.0, a
// quorum queue declared without x-delivery-limit has a limit of 20; a
// negative limit means none. A limit of 0 dead-letters a message on its
// first return.
//
// A durable queue keeps the counts of its unsettled persistent messages
// with its settlements (queuestore.go), so they survive a restart; like
// the settlements, counts changed since the last flush are lost in a
// crash.

const (
	// deathDeliveryLimit is the x-death reason of a message returned more
	// times than its queue's delivery limit.
	deathDeliveryLimit = "delivery_limit"
	// defaultDeliveryLimit is RabbitMQ 4.0's delivery limit of a quorum
	// queue declared without x-delivery-limit.
	defaultDeliveryLimit = 20
	// deliveryCountHeader is the header a returned message is delivered
	// with.
	deliveryCountHeader = "x-delivery-count"
)

// queueDeliveryLimit reads a queue's delivery counting: whether it counts
// returns (quorum queues do), and its limit, -1 for none.
func queueDeliveryLimit(args Table) (counts bool, limit int64) {
	if queueTypeOf(args) != QueueQuorum {
		return false, -1
	}
	v, ok := args["x-delivery-limit"]
	if !ok {
		return true, defaultDeliveryLimit
	}
	neg, mag, ok := intValue(v)
	switch {
	case !ok:
		return true, defaultDeliveryLimit
	case neg:
		return true, -1
	}
	return true, int64(min(mag, 1<<62))
}

// returnedLocked counts a return of m, a delivery coming back to the
// queue. It reports whether m has now been returned more times than the
// queue's delivery limit, so it must be dead-lettered instead of requeued.
func (q *Queue) returnedLocked(m *queued) (overLimit bool) {
	if !q.countReturns {
		return false
	}
	m.returns++
	if q.deliveryLimit >= 0 && int64(m.returns) > q.deliveryLimit {
		return true
	}
	if m.offset >= 0 && q.store != nil {
		q.store.noteReturned(m.offset, m.returns)
	}
	return false
}

// outgoingLocked is the message a delivery of m hands out: m's own, or,
// once m was returned, a copy whose headers carry x-delivery-count.
func (q *Queue) outgoingLocked(m *queued) *Message {
	if !q.countReturns || m.returns == 0 {
		return m.msg
	}
	msg, err := withDeliveryCount(m.msg, m.returns)
	if err != nil {
		if q.store != nil {
			q.store.logger.Warn("a returned message goes out without x-delivery-count", "queue", q.Name, "vhost", q.Vhost, "err", err)
		}
		return m.msg
	}
	return msg
}

// withDeliveryCount returns a copy of msg whose headers set
// x-delivery-count to n.
func withDeliveryCount(msg *Message, n uint32) (*Message, error) {
	bp, err := splitProperties(msg.Properties)
	if err != nil {
		return nil, err
	}
	headers, err := bp.headers()
	if err != nil {
		return nil, err
	}
	if headers == nil {
		headers = Table{}
	}
	headers[deliveryCountHeader] = int64(n)
	enc, err := appendWireTable(nil, headers, 1)
	if err != nil {
		return nil, fmt.Errorf("encoding the headers: %w", err)
	}
	bp.fields[propIndexHeaders] = enc
	out := *msg
	out.Properties = bp.encode()
	return &out, nil
}
