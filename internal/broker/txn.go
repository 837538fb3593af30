package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// The transaction coordinator keeps the state of every transactional id
// (txnRecord) in a storage log of its own under <data-dir>/txn, always
// fsynced: every change is appended, and waited for, before it is answered
// or acted on, and the log is replayed on open.
//
// # Invariants
//
//   - A transaction's partitions are durable in its record before the
//     partitions accept its batches, so every open transaction in a
//     partition belongs to a record that names the partition.
//   - Ending a transaction makes PrepareCommit or PrepareAbort durable,
//     then writes a marker to each of its partitions and waits for them
//     (and, for a commit, for its offsets in the offsets store), and only
//     then records CompleteCommit or CompleteAbort and answers. A Prepare
//     state found on open, or left by a failed write, is completed again;
//     a marker written twice is harmless, as is an offset applied twice.
//   - A transactional id idle (no transaction open) for txnIDExpiration is
//     forgotten: a tombstone record, and replay drops it.
//   - A transaction open for longer than its timeout is aborted with the
//     producer's epoch bumped, which fences the producer: its later
//     requests get PRODUCER_FENCED and its batches INVALID_PRODUCER_EPOCH.
//     Ongoing transactions found on open keep running and time out alike.
//   - InitProducerId for a transactional id bumps its epoch; a transaction
//     of the previous epoch that is still open is aborted first.
//   - Compaction: once the bytes written since the last snapshot exceed
//     both txnCompactBytes and twice the snapshot's size, a snapshot of
//     every id's state is appended, with no change in flight, and the log
//     start moves to it; replaying from either start gives the same state.
//
// # Locks
//
// Each transactional id has its own lock, held across its disk waits;
// txnCoordinator.mu guards the map and the published views only and is
// never held while waiting. Lock order: a transactional id's lock before
// the producer id lock (producerids.go), a partition's lock and the group
// coordinator's lock.
type txnCoordinator struct {
	log    *storage.Log
	now    func() time.Time
	logger *slog.Logger

	// appendMu is held for reading by each change from its append until
	// its view is published, and for writing by a compaction, which so
	// sees every change written before its snapshot.
	appendMu      sync.RWMutex
	sinceSnapshot atomic.Int64 // bytes appended since the last snapshot
	liveBytes     atomic.Int64 // size of the last snapshot
	compacting    atomic.Bool
	compactBytes  int64 // txnCompactBytes; tests lower it
	wg            sync.WaitGroup

	mu     sync.Mutex
	txns   map[string]*txnEntry
	closed bool
}

// txnEntry is one transactional id: its state, changed under mu, and a
// copy of it for readers that must not wait (view, under the
// coordinator's mu).
type txnEntry struct {
	mu      sync.Mutex
	rec     txnRecord
	exists  bool // rec has been written
	expired bool // removed from the coordinator; look the id up again

	view txnRecord
}

// Transaction timeouts, as Kafka bounds them.
const (
	maxTxnTimeout      = 15 * time.Minute
	txnIDExpiration    = 7 * 24 * time.Hour // an idle transactional id is forgotten, as Kafka's default
	txnSweepInterval   = time.Second
	txnCompactBytes    = 16 << 20
	txnCompleteTimeout = time.Minute
)

// openTxns opens the transaction log, replays it and completes what it
// left half done; Open then starts the timeout sweeper (sweepTxns).
// Partitions and groups are open already.
func (b *Broker) openTxns() error {
	lc := storage.DefaultLogConfig()
	lc.Fsync = storage.FsyncAlways
	lc.RetentionAge = 0
	lc.RetentionBytes = -1
	lc.SegmentAge = 1 << 62
	lc.SegmentBytes = txnCompactBytes
	lc.MaxBatchBytes = 256 << 20
	l, err := storage.Open(filepath.Join(b.opts.DataDir, "txn"), lc, b.storageOptions())
	if err != nil {
		return fmt.Errorf("opening the transaction log: %w", err)
	}
	c := &txnCoordinator{log: l, now: b.opts.Now, logger: b.logger, txns: map[string]*txnEntry{}, compactBytes: txnCompactBytes}
	b.txns = c
	if err := c.replay(); err != nil {
		return err
	}
	c.sinceSnapshot.Store(c.log.Size())
	if err := c.compact(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), txnCompleteTimeout)
	defer cancel()
	for _, e := range c.entries() {
		e.mu.Lock()
		switch e.rec.State {
		case TxnPrepareCommit, TxnPrepareAbort:
			if err := b.completeTxn(ctx, e); err != nil {
				b.logger.Warn("completing a transaction found prepared on open; the sweeper retries", "transactional_id", e.rec.ID, "err", err)
			}
		case TxnOngoing:
			for _, p := range e.rec.Partitions {
				if part, err := b.Partition(p.Topic, p.Partition); err == nil {
					part.addToTxn(e.rec.ProducerID, e.rec.Epoch)
				}
			}
		}
		e.mu.Unlock()
	}
	return nil
}

// replay reads every record of the log; the last one of each id wins.
func (c *txnCoordinator) replay() error {
	var batches, bad int
	start, _, _ := c.log.Offsets()
	err := scanLog(c.log, start, func(b storage.Batch) error {
		batches++
		return storage.DecodeRecords(b, func(r storage.Record) bool {
			rec, err := decodeTxnRecord(r.Value)
			if err != nil {
				bad++
				return true
			}
			if rec.Expired {
				delete(c.txns, rec.ID)
				return true
			}
			e := c.txns[rec.ID]
			if e == nil {
				e = &txnEntry{}
				c.txns[rec.ID] = e
			}
			e.rec, e.view, e.exists = rec, rec, true
			return true
		})
	})
	if err != nil {
		return fmt.Errorf("replaying the transaction log: %w", err)
	}
	if bad > 0 {
		c.logger.Warn("skipped malformed transaction records", "records", bad)
	}
	c.logger.Debug("transaction log replayed", "batches", batches, "transactional_ids", len(c.txns))
	return nil
}

// scanLog reads every batch of a log from offset to its high watermark.
func scanLog(l *storage.Log, offset int64, fn func(storage.Batch) error) error {
	for {
		res, err := l.Read(offset, 1<<20)
		if err != nil {
			return err
		}
		if res.Len() == 0 {
			res.Release()
			return nil
		}
		buf, err := res.AppendTo(nil)
		res.Release()
		if err != nil {
			return err
		}
		var ferr error
		if err := storage.SplitBatches(buf, func(b storage.Batch) bool {
			ferr = fn(b)
			offset = b.NextOffset()
			return ferr == nil
		}); err != nil {
			return err
		}
		if ferr != nil {
			return ferr
		}
	}
}

// compact appends a snapshot of every transactional id's state and moves
// the log start to it, once the bytes written since the last snapshot
// exceed both txnCompactBytes and twice that snapshot: replaying from
// either start gives the same state. No change is in flight meanwhile.
func (c *txnCoordinator) compact() error {
	if n := c.sinceSnapshot.Load(); n < c.compactBytes || n < 2*c.liveBytes.Load() {
		return nil
	}
	c.appendMu.Lock()
	defer c.appendMu.Unlock()
	now := c.now().UnixMilli()
	var recs []storage.Record
	c.mu.Lock()
	for _, e := range c.txns {
		if e.view.ID != "" && !e.view.Expired {
			recs = append(recs, storage.Record{Timestamp: now, Key: []byte(e.view.ID), Value: encodeTxnRecord(e.view)})
		}
	}
	c.mu.Unlock()
	_, _, end := c.log.Offsets()
	var size int64
	if len(recs) > 0 {
		batch := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
		ctx, cancel := context.WithTimeout(context.Background(), txnCompleteTimeout)
		defer cancel()
		res, err := c.log.Append(ctx, batch)
		if err != nil {
			return fmt.Errorf("compacting the transaction log: %w", err)
		}
		end, size = res.BaseOffset, int64(len(batch))
	}
	if _, err := c.log.SetStartOffset(end); err != nil {
		return fmt.Errorf("compacting the transaction log: %w", err)
	}
	c.sinceSnapshot.Store(0)
	c.liveBytes.Store(size)
	return nil
}

// maybeCompact compacts in the background when the log has grown enough,
// one compaction at a time.
func (c *txnCoordinator) maybeCompact() {
	if n := c.sinceSnapshot.Load(); n < c.compactBytes || n < 2*c.liveBytes.Load() || !c.compacting.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.compacting.Store(false)
		if err := c.compact(); err != nil && !errors.Is(err, storage.ErrClosed) {
			c.logger.Warn("compacting the transaction log", "err", err)
		}
	}()
}

// entries returns every transactional id's entry.
func (c *txnCoordinator) entries() []*txnEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*txnEntry, 0, len(c.txns))
	for _, e := range c.txns {
		out = append(out, e)
	}
	return out
}

// entry returns the entry of a transactional id, creating an empty one
// when create is set; nil otherwise.
func (c *txnCoordinator) entry(id string, create bool) (*txnEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrNotCoordinator
	}
	e := c.txns[id]
	if e == nil && create {
		e = &txnEntry{}
		c.txns[id] = e
	}
	return e, nil
}

// persist makes rec the entry's durable state. Callers hold e.mu.
func (c *txnCoordinator) persist(ctx context.Context, e *txnEntry, rec txnRecord) error {
	rec.UpdateMs = c.now().UnixMilli()
	batch := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Timestamp: rec.UpdateMs, Key: []byte(rec.ID), Value: encodeTxnRecord(rec)}}})
	c.appendMu.RLock()
	if _, err := c.log.Append(ctx, batch); err != nil {
		c.appendMu.RUnlock()
		return fmt.Errorf("writing to the transaction log: %w", err)
	}
	e.rec, e.exists = rec, true
	c.mu.Lock()
	e.view = rec
	c.mu.Unlock()
	c.appendMu.RUnlock()
	c.sinceSnapshot.Add(int64(len(batch)))
	c.maybeCompact()
	return nil
}

func (c *txnCoordinator) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	err := c.log.Close()
	c.wg.Wait()
	return err
}

// lockEntry finds and locks a transactional id's entry and checks the
// producer id and epoch a request gives against it. The caller unlocks.
func (b *Broker) lockEntry(id string, pid int64, epoch int16) (*txnEntry, error) {
	e, err := b.txns.entry(id, false)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: transactional id %q has no producer id", ErrInvalidProducerIDMapping, id)
	}
	e.mu.Lock()
	switch {
	case e.expired || !e.exists || e.rec.ProducerID != pid:
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: transactional id %q, producer id %d", ErrInvalidProducerIDMapping, id, pid)
	case epoch != e.rec.Epoch:
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: epoch %d, transactional id %q is at %d", ErrProducerFenced, epoch, id, e.rec.Epoch)
	}
	return e, nil
}

// InitTxnProducer gives a transactional producer its producer id and a new
// epoch, fencing every earlier producer of the same transactional id. A
// transaction left open by the previous epoch is aborted first. With the
// id and epoch the producer had (KIP-360), they must be the current ones
// or the ones before the last bump (a retry, or a producer whose
// transaction timed out); otherwise the producer is fenced.
func (b *Broker) InitTxnProducer(ctx context.Context, id string, timeout time.Duration, pid int64, epoch int16) (int64, int16, error) {
	if timeout <= 0 || timeout > maxTxnTimeout {
		return -1, -1, fmt.Errorf("%w: %v, at most %v", ErrInvalidTxnTimeout, timeout, maxTxnTimeout)
	}
	var e *txnEntry
	for {
		var err error
		if e, err = b.txns.entry(id, true); err != nil {
			return -1, -1, err
		}
		e.mu.Lock()
		if !e.expired {
			break
		}
		e.mu.Unlock()
	}
	defer e.mu.Unlock()
	rec := e.rec
	if !e.exists {
		newID, _, err := b.InitProducerID(ctx, -1, -1)
		if err != nil {
			return -1, -1, err
		}
		rec = txnRecord{ID: id, ProducerID: newID, Epoch: 0, PrevEpoch: -1}
	} else {
		if pid >= 0 {
			switch {
			case pid == rec.ProducerID && epoch == rec.PrevEpoch && rec.State == TxnEmpty:
				// A retry of the last bump, whose answer was lost.
				return rec.ProducerID, rec.Epoch, nil
			case pid != rec.ProducerID || (epoch != rec.Epoch && epoch != rec.PrevEpoch):
				// The epoch before the last bump is accepted, as Kafka
				// does: it is the producer's own after the broker aborted
				// its transaction for its timeout.
				return -1, -1, fmt.Errorf("%w: producer %d epoch %d, transactional id %q is at producer %d epoch %d",
					ErrProducerFenced, pid, epoch, id, rec.ProducerID, rec.Epoch)
			}
		}
		switch rec.State {
		case TxnOngoing:
			if err := b.abortBumped(ctx, e); err != nil {
				return -1, -1, err
			}
		case TxnPrepareCommit, TxnPrepareAbort:
			if err := b.completeTxn(ctx, e); err != nil {
				return -1, -1, err
			}
		}
		rec = e.rec
		rec.PrevEpoch = rec.Epoch
		if rec.Epoch >= math.MaxInt16-1 {
			newID, _, err := b.InitProducerID(ctx, -1, -1)
			if err != nil {
				return -1, -1, err
			}
			rec.ProducerID, rec.Epoch, rec.PrevEpoch = newID, 0, -1
		} else {
			rec.Epoch++
		}
	}
	rec.State, rec.TimeoutMs, rec.StartMs = TxnEmpty, timeout.Milliseconds(), 0
	rec.Partitions, rec.Groups, rec.Offsets = nil, nil, nil
	if err := b.txns.persist(ctx, e, rec); err != nil {
		return -1, -1, err
	}
	return rec.ProducerID, rec.Epoch, nil
}

// begin moves the transaction to Ongoing if it is not already, for a
// request that adds to it. Callers hold e.mu.
func (b *Broker) begin(e *txnEntry) (txnRecord, error) {
	rec := e.rec
	switch rec.State {
	case TxnOngoing:
	case TxnEmpty, TxnCompleteCommit, TxnCompleteAbort:
		rec.State, rec.StartMs = TxnOngoing, b.txns.now().UnixMilli()
		rec.Partitions, rec.Groups, rec.Offsets = nil, nil, nil
	default:
		// A prepared transaction whose markers failed; the sweeper
		// completes it, and the client retries.
		return rec, fmt.Errorf("%w: transaction of %q is %v", ErrConcurrentTransactions, rec.ID, rec.State)
	}
	return rec, nil
}

// AddPartitionsToTxn adds partitions to the producer's transaction, which
// begins with the first. Either every partition is added or none: a
// partition that does not exist fails with ErrUnknownPartition, and the
// others with ErrOperationNotAttempted. The second result concerns the
// whole request.
func (b *Broker) AddPartitionsToTxn(ctx context.Context, id string, pid int64, epoch int16, parts []TopicPartition) (map[TopicPartition]error, error) {
	e, err := b.lockEntry(id, pid, epoch)
	if err != nil {
		return nil, err
	}
	defer e.mu.Unlock()
	errs := map[TopicPartition]error{}
	targets := make([]*Partition, 0, len(parts))
	for _, tp := range parts {
		part, err := b.Partition(tp.Topic, tp.Partition)
		if err != nil {
			errs[tp] = err
			continue
		}
		targets = append(targets, part)
	}
	if len(errs) > 0 {
		for _, tp := range parts {
			if errs[tp] == nil {
				errs[tp] = ErrOperationNotAttempted
			}
		}
		return errs, nil
	}
	rec, err := b.begin(e)
	if err != nil {
		return nil, err
	}
	added := false
	for _, tp := range parts {
		p := txnPartition{Topic: tp.Topic, Partition: tp.Partition}
		if !slices.Contains(rec.Partitions, p) {
			rec.Partitions = append(slices.Clip(rec.Partitions), p)
			added = true
		}
	}
	if added || rec.State != e.rec.State {
		if err := b.txns.persist(ctx, e, rec); err != nil {
			return nil, err
		}
	}
	for _, part := range targets {
		part.addToTxn(pid, epoch)
	}
	return errs, nil
}

// AddOffsetsToTxn adds a group's offsets to the producer's transaction:
// TxnOffsetCommit may then commit offsets of the group in it.
func (b *Broker) AddOffsetsToTxn(ctx context.Context, id string, pid int64, epoch int16, group string) error {
	if group == "" {
		return fmt.Errorf("%w: empty group id", ErrInvalidGroupID)
	}
	e, err := b.lockEntry(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	rec, err := b.begin(e)
	if err != nil {
		return err
	}
	if slices.Contains(rec.Groups, group) && rec.State == e.rec.State {
		return nil
	}
	if !slices.Contains(rec.Groups, group) {
		rec.Groups = append(slices.Clip(rec.Groups), group)
	}
	return b.txns.persist(ctx, e, rec)
}

// TxnOffsetCommitRequest is offsets a transaction commits for a group when
// it commits. Generation, MemberID and InstanceID (TxnOffsetCommit v3) are
// checked as an OffsetCommit's are; generation -1 skips the check.
type TxnOffsetCommitRequest struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Group           string
	Generation      int32
	MemberID        string
	InstanceID      string
	Offsets         []OffsetCommit
}

// TxnOffsetCommit records offsets in the producer's transaction; they
// become the group's committed offsets when the transaction commits and
// are dropped if it aborts. It returns one error per offset, or an error
// for the whole request.
func (b *Broker) TxnOffsetCommit(ctx context.Context, req TxnOffsetCommitRequest) ([]error, error) {
	e, err := b.lockEntry(req.TransactionalID, req.ProducerID, req.ProducerEpoch)
	if err != nil {
		return nil, err
	}
	defer e.mu.Unlock()
	rec := e.rec
	if rec.State != TxnOngoing || !slices.Contains(rec.Groups, req.Group) {
		return nil, fmt.Errorf("%w: group %q was not added to the transaction of %q", ErrInvalidTxnState, req.Group, rec.ID)
	}
	errs, err := b.groups.checkTxnCommit(req)
	if err != nil {
		return nil, err
	}
	offsets := slices.Clone(rec.Offsets)
	for i, o := range req.Offsets {
		if errs[i] != nil {
			continue
		}
		to := txnOffset{Group: req.Group, Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
		offsets = slices.DeleteFunc(offsets, func(x txnOffset) bool {
			return x.Group == to.Group && x.Topic == to.Topic && x.Partition == to.Partition
		})
		offsets = append(offsets, to)
	}
	rec.Offsets = offsets
	if err := b.txns.persist(ctx, e, rec); err != nil {
		return nil, err
	}
	return errs, nil
}

// EndTxn commits or aborts the producer's transaction: markers in every
// partition it holds and, for a commit, its offsets in the groups; it
// returns once all of it is durable. A retry of an end that completed
// succeeds again; ending a transaction that holds nothing, or ending it
// the other way, is ErrInvalidTxnState.
func (b *Broker) EndTxn(ctx context.Context, id string, pid int64, epoch int16, commit bool) error {
	e, err := b.lockEntry(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	rec := e.rec
	want := TxnPrepareAbort
	if commit {
		want = TxnPrepareCommit
	}
	switch {
	case rec.State == TxnOngoing:
		rec.State = want
		if err := b.txns.persist(ctx, e, rec); err != nil {
			return err
		}
	case rec.State == want:
	case commit && rec.State == TxnCompleteCommit, !commit && rec.State == TxnCompleteAbort:
		return nil
	default:
		return fmt.Errorf("%w: cannot %s the transaction of %q, which is %v", ErrInvalidTxnState, map[bool]string{true: "commit", false: "abort"}[commit], id, rec.State)
	}
	return b.completeTxn(ctx, e)
}

// abortBumped aborts the entry's ongoing transaction with the producer's
// epoch bumped, which fences the producer. Callers hold e.mu.
func (b *Broker) abortBumped(ctx context.Context, e *txnEntry) error {
	rec := e.rec
	if rec.Epoch < math.MaxInt16-1 {
		rec.PrevEpoch, rec.Epoch = rec.Epoch, rec.Epoch+1
	}
	rec.State = TxnPrepareAbort
	if err := b.txns.persist(ctx, e, rec); err != nil {
		return err
	}
	return b.completeTxn(ctx, e)
}

// completeTxn finishes a prepared transaction: markers with the entry's
// epoch in every partition, the offsets for a commit, then the Complete
// state. Callers hold e.mu.
func (b *Broker) completeTxn(ctx context.Context, e *txnEntry) error {
	rec := e.rec
	commit := rec.State == TxnPrepareCommit
	now := b.txns.now().UnixMilli()
	var pendings []Pending
	for _, p := range rec.Partitions {
		part, err := b.Partition(p.Topic, p.Partition)
		if err != nil {
			// A partition deleted since holds nothing to mark.
			continue
		}
		pending, err := part.writeMarker(rec.ProducerID, rec.Epoch, commit, now)
		if err != nil {
			return err
		}
		pendings = append(pendings, pending)
	}
	for _, p := range pendings {
		if err := p.Wait(ctx); err != nil {
			return fmt.Errorf("waiting for transaction markers: %w", err)
		}
	}
	if commit && len(rec.Offsets) > 0 {
		persisted, err := b.groups.commitTxnOffsets(rec.Offsets)
		if err != nil {
			return err
		}
		if err := persisted.Wait(ctx); err != nil {
			return fmt.Errorf("committing transactional offsets: %w", err)
		}
	}
	rec.State = TxnCompleteAbort
	if commit {
		rec.State = TxnCompleteCommit
	}
	rec.Partitions, rec.Offsets = nil, nil
	return b.txns.persist(ctx, e, rec)
}

// sweepTxns aborts transactions open past their timeout and retries the
// completion of prepared ones, until the broker stops.
func (b *Broker) sweepTxns() {
	defer b.wg.Done()
	t := time.NewTicker(txnSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.SweepTxns()
		}
	}
}

// SweepTxns runs one pass of the timeout sweeper now.
func (b *Broker) SweepTxns() {
	now := b.txns.now().UnixMilli()
	ctx, cancel := context.WithTimeout(context.Background(), txnCompleteTimeout)
	defer cancel()
	for _, e := range b.txns.entries() {
		b.txns.mu.Lock()
		v := e.view
		b.txns.mu.Unlock()
		expired := v.State == TxnOngoing && now-v.StartMs > v.TimeoutMs
		idle := (v.State == TxnEmpty || v.State == TxnCompleteCommit || v.State == TxnCompleteAbort) &&
			now-v.UpdateMs > txnIDExpiration.Milliseconds()
		if !expired && !idle && v.State != TxnPrepareCommit && v.State != TxnPrepareAbort {
			continue
		}
		e.mu.Lock()
		var err error
		switch {
		case e.expired || !e.exists:
		case idle && e.rec.UpdateMs == v.UpdateMs && e.rec.State == v.State:
			err = b.expireTxnID(ctx, e)
		case e.rec.State == TxnOngoing && now-e.rec.StartMs > e.rec.TimeoutMs:
			b.logger.Info("aborting a transaction past its timeout", "transactional_id", e.rec.ID,
				"producer_id", e.rec.ProducerID, "epoch", e.rec.Epoch, "timeout_ms", e.rec.TimeoutMs)
			err = b.abortBumped(ctx, e)
		case e.rec.State == TxnPrepareCommit || e.rec.State == TxnPrepareAbort:
			err = b.completeTxn(ctx, e)
		}
		id := e.rec.ID
		e.mu.Unlock()
		if err != nil && !errors.Is(err, ErrNotCoordinator) {
			b.logger.Warn("completing a transaction", "transactional_id", id, "err", err)
		}
	}
}

// expireTxnID forgets an idle transactional id: a tombstone in the log,
// then the entry goes. Its next InitProducerId starts afresh, with a new
// producer id. Callers hold e.mu.
func (b *Broker) expireTxnID(ctx context.Context, e *txnEntry) error {
	rec := e.rec
	rec.Expired = true
	if err := b.txns.persist(ctx, e, rec); err != nil {
		return err
	}
	e.expired = true
	b.txns.mu.Lock()
	if b.txns.txns[rec.ID] == e {
		delete(b.txns.txns, rec.ID)
	}
	b.txns.mu.Unlock()
	b.logger.Debug("forgot an idle transactional id", "transactional_id", rec.ID)
	return nil
}

// TxnDescription describes one transactional id.
type TxnDescription struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	State           TxnState
	Timeout         time.Duration
	Start           time.Time // zero when no transaction is open
	Partitions      []TopicPartition
}

// Transactions describes every transactional id, sorted by id, with its
// partitions sorted by topic and partition.
func (b *Broker) Transactions() []TxnDescription {
	b.txns.mu.Lock()
	defer b.txns.mu.Unlock()
	out := make([]TxnDescription, 0, len(b.txns.txns))
	for _, e := range b.txns.txns {
		v := e.view
		if v.ID == "" || v.Expired {
			continue
		}
		d := TxnDescription{TransactionalID: v.ID, ProducerID: v.ProducerID, ProducerEpoch: v.Epoch, State: v.State,
			Timeout: time.Duration(v.TimeoutMs) * time.Millisecond}
		if v.State == TxnOngoing || v.State == TxnPrepareCommit || v.State == TxnPrepareAbort {
			d.Start = time.UnixMilli(v.StartMs)
		}
		for _, p := range v.Partitions {
			d.Partitions = append(d.Partitions, TopicPartition{Topic: p.Topic, Partition: p.Partition})
		}
		slices.SortFunc(d.Partitions, func(a, b TopicPartition) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return cmp.Compare(a.Partition, b.Partition)
		})
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b TxnDescription) int { return strings.Compare(a.TransactionalID, b.TransactionalID) })
	return out
}

// PendingTxnOffsets reports the partitions of a group whose committed
// offset a transaction not yet complete may change.
func (b *Broker) PendingTxnOffsets(group string) map[TopicPartition]bool {
	b.txns.mu.Lock()
	defer b.txns.mu.Unlock()
	out := map[TopicPartition]bool{}
	for _, e := range b.txns.txns {
		v := e.view
		if v.State != TxnOngoing && v.State != TxnPrepareCommit {
			continue
		}
		for _, o := range v.Offsets {
			if o.Group == group {
				out[TopicPartition{Topic: o.Topic, Partition: o.Partition}] = true
			}
		}
	}
	return out
}
