package broker

// Single active consumer (x-single-active-consumer true): every consumer
// is registered (basic.consume is answered with consume-ok), but only one,
// the active consumer, receives messages. When it goes (basic.cancel, or
// its channel or connection closes), another becomes active; messages the
// old one left unacknowledged reach it once they are requeued (a closed
// channel requeues them).
//
// Which consumer is active depends on the queue type, as in RabbitMQ:
//
//   - A classic queue ignores consumer priorities: the first registered
//     consumer is active, then the next in registration order.
//   - A quorum queue (RabbitMQ 3.12 and later) makes the consumer with the
//     highest x-priority active, the earliest registered among equals.
//     When a consumer with a higher priority than the active one
//     registers, the active one gets no more messages and the queue
//     switches to the new one once the old one has no unacknowledged
//     deliveries left (at once if it has none).

// queueSingleActive reports whether a queue's arguments ask for a single
// active consumer.
func queueSingleActive(args Table) bool {
	v, ok := args["x-single-active-consumer"].(bool)
	return ok && v
}

// activeLocked returns the consumer a single-active-consumer queue
// delivers to now; nil when there is none, or while a quorum queue waits
// for the active consumer to settle its deliveries before switching to a
// consumer of higher priority.
func (q *Queue) activeLocked() *Consumer {
	if len(q.consumers) == 0 {
		q.active = nil
		return nil
	}
	if !q.sacPriority {
		return q.consumers[0]
	}
	best := q.consumers[0]
	for _, c := range q.consumers[1:] {
		if c.Priority > best.Priority {
			best = c
		}
	}
	switch {
	case q.active == nil:
		q.active = best
	case best.Priority > q.active.Priority:
		if q.active.unsettled > 0 {
			return nil // the active consumer finishes what it has first
		}
		q.active = best
	}
	return q.active
}
