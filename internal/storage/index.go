package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
)

// indexEntry maps a batch's offset (relative to the segment base) to its
// byte position in the segment file. Entries are sparse: one per
// IndexIntervalBytes of data, each at a batch boundary.
type indexEntry struct {
	rel uint32
	pos uint32
}

// timeEntry records that every record up to offset base+rel has a timestamp
// of at most ts. Entries have strictly increasing ts.
type timeEntry struct {
	ts  int64
	rel uint32
}

// segmentSummary is what a sealed segment's index trailer records.
type segmentSummary struct {
	next        int64 // offset after the segment's last batch
	size        int64 // bytes of batches in the segment file
	maxTS       int64 // largest batch max timestamp, -1 when unknown
	maxTSOffset int64 // base offset of the first batch holding maxTS
}

const (
	indexEntrySize   = 8
	timeEntrySize    = 12
	indexTrailerSize = 8 + 8 + 8 + 8 + 4 + 4 // summary, count, crc
	timeTrailerSize  = 4 + 4                 // count, crc
)

// lookupIndex returns the position of the last indexed batch whose offset is
// at most rel, or 0 when there is none.
func lookupIndex(idx []indexEntry, rel uint32) int64 {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rel > rel })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// lookupIndexPos returns the last indexed entry whose position is at most pos
// and more than after, and whether there is one.
func lookupIndexPos(idx []indexEntry, after, pos int64) (indexEntry, bool) {
	i := sort.Search(len(idx), func(i int) bool { return int64(idx[i].pos) > pos })
	if i == 0 || int64(idx[i-1].pos) <= after {
		return indexEntry{}, false
	}
	return idx[i-1], true
}

// lookupTime returns the relative offset from which to scan for the first
// record with timestamp >= ts: just after the last entry whose ts is below.
func lookupTime(tidx []timeEntry, ts int64) (uint32, bool) {
	i := sort.Search(len(tidx), func(i int) bool { return tidx[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return tidx[i-1].rel + 1, true
}

func encodeOffsetIndex(idx []indexEntry, s segmentSummary) []byte {
	buf := make([]byte, 0, len(idx)*indexEntrySize+indexTrailerSize)
	for _, e := range idx {
		buf = binary.BigEndian.AppendUint32(buf, e.rel)
		buf = binary.BigEndian.AppendUint32(buf, e.pos)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.next))
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.size))
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.maxTS))
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.maxTSOffset))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(idx)))
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// decodeOffsetIndex parses and checks an index file of a segment based at
// base whose file holds fileSize bytes.
func decodeOffsetIndex(buf []byte, base, fileSize int64) ([]indexEntry, segmentSummary, error) {
	var s segmentSummary
	if len(buf) < indexTrailerSize || (len(buf)-indexTrailerSize)%indexEntrySize != 0 {
		return nil, s, fmt.Errorf("offset index: bad size %d", len(buf))
	}
	body, crc := buf[:len(buf)-4], binary.BigEndian.Uint32(buf[len(buf)-4:])
	if crc32.Checksum(body, castagnoli) != crc {
		return nil, s, fmt.Errorf("offset index: checksum mismatch")
	}
	t := buf[len(buf)-indexTrailerSize:]
	s.next = int64(binary.BigEndian.Uint64(t[0:]))
	s.size = int64(binary.BigEndian.Uint64(t[8:]))
	s.maxTS = int64(binary.BigEndian.Uint64(t[16:]))
	s.maxTSOffset = int64(binary.BigEndian.Uint64(t[24:]))
	n := int(binary.BigEndian.Uint32(t[32:]))
	if n != (len(buf)-indexTrailerSize)/indexEntrySize {
		return nil, s, fmt.Errorf("offset index: count %d does not match size", n)
	}
	if s.next <= base || s.size != fileSize || s.next-base > 1<<32 {
		return nil, s, fmt.Errorf("offset index: summary (next %d, size %d) does not match the segment (base %d, size %d)", s.next, s.size, base, fileSize)
	}
	idx := make([]indexEntry, n)
	for i := range idx {
		e := indexEntry{rel: binary.BigEndian.Uint32(buf[i*8:]), pos: binary.BigEndian.Uint32(buf[i*8+4:])}
		if int64(e.pos) >= fileSize || int64(e.rel) >= s.next-base || (i > 0 && (e.rel <= idx[i-1].rel || e.pos <= idx[i-1].pos)) {
			return nil, s, fmt.Errorf("offset index: entry %d out of order or range", i)
		}
		idx[i] = e
	}
	return idx, s, nil
}

func encodeTimeIndex(tidx []timeEntry) []byte {
	buf := make([]byte, 0, len(tidx)*timeEntrySize+timeTrailerSize)
	for _, e := range tidx {
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.ts))
		buf = binary.BigEndian.AppendUint32(buf, e.rel)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(tidx)))
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

func decodeTimeIndex(buf []byte, base, next int64) ([]timeEntry, error) {
	if len(buf) < timeTrailerSize || (len(buf)-timeTrailerSize)%timeEntrySize != 0 {
		return nil, fmt.Errorf("time index: bad size %d", len(buf))
	}
	body, crc := buf[:len(buf)-4], binary.BigEndian.Uint32(buf[len(buf)-4:])
	if crc32.Checksum(body, castagnoli) != crc {
		return nil, fmt.Errorf("time index: checksum mismatch")
	}
	n := int(binary.BigEndian.Uint32(buf[len(buf)-8:]))
	if n != (len(buf)-timeTrailerSize)/timeEntrySize {
		return nil, fmt.Errorf("time index: count %d does not match size", n)
	}
	tidx := make([]timeEntry, n)
	for i := range tidx {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(buf[i*12:])), rel: binary.BigEndian.Uint32(buf[i*12+8:])}
		if int64(e.rel) >= next-base || (i > 0 && (e.ts <= tidx[i-1].ts || e.rel < tidx[i-1].rel)) {
			return nil, fmt.Errorf("time index: entry %d out of order or range", i)
		}
		tidx[i] = e
	}
	return tidx, nil
}
