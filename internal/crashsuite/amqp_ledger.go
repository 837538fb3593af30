package crashsuite

import "sync"

// AMQPLedger is the suite's record of the AMQP side: which messages the
// broker confirmed, every delivery each consumer got (with its redelivered
// flag), and which acknowledgements certainly reached the broker. It is
// safe for concurrent use.
//
// The order check is per consumer and per publisher: a publisher numbers
// every publish (its copies) in the order it makes them on one channel, so
// the deliveries of a queue's messages that are not flagged redelivered
// reach each consumer in increasing copy order. A copy delivered a second
// time must be flagged redelivered.
type AMQPLedger struct {
	mu           sync.Mutex
	confirmed    map[ID]bool           // messages (no copy) whose publish was confirmed
	deliveries   map[ID]int            // deliveries of each copy
	copies       map[ID]map[int64]bool // copies delivered of each message
	lastCopy     map[consumerPub]int64 // per consumer and publisher: last copy delivered not flagged redelivered
	ackReached   map[ID]bool           // copies whose ack the broker certainly received
	ackCommitted map[ID]bool           // copies whose ack a tx.commit-ok covered
	delivered    int
	redelivered  int
	corrupt      int
	misordered   int
	unflagged    int
	returned     int
	uncommitted  int
	problems     problemLog
}

type consumerPub struct {
	consumer  string
	publisher int
}

// NewAMQPLedger returns an empty ledger.
func NewAMQPLedger() *AMQPLedger {
	return &AMQPLedger{
		confirmed:    map[ID]bool{},
		deliveries:   map[ID]int{},
		copies:       map[ID]map[int64]bool{},
		lastCopy:     map[consumerPub]int64{},
		ackReached:   map[ID]bool{},
		ackCommitted: map[ID]bool{},
	}
}

// Confirmed records that the broker confirmed a publish of copy.
func (l *AMQPLedger) Confirmed(copy ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.confirmed[copy.Message()] = true
}

// IsConfirmed reports whether some copy of the message was confirmed.
func (l *AMQPLedger) IsConfirmed(msg ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.confirmed[msg.Message()]
}

// Delivered records a delivery of body to consumer and checks it: its
// checksum, its order among the consumer's first deliveries, and that a
// copy delivered before is flagged redelivered. It returns the copy's
// identity, or ErrCorrupt (counted).
func (l *AMQPLedger) Delivered(consumer string, body []byte, redelivered bool) (ID, error) {
	id, err := Decode(body)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delivered++
	if redelivered {
		l.redelivered++
	}
	if err != nil {
		l.corrupt++
		l.problems.add("%s got a corrupt message: %v", consumer, err)
		return id, err
	}
	if l.deliveries[id] > 0 && !redelivered {
		l.unflagged++
		l.problems.add("%s got %v again, not flagged redelivered (delivered %d times before)", consumer, id, l.deliveries[id])
	}
	switch {
	case l.ackCommitted[id]:
		l.uncommitted++
		l.problems.add("%s got %v again after its ack was committed (redelivered %v)", consumer, id, redelivered)
	case l.ackReached[id]:
		l.returned++
		l.problems.add("%s got %v again after its ack reached the broker (redelivered %v)", consumer, id, redelivered)
	}
	if !redelivered {
		k := consumerPub{consumer, id.Producer}
		if last, ok := l.lastCopy[k]; ok && id.Copy <= last {
			l.misordered++
			l.problems.add("%s got %v, not flagged redelivered, after copy %d of the same publisher", consumer, id, last)
		}
		l.lastCopy[k] = id.Copy
	}
	l.deliveries[id]++
	msg := id.Message()
	if l.copies[msg] == nil {
		l.copies[msg] = map[int64]bool{}
	}
	l.copies[msg][id.Copy] = true
	return id, nil
}

// AcksReached records that the acks of copies certainly reached the broker:
// a later method with a reply on the same channel succeeded. With
// committed, that method was the tx.commit of a transaction holding them:
// they are settled for good, and must never come back.
func (l *AMQPLedger) AcksReached(copies []ID, committed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range copies {
		l.ackReached[c] = true
		if committed {
			l.ackCommitted[c] = true
		}
	}
}

// Undelivered returns how many confirmed messages no consumer got yet.
func (l *AMQPLedger) Undelivered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for msg := range l.confirmed {
		if len(l.copies[msg]) == 0 {
			n++
		}
	}
	return n
}

// AMQPResult is the verdict on the AMQP side.
type AMQPResult struct {
	Confirmed   int // messages whose publish was confirmed
	Delivered   int // deliveries
	Redelivered int // deliveries flagged redelivered
	Lost        int // confirmed messages never delivered
	Duplicated  int // extra copies delivered of a message (republished after a lost connection)
	Corrupt     int // deliveries that failed their checksum
	Misordered  int // first deliveries out of publish order
	Unflagged   int // copies delivered again without the redelivered flag
	AckReturned int // copies delivered again after a later reply proved their ack received (not committed)
	Uncommitted int // copies delivered again after a tx.commit of their ack
	Problems    []string
}

// Failed reports whether an AMQP guarantee broke. Extra copies from
// republishing are allowed, and so are messages coming back after a crash
// whose ack no later reply proved received (at-least-once); a message
// whose ack was proved received, by a reply or a tx.commit, must not come
// back.
func (r AMQPResult) Failed() bool {
	return r.Lost+r.Corrupt+r.Misordered+r.Unflagged+r.AckReturned+r.Uncommitted > 0
}

// Verify judges the ledger once everything was drained: every confirmed
// message must have been delivered.
func (l *AMQPLedger) Verify() AMQPResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := AMQPResult{
		Confirmed: len(l.confirmed), Delivered: l.delivered, Redelivered: l.redelivered,
		Corrupt: l.corrupt, Misordered: l.misordered, Unflagged: l.unflagged, AckReturned: l.returned,
		Uncommitted: l.uncommitted,
	}
	for msg := range l.confirmed {
		if len(l.copies[msg]) == 0 {
			r.Lost++
			l.problems.add("%v confirmed and never delivered", msg)
		}
	}
	for _, cs := range l.copies {
		r.Duplicated += len(cs) - 1
	}
	r.Problems = l.problems.list()
	return r
}
