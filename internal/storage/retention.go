package storage

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// SetStartOffset moves the log start offset forward to offset, as Kafka's
// DeleteRecords does: offsets below it can no longer be read, and segments
// wholly below it are deleted. The new start is fsynced before it is
// returned. Moving it backwards does nothing; past the high watermark is
// ErrOffsetOutOfRange.
func (l *Log) SetStartOffset(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.start, ErrClosed
	}
	if offset > l.hw {
		return l.start, fmt.Errorf("%w: offset %d is past the high watermark %d", ErrOffsetOutOfRange, offset, l.hw)
	}
	if offset <= l.start {
		return l.start, nil
	}
	if err := l.writeStart(offset); err != nil {
		return l.start, err
	}
	l.start = offset
	l.dropBelowStart()
	return l.start, nil
}

// writeStart persists the log start offset. Callers hold l.mu.
func (l *Log) writeStart(offset int64) error {
	name := filepath.Join(l.dir, startOffsetFile)
	if err := WriteFileAtomic(l.fs, name, []byte(strconv.FormatInt(offset, 10)+"\n")); err != nil {
		return fmt.Errorf("%w: writing %s: %w", ErrStorage, name, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("%w: fsync directory %s: %w", ErrStorage, l.dir, err)
	}
	return nil
}

// ApplyRetention enforces the log's time and size retention and rolls an
// active segment that has grown old. Only whole segments are deleted, oldest
// first; the segment being written is rolled first when it has expired too.
// It returns the number of segments deleted.
func (l *Log) ApplyRetention(now time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	cfg := l.cfg
	active := l.active()
	if active.size > 0 && now.Sub(active.created) >= cfg.SegmentAge {
		if err := l.roll(); err != nil {
			return 0, err
		}
	}
	expired := func(s *segment) bool {
		if cfg.RetentionAge <= 0 {
			return false
		}
		ts := s.maxTS
		if ts < 0 {
			ts = s.created.UnixMilli()
		}
		return now.UnixMilli()-ts > cfg.RetentionAge.Milliseconds()
	}
	var total int64
	for _, s := range l.segments {
		total += s.size
	}
	// The active segment is rolled so it can go too when all of it has
	// expired and all of it is durable.
	if a := l.active(); a.size > 0 && expired(a) && a.next == l.hw && l.hwSeg == a {
		allExpired := true
		for _, s := range l.segments[:len(l.segments)-1] {
			allExpired = allExpired && expired(s)
		}
		if allExpired {
			if err := l.roll(); err != nil {
				return 0, err
			}
		}
	}
	var dropped int
	for len(l.segments) > 1 {
		s := l.segments[0]
		// Only segments whose data and indexes are durable are deleted, so
		// recovery never sees a gap it would take for damage.
		if !s.indexed || s.next > l.hw {
			break
		}
		bySize := cfg.RetentionBytes > 0 && total-s.size >= cfg.RetentionBytes
		if !bySize && !expired(s) {
			break
		}
		// No checkpoint is needed: on open the start is at least the
		// first segment's base.
		l.start = max(l.start, l.segments[1].base)
		if err := l.dropSegment(s); err != nil {
			l.logger.Warn("deleting an expired segment", "err", err)
		}
		l.segments = l.segments[1:]
		total -= s.size
		dropped++
	}
	return dropped, nil
}
