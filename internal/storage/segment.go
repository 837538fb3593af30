package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"sync/atomic"
	"time"
)

// segment is one file of a log: whole batches with dense offsets from base
// to next-1, plus its sparse indexes. The mutable fields are guarded by the
// owning Log's mutex; a sealed segment's fields never change again.
type segment struct {
	base int64
	path string // the .log file; indexes share its stem
	file File
	refs atomic.Int32 // the log holds one; each open Slice holds one

	size        int64 // bytes of whole batches
	next        int64 // offset after the last batch
	index       []indexEntry
	timeIndex   []timeEntry
	maxTS       int64 // largest batch max timestamp, -1 when empty
	maxTSOffset int64
	sinceIndex  int       // bytes appended since the last index entry
	created     time.Time // when the segment was created or opened
	sealed      bool      // no longer the active segment
	indexed     bool      // sealed, fsynced, and its index files written

	// Transactions (txn.go): those open where the segment begins and, once
	// it is sealed, where it ends, and those aborted in it.
	openAtStart map[int64]int64
	openAtEnd   map[int64]int64
	aborted     []AbortedTxn
}

func segmentStem(dir string, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", base))
}

func newSegment(base int64, path string, f File, now time.Time) *segment {
	s := &segment{base: base, path: path, file: f, next: base, maxTS: -1, maxTSOffset: -1, created: now}
	s.refs.Store(1)
	return s
}

func (s *segment) indexPath() string     { return s.path[:len(s.path)-len(".log")] + ".index" }
func (s *segment) timeIndexPath() string { return s.path[:len(s.path)-len(".log")] + ".timeindex" }
func (s *segment) txnIndexPath() string  { return s.path[:len(s.path)-len(".log")] + ".txnindex" }

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference and closes the file with the last one.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.file.Close()
	}
}

// track records a batch written at position pos, updating the indexes.
func (s *segment) track(b Batch, pos int64, intervalBytes int) {
	if s.sinceIndex >= intervalBytes {
		s.index = append(s.index, indexEntry{rel: uint32(b.BaseOffset() - s.base), pos: uint32(pos)})
		if s.maxTS >= 0 && (len(s.timeIndex) == 0 || s.maxTS > s.timeIndex[len(s.timeIndex)-1].ts) {
			s.timeIndex = append(s.timeIndex, timeEntry{ts: s.maxTS, rel: uint32(b.BaseOffset() - 1 - s.base)})
		}
		s.sinceIndex = 0
	}
	if ts := b.MaxTimestamp(); ts > s.maxTS {
		s.maxTS, s.maxTSOffset = ts, b.BaseOffset()
	}
	s.sinceIndex += len(b)
	s.size = pos + int64(len(b))
	s.next = b.NextOffset()
}

// summary describes the segment for its index trailer.
func (s *segment) summary() segmentSummary {
	return segmentSummary{next: s.next, size: s.size, maxTS: s.maxTS, maxTSOffset: s.maxTSOffset}
}

// writeIndexes persists the indexes of a sealed, fsynced segment. Their
// presence tells recovery that the segment is whole.
func (s *segment) writeIndexes(fs FS) error {
	x := txnIndex{openAtStart: s.openAtStart, openAtEnd: s.openAtEnd, aborted: s.aborted}
	if err := WriteFileAtomic(fs, s.txnIndexPath(), encodeTxnIndex(x)); err != nil {
		return err
	}
	if err := WriteFileAtomic(fs, s.timeIndexPath(), encodeTimeIndex(s.timeIndex)); err != nil {
		return err
	}
	return WriteFileAtomic(fs, s.indexPath(), encodeOffsetIndex(s.index, s.summary()))
}

// loadIndexes reads a sealed segment's index files and checks them against
// the segment file.
func (s *segment) loadIndexes(fs FS, fileSize int64) error {
	buf, err := fs.ReadFile(s.indexPath())
	if err != nil {
		return err
	}
	idx, sum, err := decodeOffsetIndex(buf, s.base, fileSize)
	if err != nil {
		return err
	}
	tbuf, err := fs.ReadFile(s.timeIndexPath())
	if err != nil {
		return err
	}
	tidx, err := decodeTimeIndex(tbuf, s.base, sum.next)
	if err != nil {
		return err
	}
	xbuf, err := fs.ReadFile(s.txnIndexPath())
	if err != nil {
		return err
	}
	x, err := decodeTxnIndex(xbuf, s.base, sum.next)
	if err != nil {
		return err
	}
	s.index, s.timeIndex = idx, tidx
	s.openAtStart, s.openAtEnd, s.aborted = x.openAtStart, x.openAtEnd, x.aborted
	s.size, s.next, s.maxTS, s.maxTSOffset = sum.size, sum.next, sum.maxTS, sum.maxTSOffset
	return nil
}

func (s *segment) removeIndexes(fs FS) {
	// A missing file is the goal; any other failure leaves a stale index
	// that recovery detects by its summary and rebuilds.
	_ = fs.Remove(s.indexPath())
	_ = fs.Remove(s.timeIndexPath())
	_ = fs.Remove(s.txnIndexPath())
}

// recover scans the segment file from the start, verifying every batch, and
// rebuilds the in-memory indexes. It stops at the first batch that is torn,
// corrupt or out of sequence, or at limit bytes, and returns that position:
// everything before it is whole. A read error other than EOF is returned.
// open holds the transactions open where the segment begins and is updated
// with its batches.
func (s *segment) recover(intervalBytes int, limit int64, open map[int64]int64) (int64, error) {
	s.index, s.timeIndex, s.aborted = nil, nil, nil
	s.openAtStart = maps.Clone(open)
	s.size, s.next, s.maxTS, s.maxTSOffset, s.sinceIndex = 0, s.base, -1, -1, 0
	r := bufio.NewReaderSize(io.NewSectionReader(s.file, 0, limit), 1<<20)
	var buf []byte
	var pos int64
	for {
		hdr, err := r.Peek(batchLogOverhead)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return pos, nil
			}
			return pos, err
		}
		size := batchLogOverhead + int64(int32(binary.BigEndian.Uint32(hdr[offBatchLength:])))
		if size < batchHeaderSize || size > maxSegmentBytes || pos+size > limit {
			return pos, nil
		}
		if int64(cap(buf)) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return pos, nil
			}
			return pos, err
		}
		b, err := CheckBatch(buf, 0)
		if err != nil || b.BaseOffset() != s.next || b.NextOffset()-s.base > 1<<32 {
			return pos, nil
		}
		s.track(b, pos, intervalBytes)
		trackTxn(open, s, b)
		pos += size
	}
}

// header reads the fixed header of the batch at pos.
func (s *segment) header(pos int64, buf []byte) (Batch, error) {
	buf = buf[:batchHeaderSize]
	if _, err := s.file.ReadAt(buf, pos); err != nil {
		return nil, fmt.Errorf("%w: reading batch header at %d of %s: %w", ErrStorage, pos, s.path, err)
	}
	return Batch(buf), nil
}
