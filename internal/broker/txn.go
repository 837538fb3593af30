package broker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
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
	// The waits below outlive the request: a write that was made becomes
	// durable or fails whatever the client does, and the state in memory
	// must follow the log, not the client.
	ctx = context.WithoutCancel(ctx)
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
