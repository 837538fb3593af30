package storage

import (
	"context"
	"fmt"
	"io"
	"sort"
)

// Slice is a range of whole batches in one segment file. It keeps the file
// open until Release, even if retention deletes the segment meanwhile. Its
// bytes are served as stored: WriteTo sends them to a socket with sendfile
// where the OS allows.
type Slice struct {
	seg  *segment
	pos  int64
	size int64
}

// Len is the number of bytes in the slice; zero for an empty read.
func (s *Slice) Len() int { return int(s.size) }

// AppendTo appends the slice's bytes to dst.
func (s *Slice) AppendTo(dst []byte) ([]byte, error) {
	if s.size == 0 {
		return dst, nil
	}
	n := len(dst)
	dst = append(dst, make([]byte, s.size)...)
	if _, err := s.seg.file.ReadAt(dst[n:], s.pos); err != nil {
		return dst[:n], fmt.Errorf("%w: reading %s: %w", ErrStorage, s.seg.path, err)
	}
	return dst, nil
}

// WriteTo writes the slice's bytes to w, without copying them through user
// space when w is a TCP or Unix socket.
func (s *Slice) WriteTo(w io.Writer) (int64, error) {
	if s.size == 0 {
		return 0, nil
	}
	if n, handled, err := sendFile(w, s.seg.file, s.pos, s.size); handled {
		return n, err
	}
	return io.Copy(w, io.NewSectionReader(s.seg.file, s.pos, s.size))
}

// Release lets the segment file close once it is deleted. Calling it more
// than once is harmless.
func (s *Slice) Release() {
	if s.seg != nil {
		s.seg.release()
		s.seg = nil
	}
}

// ReadResult is the outcome of a Read.
type ReadResult struct {
	Slice
	HighWatermark  int64
	LogStartOffset int64
	LastStable     int64 // the last stable offset when the read was made
}

// Read returns the batches from the one holding offset, in one segment, up to
// maxBytes, but always at least one whole batch so that readers make
// progress. It never returns data at or past the high watermark. Reading at
// the high watermark returns an empty slice; below the log start or past the
// high watermark, ErrOffsetOutOfRange. The caller must Release the result.
func (l *Log) Read(offset int64, maxBytes int) (ReadResult, error) {
	return l.read(offset, maxBytes, false)
}

// ReadStable is Read for a read-committed reader: it never returns data at
// or past the last stable offset. Reading between the last stable offset
// and the high watermark returns an empty slice.
func (l *Log) ReadStable(offset int64, maxBytes int) (ReadResult, error) {
	return l.read(offset, maxBytes, true)
}

func (l *Log) read(offset int64, maxBytes int, stable bool) (ReadResult, error) {
	l.mu.Lock()
	res := ReadResult{HighWatermark: l.hw, LogStartOffset: l.start, LastStable: l.lastStable()}
	if l.closed {
		l.mu.Unlock()
		return res, ErrClosed
	}
	if offset < l.start || offset > l.hw {
		l.mu.Unlock()
		return res, fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, l.start, l.hw)
	}
	bound := l.hw
	if stable {
		bound = res.LastStable
	}
	if offset >= bound {
		l.mu.Unlock()
		return res, nil
	}
	seg := l.segmentFor(offset)
	limit := seg.size
	if seg == l.hwSeg {
		limit = l.hwPos
	}
	idx := seg.index // entries are only ever appended, so this view stays valid
	segNext := seg.next
	seg.acquire()
	l.mu.Unlock()

	start, err := seg.find(offset, lookupIndex(idx, uint32(offset-seg.base)), limit)
	if err != nil {
		seg.release()
		return res, err
	}
	if stable && bound < res.HighWatermark && bound < segNext {
		// The last stable offset is the first offset of a batch in this
		// segment: the read ends where that batch begins.
		if limit, err = seg.find(bound, lookupIndex(idx, uint32(bound-seg.base)), limit); err != nil {
			seg.release()
			return res, err
		}
	}
	end, err := seg.extent(idx, start, limit, int64(maxBytes))
	if err != nil {
		seg.release()
		return res, err
	}
	res.Slice = Slice{seg: seg, pos: start, size: end - start}
	return res, nil
}

// segmentFor returns the segment holding offset, which must be within
// [start, next). Callers hold l.mu.
func (l *Log) segmentFor(offset int64) *segment {
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset })
	return l.segments[i-1]
}

// find returns the position of the batch holding offset, scanning batch
// headers from pos.
func (s *segment) find(offset, pos, limit int64) (int64, error) {
	var buf [batchHeaderSize]byte
	for pos < limit {
		b, err := s.header(pos, buf[:])
		if err != nil {
			return 0, err
		}
		if b.NextOffset() > offset {
			return pos, nil
		}
		pos += int64(b.Size())
	}
	return 0, fmt.Errorf("%w: offset %d not found in %s", ErrCorruptBatch, offset, s.path)
}

// extent returns the end of the run of whole batches from start that fits in
// maxBytes (at least one batch) and ends at or before limit. The sparse index
// skips most of the way; batch headers are read for the rest.
func (s *segment) extent(idx []indexEntry, start, limit, maxBytes int64) (int64, error) {
	bound := min(limit, start+max(maxBytes, 0))
	pos := start
	if e, ok := lookupIndexPos(idx, start, bound); ok {
		pos = int64(e.pos)
	}
	var buf [batchHeaderSize]byte
	for pos < limit {
		b, err := s.header(pos, buf[:])
		if err != nil {
			return 0, err
		}
		end := pos + int64(b.Size())
		if end > bound && pos > start {
			break
		}
		pos = end
		if pos >= bound {
			break
		}
	}
	return pos, nil
}

// Wait blocks until the high watermark is past offset (data at offset can be
// read), ctx is done, or the log closes. It is a notification, not a poll.
func (l *Log) Wait(ctx context.Context, offset int64) error {
	for {
		l.mu.Lock()
		hw, ch, closed := l.hw, l.hwCh, l.closed
		l.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if hw > offset {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// OffsetForTime returns the offset and timestamp of the first record whose
// timestamp is at least ts, as Kafka's ListOffsets does, or -1, -1 when no
// record between the log start and the high watermark has one. In a
// compressed batch the batch's base offset and max timestamp stand for its
// records. Segments are searched in offset order, from the first whose
// largest timestamp reaches ts; one whose only late-enough records lie below
// the log start gives way to the next.
func (l *Log) OffsetForTime(ts int64) (offset, timestamp int64, err error) {
	type candidate struct {
		seg        *segment
		pos, limit int64
	}
	l.mu.Lock()
	start := l.start
	var cands []candidate
	for _, s := range l.segments {
		if s.maxTS < ts || s.base >= l.hw || s.next <= start {
			continue
		}
		c := candidate{seg: s, limit: s.size}
		if s == l.hwSeg {
			c.limit = l.hwPos
		}
		if rel, ok := lookupTime(s.timeIndex, ts); ok {
			c.pos = lookupIndex(s.index, rel)
		}
		s.acquire()
		cands = append(cands, c)
	}
	l.mu.Unlock()
	defer func() {
		for _, c := range cands {
			c.seg.release()
		}
	}()
	for _, c := range cands {
		off, found, err := c.seg.firstAtOrAfter(ts, c.pos, c.limit, start)
		if err != nil || off >= 0 {
			return off, found, err
		}
	}
	return -1, -1, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (the first such record), or -1, -1 for an empty log.
func (l *Log) MaxTimestamp() (offset, timestamp int64, err error) {
	l.mu.Lock()
	var seg *segment
	for _, s := range l.segments {
		if s.maxTS >= 0 && s.base < l.hw && (seg == nil || s.maxTS > seg.maxTS) {
			seg = s
		}
	}
	if seg == nil {
		l.mu.Unlock()
		return -1, -1, nil
	}
	ts, start := seg.maxTS, l.start
	pos := lookupIndex(seg.index, uint32(seg.maxTSOffset-seg.base))
	limit := seg.size
	if seg == l.hwSeg {
		limit = l.hwPos
	}
	seg.acquire()
	l.mu.Unlock()
	defer seg.release()
	return seg.firstAtOrAfter(ts, pos, limit, start)
}

// firstAtOrAfter scans batches from pos for the first record at or after
// the log start with a timestamp of at least ts.
func (s *segment) firstAtOrAfter(ts, pos, limit, logStart int64) (int64, int64, error) {
	var hbuf [batchHeaderSize]byte
	for pos < limit {
		h, err := s.header(pos, hbuf[:])
		if err != nil {
			return -1, -1, err
		}
		size := int64(h.Size())
		if h.MaxTimestamp() < ts || h.NextOffset() <= logStart {
			pos += size
			continue
		}
		if h.Compression() != 0 || h.IsLogAppendTime() {
			return max(h.BaseOffset(), logStart), h.MaxTimestamp(), nil
		}
		buf := make([]byte, size)
		if _, err := s.file.ReadAt(buf, pos); err != nil {
			return -1, -1, fmt.Errorf("%w: reading %s: %w", ErrStorage, s.path, err)
		}
		off, found := int64(-1), int64(-1)
		err = DecodeRecords(Batch(buf), func(r Record) bool {
			if r.Offset >= logStart && r.Timestamp >= ts {
				off, found = r.Offset, r.Timestamp
				return false
			}
			return true
		})
		if err != nil {
			return -1, -1, err
		}
		if off >= 0 {
			return off, found, nil
		}
		pos += size
	}
	return -1, -1, nil
}

// ScanHeaders calls fn with the header of every batch from the one holding
// offset (or the log start, if later) up to the high watermark, in order,
// stopping when fn returns false. Only headers are read, never records; the
// Batch passed to fn is valid during the call only.
func (l *Log) ScanHeaders(offset int64, fn func(Batch) bool) error {
	l.mu.Lock()
	offset = max(offset, l.start)
	hw, hwSeg, hwPos := l.hw, l.hwSeg, l.hwPos
	var segs []*segment
	for i, s := range l.segments {
		if s.base >= hw || (i+1 < len(l.segments) && l.segments[i+1].base <= offset) {
			continue
		}
		s.acquire()
		segs = append(segs, s)
	}
	idx := make([][]indexEntry, len(segs))
	limits := make([]int64, len(segs))
	for i, s := range segs {
		idx[i], limits[i] = s.index, s.size
		if s == hwSeg {
			limits[i] = hwPos
		}
	}
	l.mu.Unlock()
	defer func() {
		for _, s := range segs {
			s.release()
		}
	}()
	var buf [batchHeaderSize]byte
	for i, s := range segs {
		pos := int64(0)
		if offset > s.base {
			pos = lookupIndex(idx[i], uint32(offset-s.base))
		}
		for pos < limits[i] {
			h, err := s.header(pos, buf[:])
			if err != nil {
				return err
			}
			if h.NextOffset() > offset && !fn(h) {
				return nil
			}
			pos += int64(h.Size())
		}
	}
	return nil
}

// SegmentBases lists the base offsets of the log's segments, oldest first.
func (l *Log) SegmentBases() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, len(l.segments))
	for i, s := range l.segments {
		out[i] = s.base
	}
	return out
}
