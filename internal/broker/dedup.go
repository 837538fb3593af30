package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// Publisher deduplication. A queue or an exchange declared with
// x-message-deduplication true remembers the message_id property of the
// messages it accepted, within a window: the last
// x-deduplication-window-size ids and/or the ids accepted in the last
// x-deduplication-window-ms milliseconds (on Options.Now). A message whose
// id is remembered is a duplicate: it is answered as accepted (a publisher
// confirm acks it) but an exchange does not route it at all and a queue
// does not enqueue it again. A message without a message_id (or with an
// empty one) is never a duplicate and is not remembered.
//
// Rules:
//
//   - An id is remembered when its message is accepted, from the moment the
//     publish is decided (admit), so a concurrent publish of the same id is
//     a duplicate. If the original publish fails (a storage error, a full
//     queue that refuses it, an fsync that fails), the id is forgotten and
//     every duplicate admitted meanwhile fails too: its Wait returns the
//     error, so its publisher is nacked and retries. A duplicate's Wait
//     returns once the original's would, so a duplicate is never confirmed
//     before the message it duplicates is.
//   - An id is remembered across a restart exactly when its message is: if
//     the message was written to the log of at least one durable queue, the
//     id is written to the deduplicating object's own log once those
//     appends are durable, and the publish's Wait returns only once the id
//     record is durable too. A confirmed persistent message's id therefore
//     survives a restart or a kill -9. A transient message (or one that
//     reached only transient queues) is remembered in memory only: after a
//     restart the message is gone, and so is its id. The id is written
//     after the message, never before, so a crash can never leave an id
//     remembered for a message it lost; a crash between the two fsyncs
//     loses the id of a message the publisher was not confirmed for, whose
//     retry is then stored again.
//   - The window counts from an id's first acceptance; a duplicate does not
//     renew it. Ids leave the window oldest first.
//   - Only the exchange a message is published to deduplicates; exchanges
//     reached through exchange-to-exchange bindings do not, nor do
//     dead-letter exchanges (dead letters are enqueued in the queues their
//     exchange routes to, and those queues deduplicate them).

// The arguments of publisher deduplication, on queue.declare and
// exchange.declare.
const (
	ArgMessageDeduplication = "x-message-deduplication"
	ArgDedupWindowSize      = "x-deduplication-window-size"
	ArgDedupWindowMs        = "x-deduplication-window-ms"
)

// dedupArgKeys lists the deduplication arguments, checked on declaration
// and compared on redeclaration.
func dedupArgKeys() []string {
	return []string{ArgMessageDeduplication, ArgDedupWindowSize, ArgDedupWindowMs}
}

const (
	// DefaultDedupWindowSize is the window without window arguments.
	DefaultDedupWindowSize = 10_000
	// MaxDedupWindowSize bounds x-deduplication-window-size, and is the
	// size of a window given only x-deduplication-window-ms.
	MaxDedupWindowSize = 10_000_000
)

// dedupConfig is a deduplication window: at most size ids, each for ttl
// milliseconds (0: no time limit).
type dedupConfig struct {
	size int
	ttl  int64
}

// dedupConfigOf reads an object's deduplication arguments (already
// validated); ok is false when it does not deduplicate.
func dedupConfigOf(args Table) (dedupConfig, bool) {
	if on, _ := args[ArgMessageDeduplication].(bool); !on {
		return dedupConfig{}, false
	}
	c := dedupConfig{size: DefaultDedupWindowSize}
	if _, ms, ok := intValue(args[ArgDedupWindowMs]); ok && ms > 0 {
		c.ttl = int64(min(ms, 1<<62))
		c.size = MaxDedupWindowSize
	}
	if _, n, ok := intValue(args[ArgDedupWindowSize]); ok && n > 0 {
		c.size = int(min(n, MaxDedupWindowSize))
	}
	return c, true
}

// dedupArgCheck validates one deduplication argument, nil for other keys.
func dedupArgCheck(key string) queueArgCheck {
	needsDedup := func(args Table) string {
		if on, _ := args[ArgMessageDeduplication].(bool); !on {
			return "window_but_no_deduplication"
		}
		return ""
	}
	switch key {
	case ArgMessageDeduplication:
		return checkBool
	case ArgDedupWindowSize:
		return func(v any, args Table) string {
			if e := checkPositiveInt(v, args); e != "" {
				return e
			}
			if _, n, _ := intValue(v); n > MaxDedupWindowSize {
				return fmt.Sprintf("{max_value_exceeded,%d}", n)
			}
			return needsDedup(args)
		}
	case ArgDedupWindowMs:
		return func(v any, args Table) string {
			if e := checkPositiveInt(v, args); e != "" {
				return e
			}
			return needsDedup(args)
		}
	}
	return nil
}

// checkDedupArgs validates the deduplication arguments of a new exchange
// (queues check them with their other arguments).
func checkDedupArgs(res string, args Table) error {
	for _, k := range dedupArgKeys() {
		v, ok := args[k]
		if !ok {
			continue
		}
		if reason := dedupArgCheck(k)(v, args); reason != "" {
			return modelErr(ErrPreconditionFailed, "invalid arg '%s' for %s: %s", k, res, reason)
		}
	}
	return nil
}

// ErrDuplicateOfFailed is what a duplicate's Wait returns when the publish
// it duplicates failed: neither was stored, and the publisher is to retry.
var ErrDuplicateOfFailed = errors.New("the publish of this message id failed")

// dedupEntry is one remembered id.
type dedupEntry struct {
	id     string
	at     int64 // accepted, in milliseconds since the Unix epoch
	offset int64 // its record in the window's log, -1 when not written
	gone   bool  // left the window (trimmed or failed); guarded by the window's mu

	// done is closed once the entry's fate is known: failed (err), kept
	// in memory only, or written (rec tells when the record is durable).
	// nil for an entry replayed from the log, known from the start.
	done chan struct{}
	err  error
	rec  storage.Pending
	msg  []storage.Pending // the message's appends, waited for before the record is written
}

// wait returns once the entry is as durable as it will be: its message's
// appends and its own record fsynced, or with why not.
func (e *dedupEntry) wait(ctx context.Context) error {
	if e.done != nil {
		select {
		case <-e.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e.err != nil {
		return e.err
	}
	return e.rec.Wait(ctx)
}

// dedupUnsettled reports whether waiting for any of es may block or fail.
func dedupUnsettled(es []*dedupEntry) bool {
	for _, e := range es {
		if e.done != nil {
			select {
			case <-e.done:
			default:
				return true
			}
		}
		if e.err != nil || e.rec != (storage.Pending{}) {
			return true
		}
	}
	return false
}

// dedupWindow is the deduplication state of one queue or exchange: the ids
// in the window, by id and in acceptance order, and, for a durable object,
// the log they are written to (dedup_store.go).
//
// Lock order: mu is innermost (admit and resolve are called outside
// Queue.mu and amqpRuntime.mu, and take nothing else), and it is never held
// while waiting for the disk.
type dedupWindow struct {
	cfg    dedupConfig
	now    func() time.Time
	store  *dedupStore // nil: in memory only
	logger *slog.Logger
	what   string // for logs

	mu      sync.Mutex
	ids     map[string]*dedupEntry
	order   []*dedupEntry // acceptance order from head; gone ones are skipped
	head    int
	toWrite []*dedupEntry // resolved entries whose record is to be written, in order
	writing bool          // writeLoop runs
	written int64         // records written by writeLoop
	closed  bool
	wg      sync.WaitGroup
}

func newDedupWindow(cfg dedupConfig, store *dedupStore, now func() time.Time, logger *slog.Logger, what string) *dedupWindow {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &dedupWindow{cfg: cfg, now: now, store: store, logger: logger, what: what, ids: map[string]*dedupEntry{}}
}

// restore adds an entry replayed from the log.
func (w *dedupWindow) restore(id string, at, offset int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.ids[id]; ok {
		old.gone = true
	}
	e := &dedupEntry{id: id, at: at, offset: offset}
	w.ids[id] = e
	w.order = append(w.order, e)
	w.trimLocked(w.now().UnixMilli())
}

// admit decides about a message id: if it is in the window, dup is true and
// e is the entry of the message it duplicates (whose wait is the
// duplicate's); otherwise e is a new entry, to be resolved once the publish
// is done.
func (w *dedupWindow) admit(id string) (e *dedupEntry, dup bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now().UnixMilli()
	w.trimLocked(now)
	if e, ok := w.ids[id]; ok {
		return e, true
	}
	e = &dedupEntry{id: id, at: now, offset: -1, done: make(chan struct{})}
	if w.closed {
		close(e.done) // the object is going: remember nothing
		return e, false
	}
	w.ids[id] = e
	w.order = append(w.order, e)
	w.trimLocked(now)
	return e, false
}

// resolve settles an admitted entry: ok says the publish succeeded (the
// message was stored everywhere it went); msg are its appends, and stored
// says one of them is in a durable queue's log, so the id is written to the
// window's log once they are durable.
func (w *dedupWindow) resolve(e *dedupEntry, ok bool, msg []storage.Pending, stored bool) {
	select {
	case <-e.done:
		return // admitted while closing
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !ok:
		w.failLocked(e, ErrDuplicateOfFailed)
	case !stored || w.store == nil:
		close(e.done)
	case w.closed:
		// Closing: the id cannot be written, so the publish is not to be
		// confirmed.
		w.failLocked(e, fmt.Errorf("%w: %w", ErrDuplicateOfFailed, ErrClosed))
	default:
		e.msg = append([]storage.Pending(nil), msg...)
		w.toWrite = append(w.toWrite, e)
		if !w.writing {
			w.writing = true
			w.wg.Add(1)
			go w.writeLoop()
		}
	}
}

// failLocked forgets an entry whose publish failed and tells its waiters.
func (w *dedupWindow) failLocked(e *dedupEntry, err error) {
	if w.ids[e.id] == e {
		delete(w.ids, e.id)
	}
	e.gone = true
	e.err = err
	close(e.done)
}

// trimLocked drops the ids that left the window: the oldest beyond size,
// and those older than the time limit.
func (w *dedupWindow) trimLocked(now int64) {
	for w.head < len(w.order) {
		e := w.order[w.head]
		expired := w.cfg.ttl > 0 && e.at+w.cfg.ttl <= now
		if !e.gone && len(w.ids) <= w.cfg.size && !expired {
			break
		}
		if !e.gone {
			e.gone = true
			if w.ids[e.id] == e {
				delete(w.ids, e.id)
			}
		}
		w.order[w.head] = nil
		w.head++
	}
	if w.head > 1024 && w.head > len(w.order)/2 {
		n := copy(w.order, w.order[w.head:])
		clear(w.order[n:])
		w.order, w.head = w.order[:n], 0
	}
}

// len returns the number of ids in the window.
func (w *dedupWindow) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trimLocked(w.now().UnixMilli())
	return len(w.ids)
}

// writeLoop writes the records of resolved entries, in order, each once
// its message's appends are durable; it runs while there are some.
func (w *dedupWindow) writeLoop() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(w.toWrite) == 0 {
			w.writing = false
			w.mu.Unlock()
			return
		}
		e := w.toWrite[0]
		w.toWrite[0] = nil
		w.toWrite = w.toWrite[1:]
		w.mu.Unlock()
		var err error
		for _, p := range e.msg {
			if err = p.Wait(context.Background()); err != nil {
				break
			}
		}
		var off int64 = -1
		var rec storage.Pending
		if err == nil {
			off, rec, err = w.store.append(e.id, e.at)
			if err != nil {
				w.logger.Warn("writing a message id to the deduplication log", "of", w.what, "err", err)
			}
		}
		w.mu.Lock()
		e.msg = nil
		if err != nil {
			w.failLocked(e, fmt.Errorf("%w: %w", ErrDuplicateOfFailed, err))
		} else {
			e.offset, e.rec = off, rec
			close(e.done)
		}
		start := int64(-1)
		if err == nil {
			if w.written++; w.written%dedupCompactEvery == 0 {
				start = w.liveStartLocked()
			}
		}
		w.mu.Unlock()
		if start >= 0 {
			w.store.compact(start)
		}
	}
}

// liveStartLocked returns the lowest log offset of an id in the window,
// below which the log holds only ids that left it (math.MaxInt64 when none
// was written). Records are written in the order publishes finish, which
// may differ a little from the order ids were admitted in, so every id in
// the window is looked at; writeLoop calls it once every dedupCompactEvery
// records. Ids not written yet will be written above the log's end.
func (w *dedupWindow) liveStartLocked() int64 {
	start := int64(math.MaxInt64)
	for _, e := range w.order[w.head:] {
		if !e.gone && e.offset >= 0 {
			start = min(start, e.offset)
		}
	}
	return start
}

// close stops the window once the records being written are; deleted
// removes its log.
func (w *dedupWindow) close(deleted bool) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.wg.Wait()
	if w.store == nil {
		return nil
	}
	if deleted {
		return w.store.delete()
	}
	return w.store.close()
}

// Basic property flags after expiration (queue_ttl.go names those before).
const propMessageID = 1 << 7

// propertyMessageID reads the message_id property from encoded basic
// properties (the flags, then the fields present) without decoding the
// others; ok is false when it is absent, empty or the properties are
// malformed.
func propertyMessageID(props []byte) (string, bool) {
	if len(props) < 2 {
		return "", false
	}
	flags := binary.BigEndian.Uint16(props)
	if flags&propMessageID == 0 {
		return "", false
	}
	p := props[2:]
	for f := flags; f&1 != 0; { // more flag words follow (none are defined)
		if len(p) < 2 {
			return "", false
		}
		f = binary.BigEndian.Uint16(p)
		p = p[2:]
	}
	for bit := uint16(1 << 15); bit > propMessageID; bit >>= 1 {
		if flags&bit == 0 {
			continue
		}
		var n int
		switch bit {
		case propHeaders:
			if len(p) < 4 {
				return "", false
			}
			n = 4 + int(binary.BigEndian.Uint32(p))
		case propDeliveryMode, propPriority:
			n = 1
		default: // short strings
			if len(p) < 1 {
				return "", false
			}
			n = 1 + int(p[0])
		}
		if n < 0 || n > len(p) {
			return "", false
		}
		p = p[n:]
	}
	if len(p) < 1 || len(p) < 1+int(p[0]) || p[0] == 0 {
		return "", false
	}
	return string(p[1 : 1+int(p[0])]), true
}

// attachQueueDedup gives a queue with x-message-deduplication its window,
// replayed from its log when the queue is durable.
func (b *Broker) attachQueueDedup(q *Queue, info QueueInfo) error {
	cfg, ok := dedupConfigOf(info.Arguments)
	if !ok {
		return nil
	}
	w, err := b.openDedupWindow(cfg, info.Durable, dedupQueueDirName(info.ID), rs("queue", info.Vhost, info.Name))
	if err != nil {
		return err
	}
	q.dedup = w
	return nil
}

// closeDedup closes the queue's window, if it has one; deleted removes its
// log.
func (q *Queue) closeDedup(deleted bool) error {
	if q.dedup == nil {
		return nil
	}
	return q.dedup.close(deleted)
}

// messageID reads a message's id once, for the windows of one publish.
type messageID struct {
	id       string
	ok, read bool
}

// admit admits the message's id to w; a message without an id is never a
// duplicate, and nothing is admitted (e is nil).
func (m *messageID) admit(w *dedupWindow, msg *Message) (e *dedupEntry, dup bool) {
	if !m.read {
		m.id, m.ok = propertyMessageID(msg.Properties)
		m.read = true
	}
	if !m.ok {
		return nil, false
	}
	return w.admit(m.id)
}

// publishDeduplicated enqueues a message routed from a deduplicating
// exchange, unless the exchange's window holds its id: then nothing is
// routed and the result is a Duplicate whose Wait is the original's.
func (b *Broker) publishDeduplicated(w *dedupWindow, sc *publishScratch, msg *Message) (PublishResult, error) {
	var id messageID
	e, dup := id.admit(w, msg)
	if dup {
		return PublishResult{Duplicate: true, dedup: []*dedupEntry{e}}, nil
	}
	res, err := b.enqueueAll(sc, msg)
	if e != nil {
		w.resolve(e, err == nil && res.Rejected == 0, res.pending, len(res.pending) > 0)
		res.dedup = append(res.dedup, e)
	}
	return res, err
}

// EnqueueFrom is Enqueue for a message published to exchange in vhost and
// routed to refs earlier (a transaction routes when a message is published
// and enqueues it at commit): if the exchange deduplicates, its window
// decides at commit, as Publish does.
func (b *Broker) EnqueueFrom(vhost, exchange string, refs []QueueRef, msg *Message) (PublishResult, error) {
	sc := b.getPublishScratch()
	defer b.putPublishScratch(sc)
	b.amqp.mu.RLock()
	for _, r := range refs {
		if q, ok := b.queues.byID[r.ID]; ok {
			sc.queues = append(sc.queues, q)
		}
	}
	w := b.dedupX.byName[ExchangeName{Vhost: vhost, Name: exchange}]
	b.amqp.mu.RUnlock()
	if w != nil {
		return b.publishDeduplicated(w, sc, msg)
	}
	return b.enqueueAll(sc, msg)
}
