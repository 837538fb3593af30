package storage

import (
	"fmt"
	"maps"
	"time"
)

// wakeSyncer asks the syncer for a round. Appends that arrive while a round
// is running leave one pending kick, so they share the next fsync.
func (l *Log) wakeSyncer() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// syncLoop is the log's group-commit goroutine: each round fsyncs every
// segment with unsynced data, and under FsyncAlways then moves the high
// watermark to what was written when the round began.
func (l *Log) syncLoop() {
	defer close(l.done)
	for {
		l.mu.Lock()
		policy, interval := l.cfg.Fsync, l.cfg.FsyncInterval
		l.mu.Unlock()
		var tick <-chan time.Time
		var timer *time.Timer
		if policy == FsyncInterval {
			timer = time.NewTimer(interval)
			tick = timer.C
		}
		select {
		case <-l.kick:
		case <-tick:
		case <-l.stop:
			err := l.syncRound(true)
			l.mu.Lock()
			l.closeErr = err
			l.mu.Unlock()
			return
		}
		if timer != nil {
			timer.Stop()
		}
		_ = l.syncRound(false) // failures are logged and handled in the round
	}
}

// syncRound runs one fsync round. final syncs the active segment whatever
// the policy (used by Close).
func (l *Log) syncRound(final bool) error {
	l.mu.Lock()
	policy := l.cfg.Fsync
	active := l.active()
	target, tpos, gen := l.next, active.size, l.gen
	var sealed []*segment
	for _, s := range l.segments {
		if s.sealed && !s.indexed {
			s.acquire()
			sealed = append(sealed, s)
		}
	}
	syncActive := final || policy == FsyncInterval || (policy == FsyncAlways && target > l.hw)
	if syncActive {
		active.acquire()
	}
	dirDirty := l.dirDirty
	l.dirDirty = false
	l.mu.Unlock()
	defer func() {
		for _, s := range sealed {
			s.release()
		}
		if syncActive {
			active.release()
		}
	}()

	var err error
	for _, s := range sealed {
		if err = l.timedSync(s); err != nil {
			err = fmt.Errorf("fsync %s: %w", s.path, err)
			break
		}
	}
	if err == nil && syncActive {
		if err = l.timedSync(active); err != nil {
			err = fmt.Errorf("fsync %s: %w", active.path, err)
		}
	}
	if err == nil && dirDirty {
		if err = l.fs.SyncDir(l.dir); err != nil {
			err = fmt.Errorf("fsync directory %s: %w", l.dir, err)
		}
	}
	written := make([]bool, len(sealed))
	if err == nil {
		for i, s := range sealed {
			if werr := s.writeIndexes(l.fs); werr != nil {
				l.logger.Warn("writing segment indexes; will retry", "segment", s.path, "err", werr)
				continue
			}
			written[i] = true
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.dirDirty = l.dirDirty || dirDirty
		l.logger.Error("fsync failed", "err", err)
		if policy == FsyncAlways && gen == l.gen && !final {
			l.cutBack(err)
		}
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	for i, s := range sealed {
		if written[i] {
			s.indexed = true
		}
	}
	if syncActive && (policy == FsyncAlways || final) && gen == l.gen {
		l.advanceHW(target, active, tpos)
	}
	return nil
}

// cutBack handles a failed fsync under FsyncAlways. After such a failure the
// kernel may have dropped the unsynced pages, so nothing past the high
// watermark can be trusted: the log is cut back to it, every append waiting
// on a later offset fails, and new appends reuse those offsets. Callers hold
// l.mu.
func (l *Log) cutBack(cause error) {
	i := len(l.segments) - 1
	for i > 0 && l.segments[i].base > l.hw {
		i--
	}
	s := l.segments[i]
	var pos int64
	switch {
	case s == l.hwSeg:
		pos = l.hwPos
	case s.base == l.hw:
		pos = 0
	default:
		pos = s.size
	}
	for _, later := range l.segments[i+1:] {
		if err := l.dropSegment(later); err != nil {
			l.logger.Error("dropping a segment past the durable offset", "err", err)
		}
	}
	l.segments = l.segments[:i+1]
	if err := s.file.Truncate(pos); err != nil {
		l.logger.Error("truncating to the durable offset", "segment", s.path, "err", err)
	}
	// The transactions the cut segment saw are followed again from where
	// it began.
	l.open = maps.Clone(s.openAtStart)
	if l.open == nil {
		l.open = map[int64]int64{}
	}
	s.openAtEnd = nil
	if _, err := s.recover(l.cfg.IndexIntervalBytes, pos, l.open); err != nil {
		l.logger.Error("re-reading the segment after a cut", "segment", s.path, "err", err)
	}
	s.removeIndexes(l.fs)
	s.sealed, s.indexed = false, false
	l.next = s.next
	l.hw, l.hwSeg, l.hwPos = s.next, s, s.size
	// Appends of this generation that ended at or below hw are durable and
	// kept; waitDurable tells them apart from the discarded ones. One entry
	// per failed fsync.
	l.cutHW = append(l.cutHW, l.hw)
	l.gen++
	l.genErr = fmt.Errorf("%w: %w; unacknowledged appends after offset %d were discarded", ErrStorage, cause, l.hw)
	l.dirDirty = true
	close(l.hwCh)
	l.hwCh = make(chan struct{})
	l.logger.Warn("log cut back to the last durable offset after a failed fsync", "offset", l.hw)
}

// timedSync fsyncs a segment file, telling ObserveSync how long it took.
func (l *Log) timedSync(s *segment) error {
	if l.observeSync == nil {
		return s.file.Sync()
	}
	start := time.Now()
	err := s.file.Sync()
	l.observeSync(time.Since(start))
	return err
}
