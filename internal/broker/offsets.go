package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// The offsets store keeps committed offsets (and the little that is
// remembered of each group across restarts) in a storage log of its own
// under <data-dir>/offsets, always fsynced. Each write is one batch: a
// commit request, a group deletion, an expiry pass. Every record is an
// offsetOp (offsets_codec.go); the log, replayed from its start, is the
// live state, and it is replayed on open.
//
// # Invariants
//
//   - A write is acknowledged (Persisted.Wait returns nil) only after the
//     fsync that covers it. Its effect becomes visible to readers at the
//     same moment, never before: a fetch never returns an offset that a
//     crash could still take back.
//   - Writes are applied to the in-memory state in log order, whatever
//     order their fsyncs complete in: each waits for its predecessor.
//   - A write whose fsync fails is never applied; the storage log cuts it
//     off, so memory and disk agree.
//   - Compaction: once the bytes written since the last snapshot exceed
//     both compactBytes and the size of that snapshot (the live state), the
//     store blocks new writes until every earlier write has been applied,
//     then appends a snapshot: commit and group-meta records for the whole
//     live state, nothing else. Only after the snapshot is durable does it
//     move the log start to the snapshot's first offset; the segments below
//     it are then deleted. Replaying from either start gives the same state:
//     the snapshot records re-set values that the records before them
//     produced, and records after it were written after it. A crash at any
//     point therefore loses nothing.
//
// # Locks
//
// appendMu orders appends (and so the log) and is taken inside the group
// coordinator's lock; mu guards the in-memory state and is never held
// while waiting for the disk.
type offsetStore struct {
	log    *storage.Log
	now    func() time.Time
	logger *slog.Logger
	cfg    offsetStoreConfig

	appendMu      sync.Mutex
	tail          chan struct{} // closed once the last write is applied (or failed)
	sinceSnapshot int64         // bytes written since the last snapshot
	liveBytes     int64         // size of the last snapshot
	compacting    bool
	closed        bool

	mu     sync.RWMutex
	groups map[string]*storedGroup

	wg sync.WaitGroup
}

type storedGroup struct {
	offsets map[TopicPartition]storedOffset
	meta    *groupMeta
}

func (g *storedGroup) empty() bool { return len(g.offsets) == 0 && g.meta == nil }

// offsetStoreConfig sizes the offsets log and its compaction.
type offsetStoreConfig struct {
	segmentBytes int64 // segment size of the log; whole segments below the start are deleted
	compactBytes int64 // bytes written since the last snapshot before compacting
}

func defaultOffsetStoreConfig() offsetStoreConfig {
	return offsetStoreConfig{segmentBytes: 16 << 20, compactBytes: 16 << 20}
}

// snapshotBatchBytes bounds each batch of a snapshot; a snapshot of a large
// state is several batches, written in one append.
const snapshotBatchBytes = 1 << 20

func openOffsetStore(dir string, opts storage.Options, cfg offsetStoreConfig) (*offsetStore, error) {
	lc := storage.DefaultLogConfig()
	lc.Fsync = storage.FsyncAlways
	lc.RetentionAge = 0
	lc.RetentionBytes = -1
	lc.SegmentAge = 1 << 62
	lc.SegmentBytes = cfg.segmentBytes
	lc.MaxBatchBytes = 256 << 20
	l, err := storage.Open(dir, lc, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the offsets log: %w", err)
	}
	tail := make(chan struct{})
	close(tail)
	s := &offsetStore{log: l, now: opts.Now, logger: opts.Logger, cfg: cfg, tail: tail, groups: map[string]*storedGroup{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	n, err := s.replay()
	if err != nil {
		l.Close()
		return nil, err
	}
	s.sinceSnapshot = n
	for _, b := range s.snapshotBatches() {
		s.liveBytes += int64(len(b))
	}
	return s, nil
}

// replay applies every record from the log start and returns the bytes
// read.
func (s *offsetStore) replay() (int64, error) {
	start, hw, _ := s.log.Offsets()
	var buf []byte
	var total int64
	for offset := start; offset < hw; {
		res, err := s.log.Read(offset, 1<<20)
		if err != nil {
			return 0, fmt.Errorf("reading the offsets log at %d: %w", offset, err)
		}
		buf, err = res.AppendTo(buf[:0])
		res.Release()
		if err != nil {
			return 0, fmt.Errorf("reading the offsets log at %d: %w", offset, err)
		}
		total += int64(len(buf))
		var derr error
		err = storage.SplitBatches(buf, func(b storage.Batch) bool {
			var opErr error
			derr = storage.DecodeRecords(b, func(r storage.Record) bool {
				var op offsetOp
				if op, opErr = decodeOffsetOp(r.Value); opErr != nil {
					return false
				}
				s.apply(op)
				return true
			})
			if derr == nil {
				derr = opErr
			}
			if derr != nil {
				return false
			}
			offset = b.NextOffset()
			return true
		})
		if err == nil {
			err = derr
		}
		if err != nil {
			return 0, fmt.Errorf("offsets log at offset %d: %w", offset, err)
		}
	}
	return total, nil
}

// apply changes the in-memory state. Callers hold mu or own the store.
func (s *offsetStore) apply(op offsetOp) {
	g := s.groups[op.group]
	switch op.kind {
	case opCommit:
		if g == nil {
			g = &storedGroup{offsets: map[TopicPartition]storedOffset{}}
			s.groups[op.group] = g
		}
		maps.Copy(g.offsets, op.commits)
	case opDelete:
		if g != nil {
			for _, tp := range op.deletes {
				delete(g.offsets, tp)
			}
		}
	case opDeleteGroup:
		g = nil
		delete(s.groups, op.group)
	case opGroupMeta:
		if g == nil {
			g = &storedGroup{offsets: map[TopicPartition]storedOffset{}}
			s.groups[op.group] = g
		}
		m := op.meta
		g.meta = &m
	}
	if g != nil && g.empty() {
		delete(s.groups, op.group)
	}
}

// Persisted is a change to committed offsets or groups on its way to disk.
// The zero value is a change that needs no waiting.
type Persisted struct{ w *offsetWrite }

// Wait returns once the change is durable and visible, or with the error
// that keeps it from ever being so, or ctx's error.
func (p Persisted) Wait(ctx context.Context) error {
	if p.w == nil {
		return nil
	}
	select {
	case <-p.w.done:
		return p.w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type offsetWrite struct {
	done chan struct{}
	err  error
}

// write appends ops as one batch, in order with every other write, and
// applies them once they are durable. Callers that need the log to follow
// their own order (the group coordinator) call it under their lock.
func (s *offsetStore) write(ops []offsetOp) (Persisted, error) {
	if len(ops) == 0 {
		return Persisted{}, nil
	}
	ms := s.now().UnixMilli()
	recs := make([]storage.Record, len(ops))
	for i, op := range ops {
		recs[i] = storage.Record{Timestamp: ms, Key: []byte(op.kind.String()), Value: encodeOffsetOp(nil, op)}
	}
	batch := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if s.closed {
		return Persisted{}, ErrNotCoordinator
	}
	_, pending, err := s.log.AppendAsync(batch)
	if err != nil {
		return Persisted{}, fmt.Errorf("writing to the offsets log: %w", err)
	}
	s.sinceSnapshot += int64(len(batch))
	w := s.chain(pending, func() {
		s.mu.Lock()
		for _, op := range ops {
			s.apply(op)
		}
		s.mu.Unlock()
	})
	if !s.compacting && s.sinceSnapshot > max(s.cfg.compactBytes, s.liveBytes) {
		s.compacting = true
		s.wg.Add(1)
		go s.compact()
	}
	return Persisted{w: w}, nil
}

// chain runs fn once pending is durable and every earlier write has been
// applied. Callers hold appendMu.
func (s *offsetStore) chain(pending storage.Pending, fn func()) *offsetWrite {
	prev, done := s.tail, make(chan struct{})
	s.tail = done
	w := &offsetWrite{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := pending.Wait(context.Background())
		if errors.Is(err, storage.ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrNotCoordinator, err)
		}
		<-prev
		if err == nil {
			fn()
		}
		close(done)
		w.err = err
		close(w.done)
	}()
	return w
}

// compact writes a snapshot of the live state and moves the log start to
// it once it is durable.
func (s *offsetStore) compact() {
	defer s.wg.Done()
	err := s.snapshot()
	s.appendMu.Lock()
	s.compacting = false
	s.appendMu.Unlock()
	if err != nil && !errors.Is(err, ErrNotCoordinator) && !errors.Is(err, storage.ErrClosed) {
		s.logger.Warn("compacting the offsets log", "err", err)
	}
}

func (s *offsetStore) snapshot() error {
	s.appendMu.Lock()
	if s.closed {
		s.appendMu.Unlock()
		return ErrNotCoordinator
	}
	// Every earlier write must be in the state the snapshot is taken of.
	<-s.tail
	s.mu.RLock()
	batches := s.snapshotBatches()
	s.mu.RUnlock()
	var buf []byte
	for _, b := range batches {
		buf = append(buf, b...)
	}
	var start int64
	var pending storage.Pending
	if len(buf) == 0 {
		// Nothing is live: everything written so far can go.
		_, hw, _ := s.log.Offsets()
		start = hw
	} else {
		res, p, err := s.log.AppendAsync(buf)
		if err != nil {
			s.appendMu.Unlock()
			return fmt.Errorf("writing a snapshot: %w", err)
		}
		start, pending = res.BaseOffset, p
	}
	s.sinceSnapshot, s.liveBytes = 0, int64(len(buf))
	w := s.chain(pending, func() {})
	s.appendMu.Unlock()
	<-w.done
	if w.err != nil {
		return fmt.Errorf("writing a snapshot: %w", w.err)
	}
	if _, err := s.log.SetStartOffset(start); err != nil {
		return fmt.Errorf("moving the offsets log start to the snapshot: %w", err)
	}
	s.logger.Debug("compacted the offsets log", "start", start, "snapshot_bytes", len(buf))
	return nil
}

// snapshotBatches encodes the live state as batches of at most about
// snapshotBatchBytes. Callers hold mu (or own the store).
func (s *offsetStore) snapshotBatches() [][]byte {
	ms := s.now().UnixMilli()
	var out [][]byte
	var recs []storage.Record
	size := 0
	flush := func() {
		if len(recs) > 0 {
			out = append(out, storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs}))
			recs, size = nil, 0
		}
	}
	add := func(op offsetOp) {
		v := encodeOffsetOp(nil, op)
		if size > 0 && size+len(v) > snapshotBatchBytes {
			flush()
		}
		recs = append(recs, storage.Record{Timestamp: ms, Key: []byte(op.kind.String()), Value: v})
		size += len(v) + 32
	}
	for name, g := range s.groups {
		if g.meta != nil {
			add(offsetOp{kind: opGroupMeta, group: name, meta: *g.meta})
		}
		// Split a large group so that no record is far over the batch size.
		chunk := map[TopicPartition]storedOffset{}
		chunkBytes := 0
		for tp, o := range g.offsets {
			chunk[tp] = o
			chunkBytes += len(tp.Topic) + len(o.Metadata) + 40
			if chunkBytes >= snapshotBatchBytes/2 {
				add(offsetOp{kind: opCommit, group: name, commits: chunk})
				chunk, chunkBytes = map[TopicPartition]storedOffset{}, 0
			}
		}
		if len(chunk) > 0 {
			add(offsetOp{kind: opCommit, group: name, commits: chunk})
		}
	}
	flush()
	return out
}

// offsets returns a copy of a group's committed offsets.
func (s *offsetStore) offsets(group string) map[TopicPartition]storedOffset {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[group]
	if g == nil {
		return map[TopicPartition]storedOffset{}
	}
	return maps.Clone(g.offsets)
}

// meta returns what is remembered of a group.
func (s *offsetStore) meta(group string) (groupMeta, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g := s.groups[group]; g != nil && g.meta != nil {
		return *g.meta, true
	}
	return groupMeta{}, false
}

// groupNames lists every group the store knows.
func (s *offsetStore) groupNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.groups))
	for name := range s.groups {
		out = append(out, name)
	}
	return out
}

// topicOffsets lists, per group, the committed partitions of a topic.
func (s *offsetStore) topicOffsets(topic string) map[string][]TopicPartition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string][]TopicPartition{}
	for name, g := range s.groups {
		for tp := range g.offsets {
			if tp.Topic == topic {
				out[name] = append(out[name], tp)
			}
		}
	}
	return out
}

// close stops writes, waits for the ones in flight and closes the log.
func (s *offsetStore) close() error {
	s.appendMu.Lock()
	s.closed = true
	s.appendMu.Unlock()
	// Closing the log completes every pending fsync, so the appliers finish.
	err := s.log.Close()
	s.wg.Wait()
	return err
}
