package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// queueRuntimes holds the delivery state of every queue in the model, by
// id. The map is guarded by amqpRuntime.mu: it changes together with the
// model, so routing finds a queue's runtime under the same read lock.
type queueRuntimes struct {
	byID map[QueueID]*Queue
	// streams holds the stream queues, which have no Queue (stream.go).
	streams map[QueueID]*Stream
}

func (b *Broker) queueDir(id QueueID) string {
	return filepath.Join(b.opts.DataDir, "queues", id.String())
}

// newQueueRuntime builds the delivery state of a queue, opening and
// recovering its log when it is durable. clean says the last run closed
// the queue cleanly (see cleanmark.go); a queue being declared has nothing
// to recover and is clean.
func (b *Broker) newQueueRuntime(info QueueInfo, clean bool) (*Queue, error) {
	if !info.Durable {
		q := newQueue(info, nil, nil, 0, b.opts.Now)
		q.onDead = b.deadLetter
		return q, b.attachQueueDedup(q, info)
	}
	store, msgs, err := openQueueStore(b.queueDir(info.ID), queueLogConfig(b.opts.LogDefaults), b.storageOptions(), b.opts.QueueMemoryBytes, clean)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", rs("queue", info.Vhost, info.Name), err)
	}
	if len(msgs) > 0 {
		b.logger.Info("queue recovered", "vhost", info.Vhost, "queue", info.Name, "messages", len(msgs))
	}
	q := newQueue(info, store, msgs, b.opts.QueueMemoryBytes, b.opts.Now)
	q.onDead = b.deadLetter
	if err := b.attachQueueDedup(q, info); err != nil {
		q.close(false)
		return nil, err
	}
	if err := q.rememberQueueIDs(msgs); err != nil { // dedup_recover.go
		q.close(false)
		return nil, err
	}
	q.recovered = msgs // for the exchanges' windows (openDedup), then dropped
	return q, nil
}

// queueChanges lists what a plan does to queue runtimes: those to create
// before it applies, those to remove after.
type queueChanges struct {
	created        []*Queue
	createdStreams []*Stream
	removed        []QueueID
}

// prepareQueues creates the runtimes of the queues a plan declares and
// lists those it deletes. Callers hold b.mu.
func (b *Broker) prepareQueues(p *amqpPlan) (queueChanges, error) {
	var qc queueChanges
	for _, st := range p.steps {
		switch {
		case st.DeclareQueue != nil:
			d := st.DeclareQueue
			if queueTypeOf(d.Arguments) == QueueStream {
				qc.createdStreams = append(qc.createdStreams, b.newStream(d.Vhost, d.Name, d.ID))
				continue
			}
			q, err := b.newQueueRuntime(QueueInfo{Vhost: d.Vhost, Name: d.Name, ID: d.ID, Durable: d.Durable, AutoDelete: d.AutoDelete, Arguments: d.Arguments}, true)
			if err != nil {
				for _, c := range qc.created {
					c.close(true)
					c.closeDedup(true)
				}
				return qc, err
			}
			qc.created = append(qc.created, q)
		case st.DeleteQueue != nil:
			qc.removed = append(qc.removed, st.DeleteQueue.ID)
		case st.DeleteVhost != nil:
			if vh, ok := b.state.amqp.vhosts[st.DeleteVhost.Name]; ok {
				for _, q := range vh.queues {
					qc.removed = append(qc.removed, q.def.ID)
				}
			}
		}
	}
	return qc, nil
}

// swapQueues installs and removes runtimes; callers hold amqpRuntime.mu
// for writing. It returns the removed ones.
func (b *Broker) swapQueues(qc queueChanges) ([]*Queue, []*Stream) {
	for _, q := range qc.created {
		b.queues.byID[q.ID] = q
	}
	for _, s := range qc.createdStreams {
		b.queues.streams[s.ID] = s
	}
	var gone []*Queue
	var goneStreams []*Stream
	for _, id := range qc.removed {
		if q, ok := b.queues.byID[id]; ok {
			gone = append(gone, q)
			delete(b.queues.byID, id)
		}
		if s, ok := b.queues.streams[id]; ok {
			goneStreams = append(goneStreams, s)
			delete(b.queues.streams, id)
		}
	}
	return gone, goneStreams
}

// retireQueues deletes removed queues' data and tells their consumers.
func (b *Broker) retireQueues(gone []*Queue) {
	for _, q := range gone {
		cs, err := q.close(true)
		if err != nil {
			b.logger.Warn("removing a deleted queue's data", "vhost", q.Vhost, "queue", q.Name, "err", err)
		}
		if err := q.closeDedup(true); err != nil {
			b.logger.Warn("removing a deleted queue's deduplication state", "vhost", q.Vhost, "queue", q.Name, "err", err)
		}
		for _, c := range cs {
			if c.Cancelled != nil {
				c.Cancelled()
			}
		}
	}
}

// openQueues builds the runtimes of the queues in the replayed state and
// removes the logs of queues that no longer exist. After a crash (no
// clean-shutdown mark), every recovered message is flagged redelivered.
func (b *Broker) openQueues() error {
	b.queues.byID = map[QueueID]*Queue{}
	b.queues.streams = map[QueueID]*Stream{}
	dir := filepath.Join(b.opts.DataDir, "queues")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	clean, err := takeCleanMark(b.opts.FS, b.opts.DataDir)
	if err != nil {
		return err
	}
	if !clean {
		b.logger.Info("the last run did not close the queues cleanly; recovered messages are flagged redelivered")
	}
	known := map[string]bool{}
	for _, vh := range b.state.amqp.vhosts {
		for _, aq := range vh.queues {
			if aq.typ == QueueStream {
				b.queues.streams[aq.def.ID] = b.newStream(aq.def.Vhost, aq.def.Name, aq.def.ID)
				continue
			}
			q, err := b.newQueueRuntime(aq.info(), clean)
			if err != nil {
				return err
			}
			b.queues.byID[q.ID] = q
			known[q.ID.String()] = true
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, e := range entries {
		if !known[e.Name()] {
			b.logger.Info("removing the data of a deleted queue", "dir", e.Name())
			if err := b.opts.FS.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				b.logger.Warn("removing a deleted queue's data", "dir", e.Name(), "err", err)
			}
		}
	}
	return nil
}

// closeQueues flushes and closes every queue runtime.
func (b *Broker) closeQueues() error {
	b.amqp.mu.Lock()
	qs := b.queues.byID
	b.queues.byID = map[QueueID]*Queue{}
	for _, s := range b.queues.streams {
		s.close()
	}
	b.amqp.mu.Unlock()
	var errs []error
	for _, q := range qs {
		if _, err := q.close(false); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", q, err))
		}
		if err := q.closeDedup(false); err != nil {
			errs = append(errs, fmt.Errorf("closing the deduplication window of %s: %w", q, err))
		}
	}
	return errors.Join(errs...)
}

// queueFlusher persists the settlements of durable queues every interval.
func (b *Broker) queueFlusher(every time.Duration) {
	defer b.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.FlushQueues()
			b.ExpireMessages()
			if err := b.ExpireQueues(context.Background()); err != nil {
				b.logger.Warn("deleting expired queues", "err", err)
			}
		}
	}
}

// FlushQueues persists every durable queue's settlements now.
func (b *Broker) FlushQueues() {
	b.amqp.mu.RLock()
	var qs []*Queue
	for _, q := range b.queues.byID {
		if q.store != nil {
			qs = append(qs, q)
		}
	}
	b.amqp.mu.RUnlock()
	for _, q := range qs {
		if err := q.flush(); err != nil {
			b.logger.Warn("persisting queue acknowledgements", "vhost", q.Vhost, "queue", q.Name, "err", err)
		}
	}
}

// Queue returns the delivery state of a queue for connection connID
// (basic.consume, basic.get, queue.purge): ErrNotFound if it does not
// exist, ErrResourceLocked if it is another connection's exclusive queue.
func (b *Broker) Queue(vhost, connID, name string) (*Queue, error) {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	vh, err := b.state.amqp.vhost(vhost)
	if err != nil {
		return nil, err
	}
	aq, ok := vh.queues[name]
	if !ok {
		return nil, modelErr(ErrNotFound, "no %s", rs("queue", vhost, name))
	}
	if err := checkExclusiveAccess(aq, connID, false); err != nil {
		return nil, err
	}
	if aq.typ == QueueStream {
		return nil, streamQueueRefused(vhost, name)
	}
	q, ok := b.queues.byID[aq.def.ID]
	if !ok {
		return nil, modelErr(ErrNotFound, "no %s", rs("queue", vhost, name))
	}
	return q, nil
}

// CancelConsumer removes a consumer from its queue and deletes the queue if
// it is auto-delete and that was its last consumer.
func (b *Broker) CancelConsumer(ctx context.Context, q *Queue, c *Consumer) error {
	if !q.Cancel(c) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	vh, err := b.state.amqp.vhost(q.Vhost)
	if err != nil {
		return nil
	}
	aq, ok := vh.queues[q.Name]
	if !ok || aq.def.ID != q.ID || !aq.def.AutoDelete {
		return nil
	}
	q.mu.Lock()
	stillUnused := len(q.consumers) == 0
	q.mu.Unlock()
	if !stillUnused {
		return nil
	}
	p := newAMQPPlan()
	p.deleteQueue(aq)
	return b.commitAMQP(ctx, p)
}

// PublishResult is what a publish did.
type PublishResult struct {
	// Routed is the number of queues the message went to.
	Routed int
	// Rejected is the number of those that refused it because they are
	// full (x-overflow reject-publish or reject-publish-dlx): the
	// publisher is to be nacked, and Wait returns ErrQueueFull.
	Rejected int
	// Duplicate says the exchange published to deduplicates and had
	// accepted the message's id within its window: the message was not
	// routed (dedup.go). Queues that deduplicate it count in Routed.
	Duplicate bool
	pending   []storage.Pending
	dedup     []*dedupEntry // ids accepted, or the originals of duplicates
}

// Durable reports whether the message was written to at least one queue
// log, so that Wait waits for an fsync, or whether Wait waits for a
// deduplication window to record its id or to settle the publish it
// duplicates (dedup.go).
func (r *PublishResult) Durable() bool { return len(r.pending) > 0 || dedupUnsettled(r.dedup) }

// Wait returns once the message is durable in every durable queue it was
// stored in (the group commit's fsync), or with why it never will be.
func (r *PublishResult) Wait(ctx context.Context) error {
	if r.Rejected > 0 {
		return fmt.Errorf("%w: %d of %d queues refused the message", ErrQueueFull, r.Rejected, r.Routed)
	}
	for _, p := range r.pending {
		if err := p.Wait(ctx); err != nil {
			return err
		}
	}
	for _, e := range r.dedup {
		if err := e.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (b *Broker) getPublishScratch() *publishScratch {
	if sc, ok := b.publishPool.Get().(*publishScratch); ok {
		return sc
	}
	return &publishScratch{}
}

func (b *Broker) putPublishScratch(sc *publishScratch) {
	clear(sc.queues)
	clear(sc.streams)
	sc.refs, sc.queues, sc.streams, sc.batch = sc.refs[:0], sc.queues[:0], sc.streams[:0], sc.batch[:0]
	b.publishPool.Put(sc)
}

// publishScratch is reused across publishes to avoid allocating.
type publishScratch struct {
	refs    []QueueRef
	queues  []*Queue
	streams []*Stream
	batch   []byte
}

// Publish routes a message from exchange in vhost with its routing keys
// (the routing key, then any CC and BCC keys) and headers, and enqueues it
// in every queue it routes to, each once; a key of the default exchange
// that names a direct reply-to requester hands the message to it instead
// (DirectReplies), which Routed counts. A persistent message is appended
// to the log of every durable queue it reaches before Publish returns; the
// result's Wait tells when those appends are durable. Errors are those of
// routing (ErrNotFound, ErrAccessRefused for an internal exchange) or of
// storage (the message may then be in some queues and not others).
func (b *Broker) Publish(vhost, exchange string, keys []string, headers Table, msg *Message) (PublishResult, error) {
	sc := b.getPublishScratch()
	defer b.putPublishScratch(sc)
	rsc, _ := b.amqp.scratch.Get().(*routeScratch)
	if rsc == nil {
		rsc = &routeScratch{}
	}
	b.amqp.mu.RLock()
	refs, err := b.state.amqp.route(sc.refs[:0], rsc, vhost, exchange, keys, headers)
	for _, r := range refs {
		if q, ok := b.queues.byID[r.ID]; ok {
			sc.queues = append(sc.queues, q)
		} else if s, ok := b.queues.streams[r.ID]; ok {
			sc.streams = append(sc.streams, s)
		}
	}
	var xw *dedupWindow
	if len(b.dedupX.byName) > 0 {
		xw = b.dedupX.byName[ExchangeName{Vhost: vhost, Name: exchange}]
	}
	b.amqp.mu.RUnlock()
	rsc.reset()
	b.amqp.scratch.Put(rsc)
	sc.refs = refs
	if err != nil {
		return PublishResult{}, err
	}
	if xw != nil {
		return b.publishDeduplicated(xw, sc, msg)
	}
	res, err := b.enqueueAll(sc, msg)
	if err == nil {
		res.Routed += b.DirectReplies(vhost, exchange, keys, msg)
	}
	return res, err
}

// Enqueue puts a message in queues already routed to (a transaction routes
// when a message is published and enqueues it at commit). Queues deleted
// meanwhile are skipped; Routed counts the others.
func (b *Broker) Enqueue(refs []QueueRef, msg *Message) (PublishResult, error) {
	sc := b.getPublishScratch()
	defer b.putPublishScratch(sc)
	b.amqp.mu.RLock()
	for _, r := range refs {
		if q, ok := b.queues.byID[r.ID]; ok {
			sc.queues = append(sc.queues, q)
		} else if s, ok := b.queues.streams[r.ID]; ok {
			sc.streams = append(sc.streams, s)
		}
	}
	b.amqp.mu.RUnlock()
	return b.enqueueAll(sc, msg)
}

// enqueueAll enqueues msg in sc.queues, storing it once encoded, and
// appends it to the logs of sc.streams, persistent or not.
func (b *Broker) enqueueAll(sc *publishScratch, msg *Message) (PublishResult, error) {
	res := PublishResult{Routed: len(sc.queues) + len(sc.streams)}
	var id messageID
	for _, s := range sc.streams {
		p, err := s.append(msg)
		if errors.Is(err, ErrStreamClosed) || errors.Is(err, ErrLogClosed) {
			continue // deleted meanwhile: dropped, as by a deleted queue
		}
		if errors.Is(err, ErrBatchTooLarge) {
			return res, modelErr(ErrPreconditionFailed, "message of %d bytes is too large for the log of stream %s (its topic's max.message.bytes)", len(msg.Body), s)
		}
		if err != nil {
			return res, fmt.Errorf("appending a message to %s: %w", s, err)
		}
		res.pending = append(res.pending, p)
	}
	for _, q := range sc.queues {
		var admitted *dedupEntry
		if q.dedup != nil {
			e, dup := id.admit(q.dedup, msg)
			if dup {
				res.dedup = append(res.dedup, e) // not enqueued again
				continue
			}
			admitted = e
		}
		if q.store != nil && msg.Persistent && len(sc.batch) == 0 {
			sc.batch = encodeQueueRecord(sc.batch, msg)
		}
		p, rejected, err := q.enqueue(msg, sc.batch)
		if admitted != nil {
			q.dedup.resolve(admitted, err == nil && !rejected, []storage.Pending{p}, p != (storage.Pending{}))
			res.dedup = append(res.dedup, admitted)
		}
		if err != nil {
			return res, fmt.Errorf("storing a message in %s: %w", q, err)
		}
		if rejected {
			res.Rejected++
		}
		if p != (storage.Pending{}) {
			res.pending = append(res.pending, p)
		}
	}
	return res, nil
}
