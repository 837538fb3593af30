package broker

// Priority queues (x-max-priority, 1 to 255), as in RabbitMQ's classic
// queues: a queue keeps one level of ready messages per priority, from 0
// to its maximum, and delivers from the highest level that has any. A
// message's level is its priority property, capped at the maximum; a
// message without one is at 0. Within a level the usual order holds:
// requeued messages first, by arrival, then the others by arrival. A
// requeued message returns to its own level, and a recovered one is put
// back at its level after a restart. A queue without x-max-priority has a
// single level, so its order is plain arrival order.

// level is the ready messages of one priority.
type level struct {
	ready    deque
	requeued []*queued // sorted by seq; delivered before ready
}

// queueMaxPriority returns a queue's x-max-priority, 0 for none.
func queueMaxPriority(args Table) uint8 {
	v, ok := args["x-max-priority"]
	if !ok {
		return 0
	}
	neg, mag, ok := intValue(v)
	if !ok || neg {
		return 0
	}
	return uint8(min(mag, 255))
}

// levelFor returns the level of a message in q: its priority property,
// capped at the queue's maximum. A nil msg (not read back) is at 0.
func (q *Queue) levelFor(msg *Message) uint8 {
	if len(q.levels) == 1 || msg == nil {
		return 0
	}
	p, ok := propertyPriority(msg.Properties)
	if !ok {
		return 0
	}
	return min(p, uint8(len(q.levels)-1))
}

// topLocked returns the highest level with ready messages, nil if none.
func (q *Queue) topLocked() *level {
	for i := len(q.levels) - 1; i >= 0; i-- {
		if l := &q.levels[i]; len(l.requeued) > 0 || l.ready.len() > 0 {
			return l
		}
	}
	return nil
}

// propertyPriority reads the priority property from encoded basic
// properties. ok is false when it is absent or the properties are
// malformed.
func propertyPriority(props []byte) (uint8, bool) {
	p, ok := propertyAt(props, propPriority)
	if !ok || len(p) == 0 {
		return 0, false
	}
	return p[0], true
}

// pagedOutLevel reads back a message recovered paged out, only to learn
// its level: its body stays out of memory. A message that cannot be read
// is put at level 0, where popLocked drops it when it fails to read it
// back again.
func (q *Queue) pagedOutLevel(m *queued) uint8 {
	msg, err := q.store.load(m.offset)
	if err != nil {
		return 0
	}
	return q.levelFor(msg)
}
