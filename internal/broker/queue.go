package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// Message is an AMQP message as the core keeps it. It is immutable once
// published and shared by every queue it was routed to.
type Message struct {
	Exchange   string
	RoutingKey string
	// Properties are the basic class's content properties as encoded on
	// the wire: the property flags, then the fields present. The core
	// stores and returns them without decoding them.
	Properties []byte
	Body       []byte
	// Persistent is delivery_mode 2: the message is stored when it is
	// routed to a durable queue.
	Persistent bool
	// Timestamp is when the broker received the message, in milliseconds
	// since the Unix epoch.
	Timestamp int64
}

// queued is a message's place in one queue.
type queued struct {
	msg         *Message // nil while paged out: read back from the log when delivered
	seq         uint64   // order of arrival in the queue
	offset      int64    // offset in the queue's log, or -1 when not stored
	redelivered bool
	popped      bool  // has left the ready list (delivered or purged)
	level       uint8 // its priority level (queue_priority.go)
	// expiresAt is when the message expires (TTL), in milliseconds since
	// the Unix epoch; 0 means never.
	expiresAt int64
	bytes     int64 // the body's size, for x-max-length-bytes (0 if recovered paged out)
	graceTTL  bool  // arrived already expired (TTL 0): see expiredLocked
	// expiryUnknown: recovered paged out, so its expiry (and size) are
	// known once it is read back.
	expiryUnknown bool
	// returns counts the deliveries of the message that came back
	// unacknowledged, in a queue that counts them (queue_quorum.go).
	returns uint32
	// pending is the log append of a stored message until it is known to
	// be durable (then it is zero): the message is not delivered before.
	pending storage.Pending
}

// size is what a message's body and properties take in memory.
func (m *Message) size() int64 { return int64(len(m.Body) + len(m.Properties)) }

// Queue is the delivery state of one queue: the messages ready to go, in
// order, the count of those delivered and not yet settled, and the
// consumers. A durable queue also keeps its persistent messages in a log
// (see queuestore.go); a transient queue lives only in memory.
//
// Invariants: ready messages go out highest priority level first (a queue
// without x-max-priority has one level); within a level, in arrival order,
// requeued ones first (they arrived before every message still ready at
// their level, so the two lists never interleave); a consumer's Deliver runs under mu, so it must neither block
// nor call back into the queue or the broker. A stored message is handed
// out only once its log append is durable, so a consumer never sees a
// message that a failed fsync discarded (its publisher was not confirmed);
// such messages are dropped without being settled, since later appends
// reuse their offsets.
type Queue struct {
	Vhost      string
	Name       string
	ID         QueueID
	Durable    bool
	AutoDelete bool

	mu          sync.Mutex
	levels      []level // ready messages by priority (queue_priority.go): one level, or x-max-priority+1
	unacked     int
	seq         uint64
	consumers   []*Consumer
	rr          int  // where the next round-robin scan starts
	exclusive   bool // the one consumer has exclusive use
	hadConsumer bool // for auto-delete: only a queue that had one is deleted when the last goes
	closed      bool
	store       *queueStore // nil for a transient queue

	// Paging: a durable queue keeps at most memLimit bytes of ready
	// persistent messages in memory; beyond it, a message's body is
	// dropped once its log append is durable and read back from the log
	// when it is delivered. resident counts the bytes of ready messages
	// held in memory; toPage lists stored messages that arrived over the
	// limit and may be paged out once durable.
	memLimit int64
	resident int64
	toPage   []*queued

	// Durability: while stored messages wait for their fsync, one
	// goroutine (awaitDurable) waits for the newest one's and then
	// dispatches. lastPending is that newest append; lateSettle holds
	// messages settled (purged) before they were durable, settled in the
	// log once they are.
	awaiting    bool
	lastPending storage.Pending
	lateSettle  []*queued

	stats flowCounters

	// Expiry (queue_ttl.go): now is the broker's clock; ttl is the
	// queue's x-message-ttl in milliseconds, -1 for none.
	now func() time.Time
	ttl int64

	// Dead-lettering (queue_deadletter.go): dlx is the queue's dead-letter
	// exchange, nil for none; dead collects, under mu, the messages to
	// republish once mu is released (unlock), through onDead.
	dlx    *dlxConfig
	dead   []deadLetter
	onDead func(*Queue, *dlxConfig, []deadLetter)

	// Length limits (queue_limits.go): at most limits.messages ready
	// messages and limits.bytes bytes of their bodies (readyBytes), -1 for
	// no limit.
	limits     lengthLimits
	readyBytes int64

	// Expiry (queue_expiry.go): x-expires in milliseconds, -1 for none,
	// and when the queue was last used.
	expires  int64
	lastUsed int64

	// Single active consumer (x-single-active-consumer, queue_sac.go):
	// only one consumer is delivered to. A classic queue's is the first
	// registered, consumers[0]; a quorum queue's (sacPriority) is active,
	// chosen by consumer priority.
	singleActive bool
	sacPriority  bool
	active       *Consumer

	// Delivery counting (queue_quorum.go): a quorum queue counts the
	// returns of each message and dead-letters one returned more than
	// deliveryLimit times (-1: no limit).
	countReturns  bool
	deliveryLimit int64

	// consumerTimeout is x-consumer-timeout in milliseconds, -1 for none
	// (queue_timeout.go); set at creation, read without the lock.
	consumerTimeout int64

	// Publisher deduplication (dedup.go): the window of message ids the
	// queue accepted, nil unless x-message-deduplication. Set before the
	// queue is published to, never changed.
	dedup *dedupWindow
	// recovered is what a durable queue recovered on open, kept until the
	// exchanges' deduplication windows have looked at it
	// (dedup_recover.go), then nil.
	recovered []*queued
}

// newQueue builds a queue's delivery state; now is the clock its TTLs are
// measured with (nil means time.Now).
func newQueue(info QueueInfo, store *queueStore, recovered []*queued, memLimit int64, now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	q := &Queue{Vhost: info.Vhost, Name: info.Name, ID: info.ID, Durable: info.Durable, AutoDelete: info.AutoDelete, store: store, memLimit: memLimit,
		now: now, ttl: queueTTL(info.Arguments), dlx: queueDLX(info.Arguments), limits: queueLengthLimits(info.Arguments),
		expires: queueExpires(info.Arguments), lastUsed: now().UnixMilli(), singleActive: queueSingleActive(info.Arguments),
		levels: make([]level, 1+int(queueMaxPriority(info.Arguments)))}
	q.countReturns, q.deliveryLimit = queueDeliveryLimit(info.Arguments)
	q.sacPriority = q.singleActive && queueTypeOf(info.Arguments) == QueueQuorum
	q.consumerTimeout = queueConsumerTimeout(info.Arguments)
	recoveredAt := now().UnixMilli()
	for _, m := range recovered {
		q.seq++
		m.seq = q.seq
		if m.msg == nil && len(q.levels) > 1 {
			m.level = q.pagedOutLevel(m)
		} else {
			m.level = q.levelFor(m.msg)
		}
		if m.msg != nil {
			q.recoveredExpiry(m, recoveredAt)
			m.bytes = int64(len(m.msg.Body))
			q.readyBytes += m.bytes
		} else {
			m.expiryUnknown = true // learnt when it reaches the head (resolveHeadLocked)
		}
		if m.msg != nil {
			q.resident += m.msg.size()
		}
		q.levels[m.level].ready.push(m)
	}
	return q
}

// ResidentBytes returns the bytes of ready messages held in memory.
func (q *Queue) ResidentBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.resident
}

// pageOutLocked drops the bodies of ready stored messages that arrived over
// the memory limit and whose appends are durable (so they can be read
// back).
func (q *Queue) pageOutLocked() {
	if len(q.toPage) == 0 || q.store == nil {
		return
	}
	keep := q.toPage[:0]
	for _, m := range q.toPage {
		if m.popped || m.msg == nil {
			continue
		}
		switch durable, discarded := q.durableLocked(m); {
		case durable:
			q.resident -= m.msg.size()
			m.msg = nil
		case !discarded:
			keep = append(keep, m)
		}
	}
	clear(q.toPage[len(keep):])
	q.toPage = keep
}

// durableLocked reports whether m may be delivered (it is not stored, or
// its append is durable) and, if not, whether a failed fsync discarded it
// for good.
func (q *Queue) durableLocked(m *queued) (durable, discarded bool) {
	if m.pending == (storage.Pending{}) {
		return true, false
	}
	done, err := m.pending.Poll()
	switch {
	case !done:
		return false, false
	case err != nil:
		return false, true
	}
	m.pending = storage.Pending{}
	return true, false
}

// awaitDurable runs while stored messages of the queue wait for their
// fsync. Appends are durable in order, so it waits for the newest one's,
// then drops what a failed fsync discarded, settles what was purged
// meanwhile and dispatches; it ends once no append is outstanding.
func (q *Queue) awaitDurable() {
	q.mu.Lock()
	defer q.unlock()
	for {
		p := q.lastPending
		q.mu.Unlock()
		err := p.Wait(context.Background())
		q.mu.Lock()
		if q.closed {
			q.awaiting, q.lastPending, q.lateSettle = false, storage.Pending{}, nil
			return
		}
		if errors.Is(err, storage.ErrStorage) {
			q.dropDiscardedLocked(err)
		}
		q.settleLateLocked()
		q.dispatchLocked()
		q.dropExpiredAfterDurableLocked(q.now().UnixMilli())
		if q.lastPending == p {
			q.awaiting, q.lastPending = false, storage.Pending{}
			return
		}
	}
}

// dropDiscardedLocked removes from the ready lists the messages whose
// appends a failed fsync discarded.
func (q *Queue) dropDiscardedLocked(cause error) {
	dropped := 0
	for i := range q.levels {
		l := &q.levels[i]
		var kept deque
		for l.ready.len() > 0 {
			m := l.ready.pop()
			if _, discarded := q.durableLocked(m); discarded {
				m.popped = true
				q.readyBytes -= m.bytes
				if m.msg != nil {
					q.resident -= m.msg.size()
				}
				dropped++
				continue
			}
			kept.push(m)
		}
		l.ready = kept
	}
	if dropped > 0 {
		q.store.logger.Warn("messages whose fsync failed were dropped from the queue unconfirmed",
			"queue", q.Name, "vhost", q.Vhost, "messages", dropped, "err", cause)
	}
}

// settleLateLocked settles in the log the purged messages whose appends
// have become durable, and forgets those a failed fsync discarded.
func (q *Queue) settleLateLocked() {
	keep := q.lateSettle[:0]
	for _, m := range q.lateSettle {
		switch durable, discarded := q.durableLocked(m); {
		case durable:
			q.store.settle(m.offset)
		case !discarded:
			keep = append(keep, m)
		}
	}
	clear(q.lateSettle[len(keep):])
	q.lateSettle = keep
}

// Ref names the queue for routing results.
func (q *Queue) Ref() QueueRef { return QueueRef{Name: q.Name, ID: q.ID} }

// Delivery is a message handed to a consumer or to basic.get, to be
// settled (Ack, Requeue or Discard) unless it went out with no-ack.
type Delivery struct {
	Queue       *Queue
	Message     *Message
	Redelivered bool
	// Consumer is who it went to; nil for basic.get.
	Consumer *Consumer
	// Remaining is, for basic.get, the number of messages left ready.
	Remaining int
	m         *queued
}

// enqueue adds a routed message. A persistent message in a durable queue is
// appended to the queue's log first (batch is its encoding, see
// encodeQueueRecord); the Pending tells when it is durable. A closed
// (deleted) queue drops the message.
func (q *Queue) enqueue(msg *Message, batch []byte) (p storage.Pending, rejected bool, err error) {
	q.mu.Lock()
	defer q.unlock()
	if q.closed {
		return storage.Pending{}, false, nil
	}
	now := q.now().UnixMilli()
	m := &queued{msg: msg, offset: -1, expiresAt: q.expiryFor(msg, now), bytes: int64(len(msg.Body))}
	m.graceTTL = m.expiresAt != 0 && m.expiresAt <= now
	if q.refuseLocked(m) {
		return storage.Pending{}, true, nil
	}
	if q.store != nil && msg.Persistent {
		off, pend, err := q.store.append(batch)
		if err != nil {
			return storage.Pending{}, false, err
		}
		m.offset, p = off, pend
		done, err := pend.Poll()
		switch {
		case !done:
			m.pending, q.lastPending = pend, pend
			if !q.awaiting {
				q.awaiting = true
				go q.awaitDurable()
			}
		case err != nil:
			// Its fsync already failed (a failing disk answers at once):
			// the append is discarded, so the message never joins the
			// queue; the publisher learns it from p.
			return p, false, nil
		}
	}
	q.seq++
	m.seq = q.seq
	m.level = q.levelFor(msg)
	q.levels[m.level].ready.push(m)
	q.readyBytes += m.bytes
	q.stats.in(1, len(msg.Body))
	q.resident += msg.size()
	if m.offset >= 0 && q.memLimit > 0 && q.resident > q.memLimit {
		q.toPage = append(q.toPage, m)
		if len(q.toPage) >= 256 {
			q.pageOutLocked()
		}
	}
	q.dispatchLocked()
	q.dropExpiredLocked(now)
	q.dropOverLimitLocked()
	return p, false, nil
}

func (q *Queue) readyLocked() int {
	n := 0
	for i := range q.levels {
		n += len(q.levels[i].requeued) + q.levels[i].ready.len()
	}
	return n
}

// popLocked takes the next ready message, reading a paged-out body back
// from the log. A message that cannot be read back is logged and dropped;
// one that a failed fsync discarded is dropped. nil means nothing can go
// now: nothing is ready, or the next message is not durable yet.
func (q *Queue) popLocked() *queued {
	now := q.now().UnixMilli()
	for q.readyLocked() > 0 {
		if q.dropExpiredHeadLocked(now, true, false) {
			continue
		}
		var m *queued
		l := q.topLocked()
		if len(l.requeued) > 0 {
			m = l.requeued[0]
			l.requeued[0] = nil
			l.requeued = l.requeued[1:]
			q.readyBytes -= m.bytes
		} else {
			durable, discarded := q.durableLocked(l.ready.peek())
			if !durable && !discarded {
				return nil // awaitDurable dispatches it once it is durable
			}
			m = l.ready.pop()
			q.readyBytes -= m.bytes
			if m.msg != nil {
				q.resident -= m.msg.size()
			}
			if discarded {
				m.popped = true
				continue
			}
		}
		m.popped = true
		if m.msg == nil {
			msg, err := q.store.load(m.offset)
			if err != nil {
				q.store.logger.Error("a stored message cannot be read back; dropping it", "queue", q.Name, "vhost", q.Vhost, "offset", m.offset, "err", err)
				q.settledLocked(m)
				continue
			}
			m.msg = msg
		}
		if m.offset >= 0 && q.store != nil {
			q.store.noteDelivered(m.offset)
		}
		q.stats.out(1, len(m.msg.Body))
		return m
	}
	return nil
}

// dispatchLocked hands ready messages to consumers that can take them.
func (q *Queue) dispatchLocked() {
	for q.readyLocked() > 0 && len(q.consumers) > 0 {
		c := q.pickLocked()
		if c == nil {
			return
		}
		m := q.popLocked()
		if m == nil {
			if !c.NoAck {
				c.give()
			}
			return
		}
		if c.NoAck {
			q.settledLocked(m)
		} else {
			q.unacked++
			c.unsettled++
		}
		c.Deliver(Delivery{Queue: q, Message: q.outgoingLocked(m), Redelivered: m.redelivered, Consumer: c, m: m})
	}
}

// pickLocked chooses the consumer for the next message: among those that
// can take one (not busy, within their prefetch), the highest priority,
// round-robin among equals; with a single active consumer, only the
// active one. It takes the consumer's credit.
func (q *Queue) pickLocked() *Consumer {
	if q.singleActive {
		c := q.activeLocked()
		if c == nil || !c.canTake() || !c.take() {
			return nil
		}
		return c
	}
	n := len(q.consumers)
	best := -1
	for i := range n {
		j := (q.rr + i) % n
		c := q.consumers[j]
		if best >= 0 && c.Priority <= q.consumers[best].Priority {
			continue
		}
		if !c.canTake() {
			continue
		}
		best = j
	}
	if best < 0 {
		return nil
	}
	c := q.consumers[best]
	if !c.take() {
		return nil
	}
	q.rr = best + 1
	return c
}

// settledLocked forgets a message for good: acknowledged, delivered with
// no-ack, purged or discarded.
func (q *Queue) settledLocked(m *queued) {
	if m.offset < 0 || q.store == nil {
		return
	}
	switch durable, discarded := q.durableLocked(m); {
	case durable:
		q.store.settle(m.offset)
	case !discarded:
		// Purged before its fsync: settled once durable (a discarded
		// append's offset belongs to a later message).
		q.lateSettle = append(q.lateSettle, m)
	}
}

// Get takes the next ready message for basic.get. With noAck the message is
// settled at once; otherwise it is unacknowledged until settled. If the
// next message is still waiting for its fsync, Get waits for it, at most
// until ctx is done.
func (q *Queue) Get(ctx context.Context, noAck bool) (Delivery, bool) {
	q.mu.Lock()
	defer q.unlock()
	q.touchLocked()
	for {
		if q.closed || q.readyLocked() == 0 {
			return Delivery{}, false
		}
		m := q.popLocked()
		if m != nil {
			if noAck {
				q.settledLocked(m)
			} else {
				q.unacked++
			}
			return Delivery{Queue: q, Message: q.outgoingLocked(m), Redelivered: m.redelivered, Remaining: q.readyLocked(), m: m}, true
		}
		l := q.topLocked()
		if l == nil || l.ready.len() == 0 {
			return Delivery{}, false
		}
		p := l.ready.peek().pending
		q.mu.Unlock()
		err := p.Wait(ctx)
		q.mu.Lock()
		if err != nil && !errors.Is(err, storage.ErrStorage) {
			return Delivery{}, false // ctx is done, or the log closed
		}
	}
}

// Ack settles deliveries of this queue for good.
func (q *Queue) Ack(ds []Delivery) {
	q.settle(ds, false, "")
}

// Discard drops deliveries (basic.reject or basic.nack without requeue),
// dead-lettering them if the queue has a dead-letter exchange.
func (q *Queue) Discard(ds []Delivery) {
	q.settle(ds, false, deathRejected)
}

// Requeue puts deliveries back, in their original order ahead of every
// message still ready at their priority level, marked redelivered. A
// quorum queue counts the return, and dead-letters a message returned
// more times than its delivery limit instead (queue_quorum.go).
func (q *Queue) Requeue(ds []Delivery) {
	q.settle(ds, true, "")
}

// settle settles deliveries: requeued, or else dropped, dead-lettered
// for deadReason if it is not empty.
func (q *Queue) settle(ds []Delivery, requeue bool, deadReason string) {
	q.mu.Lock()
	defer q.unlock()
	for _, d := range ds {
		if d.Consumer != nil && !d.Consumer.NoAck {
			d.Consumer.give()
			d.Consumer.unsettled--
		}
		if q.closed {
			continue
		}
		q.unacked--
		if !requeue {
			if deadReason != "" {
				q.deadLetterLocked(d.m, deadReason)
			}
			q.settledLocked(d.m)
			continue
		}
		if q.returnedLocked(d.m) {
			q.deadLetterLocked(d.m, deathDeliveryLimit)
			q.settledLocked(d.m)
			continue
		}
		d.m.redelivered = true
		l := &q.levels[d.m.level]
		i, _ := slices.BinarySearchFunc(l.requeued, d.m.seq, func(m *queued, seq uint64) int {
			switch {
			case m.seq < seq:
				return -1
			case m.seq > seq:
				return 1
			}
			return 0
		})
		l.requeued = slices.Insert(l.requeued, i, d.m)
		q.readyBytes += d.m.bytes
	}
	if !q.closed {
		q.dispatchLocked()
	}
}

// Kick retries delivery: a consumer that was busy can take messages again,
// or credit shared with other queues was given back.
func (q *Queue) Kick() {
	q.mu.Lock()
	defer q.unlock()
	if !q.closed {
		q.dispatchLocked()
	}
}

// Purge drops every ready message (not those delivered and unsettled) and
// returns how many there were.
func (q *Queue) Purge() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.readyLocked()
	for i := range q.levels {
		l := &q.levels[i]
		for _, m := range l.requeued {
			q.settledLocked(m)
		}
		l.requeued = nil
		for l.ready.len() > 0 {
			m := l.ready.pop()
			m.popped = true
			q.settledLocked(m)
		}
	}
	q.resident, q.toPage, q.readyBytes = 0, nil, 0
	return n
}

// Counts returns the number of ready messages and of consumers, as
// queue.declare-ok reports them.
func (q *Queue) Counts() (messages, consumers int) {
	q.mu.Lock()
	defer q.unlock()
	q.dropExpiredLocked(q.now().UnixMilli())
	return q.readyLocked(), len(q.consumers)
}

// Unacked returns the number of deliveries not yet settled.
func (q *Queue) Unacked() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unacked
}

// close stops the queue: consumers are dropped (and returned, so the
// caller can tell them outside the lock), messages forgotten, and the log
// closed or, if the queue was deleted, removed.
func (q *Queue) close(deleted bool) ([]*Consumer, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, nil
	}
	q.closed = true
	cs := q.consumers
	q.consumers = nil
	clear(q.levels)
	if q.store == nil {
		return cs, nil
	}
	if deleted {
		return cs, q.store.delete()
	}
	var errs []error
	if snap, ok := q.store.snapshot(); ok {
		errs = append(errs, q.store.write(snap))
	}
	errs = append(errs, q.store.close())
	return cs, errors.Join(errs...)
}

// flush persists the queue's settlements if they changed.
func (q *Queue) flush() error {
	q.mu.Lock()
	if q.closed || q.store == nil {
		q.mu.Unlock()
		return nil
	}
	q.pageOutLocked()
	snap, ok := q.store.snapshot()
	q.mu.Unlock()
	if !ok {
		return nil
	}
	return q.store.write(snap)
}

// PersistSettlements writes the queue's settlements now and returns once
// they are durable: the acks file is written, fsynced and renamed into
// place, and the directory fsynced. tx.commit calls it for the queues whose
// deliveries the transaction settled, so that a committed ack is never
// undone by a crash. A transient or deleted queue has nothing to write.
func (q *Queue) PersistSettlements() error {
	q.mu.Lock()
	if q.closed || q.store == nil {
		q.mu.Unlock()
		return nil
	}
	// Always take a snapshot: one taken by the periodic flush may still be
	// on its way to the disk, and this one must be, before returning.
	q.store.dirty = true
	snap, _ := q.store.snapshot()
	q.mu.Unlock()
	if err := q.store.write(snap); err != nil {
		return err
	}
	if err := q.store.fs.SyncDir(q.store.dir); err != nil {
		return fmt.Errorf("writing the acknowledgements of %s: %w", q.store.dir, err)
	}
	return nil
}

// deque is a FIFO of queued messages in a ring buffer.
type deque struct {
	buf  []*queued
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) push(m *queued) {
	if d.n == len(d.buf) {
		nb := make([]*queued, max(16, 2*len(d.buf)))
		for i := range d.n {
			nb[i] = d.buf[(d.head+i)%len(d.buf)]
		}
		d.buf, d.head = nb, 0
	}
	d.buf[(d.head+d.n)%len(d.buf)] = m
	d.n++
}

func (d *deque) peek() *queued {
	if d.n == 0 {
		return nil
	}
	return d.buf[d.head]
}

func (d *deque) pop() *queued {
	if d.n == 0 {
		return nil
	}
	m := d.buf[d.head]
	d.buf[d.head] = nil
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	if d.n == 0 {
		d.head = 0
		if len(d.buf) > 1024 {
			d.buf = nil // give a drained large buffer back
		}
	}
	return m
}
