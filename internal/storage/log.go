package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options are the dependencies of a Log.
type Options struct {
	// FS is the filesystem; nil means OSFS.
	FS FS
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the log's own logs; nil discards them.
	Logger *slog.Logger
	// ObserveSync, when not nil, is told how long each fsync of a
	// segment took (for a latency histogram). It must not block.
	ObserveSync func(time.Duration)
	// OnOpen, when not nil, is told by Open what recovering the log took.
	OnOpen func(Recovery)
}

// Recovery is what opening a log had to do. After a clean Close it read
// no segment: every segment, the active one included, had valid indexes.
type Recovery struct {
	Dir string
	// ScannedSegments and ScannedBytes count the non-empty segments read
	// batch by batch because they had no valid indexes: the active
	// segment after a crash, or a sealed one whose indexes were lost.
	ScannedSegments int
	ScannedBytes    int64
	// TruncatedBytes is what was cut off torn or corrupt segment tails.
	TruncatedBytes int64
}

func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Log is an append-only sequence of record batches with dense offsets,
// stored as a directory of segments. It has one writer at a time (appends
// are serialised by its mutex) and any number of concurrent readers.
type Log struct {
	dir         string
	fs          FS
	now         func() time.Time
	logger      *slog.Logger
	observeSync func(time.Duration) // nil: not observed

	mu       sync.Mutex
	cfg      LogConfig
	segments []*segment // ordered by base offset; the last is active
	start    int64      // log start offset
	next     int64      // log end offset: the offset the next batch gets
	hw       int64      // high watermark: offsets below it may be read
	hwSeg    *segment   // the segment where hw falls, and its position
	hwPos    int64
	hwCh     chan struct{} // closed and replaced when hw moves or the log closes
	gen      uint64        // bumped when a failed fsync cuts the log back to hw
	genErr   error         // why the last cut happened
	cutHW    []int64       // cutHW[g]: the hw kept by the cut that ended gen g
	dirDirty bool          // segment files were created since the last dir fsync
	closed   bool
	closeErr error           // the final fsync's error, reported by Close
	open     map[int64]int64 // producers with an open transaction -> its first offset (txn.go)

	kick chan struct{} // wakes the syncer; capacity 1
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the syncer has finished
}

// AppendResult tells where an append landed.
type AppendResult struct {
	BaseOffset     int64 // offset of the first record appended
	LastOffset     int64 // offset of the last record appended
	LogAppendTime  int64 // append time stamped on the batches, or -1
	LogStartOffset int64
}

const startOffsetFile = "log-start-offset"

// Open opens the log in dir, creating it if needed, and recovers it: the
// last segment, and any segment whose indexes are missing or damaged, is
// verified batch by batch and cut at the first torn or corrupt batch.
func Open(dir string, cfg LogConfig, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	l := &Log{
		dir: dir, fs: opts.FS, now: opts.Now, logger: opts.Logger.With("log", dir), cfg: cfg, observeSync: opts.ObserveSync,
		hwCh: make(chan struct{}), kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: creating %s: %w", ErrStorage, dir, err)
	}
	rec := Recovery{Dir: dir}
	if err := l.load(&rec); err != nil {
		l.closeFiles()
		return nil, err
	}
	if opts.OnOpen != nil {
		opts.OnOpen(rec)
	}
	go l.syncLoop()
	return l, nil
}

// load lists the directory, opens every segment and recovers the tail: a
// segment with valid indexes is trusted (the last one has them only after a
// clean Close), any other is read batch by batch.
func (l *Log) load(rec *Recovery) error {
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("%w: listing %s: %w", ErrStorage, l.dir, err)
	}
	var bases []int64
	present := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		present[name] = true
		if strings.HasSuffix(name, ".tmp") {
			_ = l.fs.Remove(filepath.Join(l.dir, name))
			continue
		}
		if stem, ok := strings.CutSuffix(name, ".log"); ok {
			if base, err := strconv.ParseInt(stem, 10, 64); err == nil && base >= 0 {
				bases = append(bases, base)
			}
		}
	}
	slices.Sort(bases)
	// Index files without a segment are left over from a deletion.
	for _, e := range entries {
		name := e.Name()
		for _, ext := range []string{".index", ".timeindex", ".txnindex"} {
			if stem, ok := strings.CutSuffix(name, ext); ok && !present[stem+".log"] {
				_ = l.fs.Remove(filepath.Join(l.dir, name))
			}
		}
	}
	now := l.now()
	var start int64
	// The transactions open where the next segment begins: carried from
	// segment to segment, and taken from a whole segment's txn index.
	open := map[int64]int64{}
	l.open = open
	if buf, err := l.fs.ReadFile(filepath.Join(l.dir, startOffsetFile)); err == nil {
		if v, perr := strconv.ParseInt(strings.TrimSpace(string(buf)), 10, 64); perr == nil && v >= 0 {
			start = v
		}
	}
	for i, base := range bases {
		path := segmentStem(l.dir, base) + ".log"
		f, err := l.fs.OpenFile(path, os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("%w: opening %s: %w", ErrStorage, path, err)
		}
		s := newSegment(base, path, f, now)
		s.openAtStart = maps.Clone(open)
		l.segments = append(l.segments, s)
		if len(l.segments) > 1 {
			prev := l.segments[len(l.segments)-2]
			if prev.next != base {
				return fmt.Errorf("%w: segment %s starts at %d but the previous one ends at %d", ErrCorruptBatch, path, base, prev.next)
			}
		}
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("%w: stat %s: %w", ErrStorage, path, err)
		}
		last := i == len(bases)-1
		if err := s.loadIndexes(l.fs, info.Size()); err == nil {
			open = maps.Clone(s.openAtEnd)
			if last {
				// Written by a clean Close. The active segment keeps no
				// index files while it can change: they go now. Should
				// the removal not survive a crash, the size recorded in
				// them no longer matches once anything is appended.
				s.removeIndexes(l.fs)
				s.sinceIndex = int(s.size)
				if n := len(s.index); n > 0 {
					s.sinceIndex = int(s.size - int64(s.index[n-1].pos))
				}
				break
			}
			s.sealed, s.indexed = true, true
			continue
		} else if !last && !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("rebuilding damaged segment index", "segment", path, "err", err)
		}
		if info.Size() > 0 {
			rec.ScannedSegments++
			rec.ScannedBytes += info.Size()
		}
		if s.openAtStart == nil {
			s.openAtStart = map[int64]int64{}
		}
		open = maps.Clone(s.openAtStart)
		whole, err := s.recover(l.cfg.IndexIntervalBytes, info.Size(), open)
		if err != nil {
			return fmt.Errorf("%w: reading %s: %w", ErrStorage, path, err)
		}
		if whole < info.Size() {
			rec.TruncatedBytes += info.Size() - whole
			l.logger.Warn("truncating torn or corrupt segment tail", "segment", path, "valid_bytes", whole, "file_bytes", info.Size())
			if err := f.Truncate(whole); err != nil {
				return fmt.Errorf("%w: truncating %s: %w", ErrStorage, path, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("%w: fsync %s: %w", ErrStorage, path, err)
			}
		}
		s.removeIndexes(l.fs)
		if last {
			break
		}
		if whole < info.Size() || s.size == 0 {
			// A torn segment ends the log: later segments were never
			// acknowledged, because acknowledgement follows fsync of every
			// earlier segment.
			for _, b := range bases[i+1:] {
				stem := segmentStem(l.dir, b)
				for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
					_ = l.fs.Remove(stem + ext)
				}
			}
			break
		}
		// A whole segment that had lost its indexes: make it durable, then
		// record that it is whole.
		s.openAtEnd = maps.Clone(open)
		if err := f.Sync(); err != nil {
			return fmt.Errorf("%w: fsync %s: %w", ErrStorage, path, err)
		}
		if err := s.writeIndexes(l.fs); err != nil {
			return fmt.Errorf("%w: writing indexes of %s: %w", ErrStorage, path, err)
		}
		s.sealed, s.indexed = true, true
	}
	if len(l.segments) == 0 {
		if err := l.createSegment(start); err != nil {
			return err
		}
	}
	active := l.segments[len(l.segments)-1]
	active.sealed, active.indexed = false, false
	l.next = active.next
	l.start = max(start, l.segments[0].base)
	if l.start > l.next {
		// The start checkpoint is ahead of the data (the tail was lost):
		// every segment lies wholly below the start, so drop them all and
		// begin a fresh segment at the start offset so offsets stay dense.
		// A segment kept below the gap would make the next open fail. The
		// removals are made durable first for the same reason.
		for len(l.segments) > 0 {
			if err := l.dropSegment(l.segments[0]); err != nil {
				return err
			}
			l.segments = l.segments[1:]
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("%w: fsync directory %s: %w", ErrStorage, l.dir, err)
		}
		open = map[int64]int64{}
		l.open = open
		if err := l.createSegment(l.start); err != nil {
			return err
		}
		l.next = l.start
	}
	l.open = open
	l.hw, l.hwSeg, l.hwPos = l.next, l.active(), l.active().size
	l.dropBelowStart()
	return nil
}

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// createSegment adds a new empty active segment at base.
func (l *Log) createSegment(base int64) error {
	path := segmentStem(l.dir, base) + ".log"
	f, err := l.fs.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("%w: creating %s: %w", ErrStorage, path, err)
	}
	s := newSegment(base, path, f, l.now())
	s.openAtStart = maps.Clone(l.open)
	if s.openAtStart == nil {
		s.openAtStart = map[int64]int64{}
	}
	l.segments = append(l.segments, s)
	l.dirDirty = true
	return nil
}

// dropSegment removes a segment's files; open slices keep the data readable
// until they are released.
func (l *Log) dropSegment(s *segment) error {
	err := l.fs.Remove(s.path)
	s.removeIndexes(l.fs)
	s.release()
	l.dirDirty = true
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: removing %s: %w", ErrStorage, s.path, err)
	}
	return nil
}

// dropBelowStart deletes the sealed, durable segments wholly below the log
// start offset. Callers hold l.mu (or own the log exclusively).
func (l *Log) dropBelowStart() {
	for len(l.segments) > 1 && l.segments[0].indexed && l.segments[0].next <= l.start {
		if err := l.dropSegment(l.segments[0]); err != nil {
			l.logger.Warn("removing segment", "err", err)
		}
		l.segments = l.segments[1:]
	}
}

// roll seals the active segment and starts a new one. The sealed segment is
// handed to the syncer, which fsyncs it and writes its indexes.
func (l *Log) roll() error {
	old := l.active()
	if err := l.createSegment(l.next); err != nil {
		return err
	}
	old.openAtEnd = maps.Clone(l.open)
	old.sealed = true
	l.wakeSyncer()
	return nil
}

// shouldRoll reports whether a batch of size bytes must go to a new segment
// rather than to s, which will hold used bytes once the batches before it
// in the append are written.
func (l *Log) shouldRoll(s *segment, used, size int64, now time.Time, lastDelta int32) bool {
	if used == 0 {
		return false
	}
	return used+size > l.cfg.SegmentBytes ||
		now.Sub(s.created) >= l.cfg.SegmentAge ||
		l.next+int64(lastDelta)-s.base >= 1<<32-1
}

// Append validates the batches in buf (one or more whole RecordBatch v2),
// assigns them the next offsets by rewriting their headers in place, stamps
// LogAppendTime if the log is configured for it, and writes them. It returns
// once the batches are durable as the fsync policy defines. Records are not
// decoded. On error nothing of buf was acknowledged; batches before a failed
// write may still become readable.
func (l *Log) Append(ctx context.Context, buf []byte) (AppendResult, error) {
	res, p, err := l.AppendAsync(buf)
	if err != nil {
		return res, err
	}
	return res, p.Wait(ctx)
}

// Pending is an append that has been written but may not be durable yet.
type Pending struct {
	l    *Log
	end  int64
	gen  uint64
	sync bool
}

// Wait returns once the append is durable as the log's fsync policy
// defines, or with the error that makes it never so (a failed fsync, the
// log closing, ctx).
func (p Pending) Wait(ctx context.Context) error {
	if !p.sync {
		return nil
	}
	return p.l.waitDurable(ctx, p.end, p.gen)
}

// Poll is Wait without waiting: done reports whether the append's fate is
// known, and err is then Wait's result (nil once durable). The zero
// Pending is done.
func (p Pending) Poll() (done bool, err error) {
	if !p.sync {
		return true, nil
	}
	return p.l.pollDurable(p.end, p.gen)
}

// AppendAsync is Append without the wait: it returns once the batches are
// written (in order with every other append), and the Pending tells when
// they are durable. Callers that answer in order but want to pipeline, such
// as a Kafka connection, append here and wait later.
func (l *Log) AppendAsync(buf []byte) (AppendResult, Pending, error) {
	res := AppendResult{LogAppendTime: -1}
	l.mu.Lock()
	maxBatch := l.cfg.MaxBatchBytes
	l.mu.Unlock()
	// Validation (CRC over every byte) runs outside the lock so that
	// appenders to one log check their batches in parallel.
	if len(buf) == 0 {
		return res, Pending{}, fmt.Errorf("%w: empty append", ErrCorruptBatch)
	}
	for rest := buf; len(rest) > 0; {
		b, err := CheckBatch(rest, maxBatch)
		if err != nil {
			return res, Pending{}, err
		}
		rest = rest[len(b):]
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return res, Pending{}, ErrClosed
	}
	now := l.now()
	res.BaseOffset = l.next
	if l.cfg.TimestampType == LogAppendTime {
		res.LogAppendTime = now.UnixMilli()
	}
	var runStart int // buf[runStart:i] is stamped but not yet written
	seg := l.active()
	runPos := seg.size
	for i := 0; i < len(buf); {
		b := Batch(buf[i:])
		b = b[:b.Size()]
		if l.shouldRoll(seg, runPos+int64(i-runStart), int64(len(b)), now, b.LastOffsetDelta()) {
			if err := l.writeRun(seg, buf[runStart:i], runPos); err != nil {
				return res, Pending{}, err
			}
			if err := l.roll(); err != nil {
				return res, Pending{}, err
			}
			seg, runStart, runPos = l.active(), i, 0
		}
		b.setBaseOffset(l.next)
		if res.LogAppendTime >= 0 {
			b.setLogAppendTime(res.LogAppendTime)
		}
		l.next = b.NextOffset()
		i += len(b)
	}
	if err := l.writeRun(seg, buf[runStart:], runPos); err != nil {
		return res, Pending{}, err
	}
	res.LastOffset = l.next - 1
	res.LogStartOffset = l.start
	p := Pending{l: l, end: l.next, gen: l.gen, sync: l.cfg.Fsync == FsyncAlways}
	if p.sync {
		l.wakeSyncer()
	} else {
		l.advanceHW(l.next, seg, seg.size)
	}
	return res, p, nil
}

// writeRun writes consecutive stamped batches to seg at pos and indexes
// them. A failed write is cut off so the file ends at a batch boundary, and
// l.next is wound back to the segment's end.
func (l *Log) writeRun(seg *segment, run []byte, pos int64) error {
	if len(run) == 0 {
		return nil
	}
	if _, err := seg.file.WriteAt(run, pos); err != nil {
		l.next = seg.next
		if terr := seg.file.Truncate(pos); terr != nil {
			l.logger.Error("cutting a failed write", "segment", seg.path, "err", terr)
		}
		return fmt.Errorf("%w: writing %s: %w", ErrStorage, seg.path, err)
	}
	for len(run) > 0 {
		b := Batch(run)
		b = b[:b.Size()]
		seg.track(b, pos, l.cfg.IndexIntervalBytes)
		trackTxn(l.open, seg, b)
		pos += int64(len(b))
		run = run[len(b):]
	}
	return nil
}

// advanceHW moves the high watermark forward and wakes readers. Callers hold
// l.mu.
func (l *Log) advanceHW(hw int64, seg *segment, pos int64) {
	if hw <= l.hw {
		return
	}
	l.hw, l.hwSeg, l.hwPos = hw, seg, pos
	close(l.hwCh)
	l.hwCh = make(chan struct{})
}

// waitDurable waits until the high watermark reaches end, or the log was cut
// back by a failed fsync since the append (gen changed), or it closed.
func (l *Log) waitDurable(ctx context.Context, end int64, gen uint64) error {
	var syncerDone bool
	for {
		l.mu.Lock()
		hw, g, gerr, ch, closed := l.hw, l.gen, l.genErr, l.hwCh, l.closed
		var kept int64
		if g != gen {
			kept = l.cutHW[gen]
		}
		l.mu.Unlock()
		switch {
		case g != gen && end <= kept:
			// The append became durable before the cut, which kept it.
			return nil
		case g != gen:
			return gerr
		case hw >= end:
			return nil
		case closed && !syncerDone:
			// Close's final fsync round may still cover the append.
			select {
			case <-l.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			syncerDone = true
			continue
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pollDurable is waitDurable's verdict now, without waiting: not done while
// the append is neither durable nor discarded (including while Close's final
// fsync round may still cover it).
func (l *Log) pollDurable(end int64, gen uint64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.gen != gen && end <= l.cutHW[gen]:
		return true, nil
	case l.gen != gen:
		return true, l.genErr
	case l.hw >= end:
		return true, nil
	}
	return false, nil
}

// Config returns the log's current settings.
func (l *Log) Config() LogConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// SetConfig changes the log's settings; size and age limits apply from the
// next append or retention pass.
func (l *Log) SetConfig(cfg LogConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	if cfg.Fsync != FsyncAlways {
		l.advanceHW(l.next, l.active(), l.active().size)
	}
	l.wakeSyncer()
	return nil
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Offsets reports the log start offset, the high watermark (the end of what
// readers may see, which under FsyncAlways is what is durable) and the log
// end offset (what has been written).
func (l *Log) Offsets() (start, hw, end int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start, l.hw, l.next
}

// Size is the number of bytes in the log's segments.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segments {
		n += s.size
	}
	return n
}

// Close flushes and fsyncs everything written, waits for the syncer, and
// closes the files. Pending appends complete; later calls get ErrClosed.
// Once everything is on disk it writes the active segment's indexes, so
// that the next Open need not read it.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	err := l.closeErr
	if a := l.active(); err == nil && a.size > 0 {
		a.openAtEnd = maps.Clone(l.open)
		if werr := a.writeIndexes(l.fs); werr != nil {
			l.logger.Warn("writing the active segment's indexes; the next start reads it", "segment", a.path, "err", werr)
		}
	}
	close(l.hwCh)
	l.hwCh = make(chan struct{})
	l.mu.Unlock()
	l.closeFiles()
	return err
}

func (l *Log) closeFiles() {
	for _, s := range l.segments {
		s.release()
	}
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	cerr := l.Close()
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("%w: removing %s: %w", ErrStorage, l.dir, err)
	}
	if cerr != nil && !errors.Is(cerr, ErrStorage) {
		return cerr
	}
	return nil
}

// PendingUntil returns a Pending that is durable once every offset below end
// is: for an answer that depends on an earlier append, such as a
// retried batch that was already written.
func (l *Log) PendingUntil(end int64) Pending {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Pending{l: l, end: end, gen: l.gen, sync: l.cfg.Fsync == FsyncAlways}
}
