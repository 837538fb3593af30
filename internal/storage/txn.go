package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
)

// ControlType is the type of a control record: what a transaction marker
// says about its producer's transaction.
type ControlType int16

// Control record types, as Kafka defines them.
const (
	ControlAbort  ControlType = 0
	ControlCommit ControlType = 1
)

// AbortedTxn is a transaction of one producer that was aborted in a log:
// its first data offset and the offset of its abort marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// ControlBatch encodes a transaction marker: a control batch (control and
// transactional attributes, no sequence) of one record whose key is the
// control record version 0 and its type, and whose value is version 0 and
// the coordinator epoch, as Kafka writes them.
func ControlBatch(producerID int64, epoch int16, typ ControlType, coordinatorEpoch int32, timestamp int64) []byte {
	key := binary.BigEndian.AppendUint16(make([]byte, 2, 4), uint16(typ))
	value := binary.BigEndian.AppendUint32(make([]byte, 2, 6), uint32(coordinatorEpoch))
	return AppendBatch(nil, BatchSpec{
		Attributes: attrControl | attrTransactional,
		ProducerID: producerID, ProducerEpoch: epoch, BaseSequence: -1,
		Records: []Record{{Timestamp: timestamp, Key: key, Value: value}},
	})
}

// ParseControl returns the type of the marker in a control batch that
// CheckBatch accepted. Errors wrap ErrCorruptBatch.
func ParseControl(b Batch) (ControlType, error) {
	if !b.IsControl() {
		return 0, fmt.Errorf("%w: not a control batch", ErrCorruptBatch)
	}
	var typ ControlType
	found := false
	err := DecodeRecords(b, func(r Record) bool {
		if len(r.Key) < 4 {
			return false
		}
		typ, found = ControlType(int16(binary.BigEndian.Uint16(r.Key[2:4]))), true
		return false
	})
	if err != nil {
		return 0, fmt.Errorf("%w: control batch: %w", ErrCorruptBatch, err)
	}
	if !found {
		return 0, fmt.Errorf("%w: control record key shorter than 4 bytes", ErrCorruptBatch)
	}
	return typ, nil
}

// trackTxn follows the transactions of the batches written to a segment, in
// offset order: open maps each producer with an open transaction to the
// offset of its first transactional batch; an abort marker closes it and
// records the aborted range in the segment.
func trackTxn(open map[int64]int64, s *segment, b Batch) {
	if !b.IsTransactional() || b.ProducerID() < 0 {
		return
	}
	pid := b.ProducerID()
	if !b.IsControl() {
		if _, ok := open[pid]; !ok {
			open[pid] = b.BaseOffset()
		}
		return
	}
	first, ok := open[pid]
	delete(open, pid)
	if typ, err := ParseControl(b); ok && err == nil && typ == ControlAbort {
		s.aborted = append(s.aborted, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: b.LastOffset()})
	}
}

// txnIndex is what a sealed segment's .txnindex file holds: the producers
// with an open transaction where the segment begins and where it ends
// (each with its first offset), and the transactions aborted in it.
type txnIndex struct {
	openAtStart map[int64]int64
	openAtEnd   map[int64]int64
	aborted     []AbortedTxn
}

const txnIndexVersion = 1

func appendOpen(dst []byte, open map[int64]int64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(open)))
	for _, pid := range slices.Sorted(maps.Keys(open)) {
		dst = binary.BigEndian.AppendUint64(dst, uint64(pid))
		dst = binary.BigEndian.AppendUint64(dst, uint64(open[pid]))
	}
	return dst
}

// encodeTxnIndex writes a txnIndex: a version byte, the open transactions
// at start and at end, the aborted ones, and a CRC32C of everything before.
func encodeTxnIndex(x txnIndex) []byte {
	buf := []byte{txnIndexVersion}
	buf = appendOpen(buf, x.openAtStart)
	buf = appendOpen(buf, x.openAtEnd)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(x.aborted)))
	for _, a := range x.aborted {
		buf = binary.BigEndian.AppendUint64(buf, uint64(a.ProducerID))
		buf = binary.BigEndian.AppendUint64(buf, uint64(a.FirstOffset))
		buf = binary.BigEndian.AppendUint64(buf, uint64(a.LastOffset))
	}
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// decodeTxnIndex parses and checks the .txnindex of a segment holding the
// offsets [base, next): every open transaction begins before next, every
// aborted one ends with a marker inside the segment, after its first offset.
func decodeTxnIndex(buf []byte, base, next int64) (txnIndex, error) {
	var x txnIndex
	if len(buf) < 1+4+4+4+4 {
		return x, fmt.Errorf("txn index: bad size %d", len(buf))
	}
	body, crc := buf[:len(buf)-4], binary.BigEndian.Uint32(buf[len(buf)-4:])
	if crc32.Checksum(body, castagnoli) != crc {
		return x, fmt.Errorf("txn index: checksum mismatch")
	}
	if body[0] != txnIndexVersion {
		return x, fmt.Errorf("txn index: unknown version %d", body[0])
	}
	body = body[1:]
	readOpen := func(limit int64) (map[int64]int64, error) {
		if len(body) < 4 {
			return nil, fmt.Errorf("txn index: truncated")
		}
		n := int(binary.BigEndian.Uint32(body))
		body = body[4:]
		if n < 0 || n > len(body)/16 {
			return nil, fmt.Errorf("txn index: %d open transactions do not fit", n)
		}
		open := make(map[int64]int64, n)
		for range n {
			pid, first := int64(binary.BigEndian.Uint64(body)), int64(binary.BigEndian.Uint64(body[8:]))
			body = body[16:]
			if pid < 0 || first < 0 || first >= limit {
				return nil, fmt.Errorf("txn index: open transaction of producer %d at %d out of range", pid, first)
			}
			if _, dup := open[pid]; dup {
				return nil, fmt.Errorf("txn index: producer %d open twice", pid)
			}
			open[pid] = first
		}
		return open, nil
	}
	var err error
	if x.openAtStart, err = readOpen(base); err != nil {
		return x, err
	}
	if x.openAtEnd, err = readOpen(next); err != nil {
		return x, err
	}
	if len(body) < 4 {
		return x, fmt.Errorf("txn index: truncated")
	}
	n := int(binary.BigEndian.Uint32(body))
	body = body[4:]
	if n < 0 || n != len(body)/24 || len(body)%24 != 0 {
		return x, fmt.Errorf("txn index: %d aborted transactions do not match %d bytes", n, len(body))
	}
	for i := range n {
		e := body[i*24:]
		a := AbortedTxn{ProducerID: int64(binary.BigEndian.Uint64(e)), FirstOffset: int64(binary.BigEndian.Uint64(e[8:])), LastOffset: int64(binary.BigEndian.Uint64(e[16:]))}
		if a.ProducerID < 0 || a.FirstOffset < 0 || a.FirstOffset > a.LastOffset || a.LastOffset < base || a.LastOffset >= next ||
			(i > 0 && a.LastOffset <= x.aborted[i-1].LastOffset) {
			return x, fmt.Errorf("txn index: aborted transaction %d out of order or range", i)
		}
		x.aborted = append(x.aborted, a)
	}
	return x, nil
}

// LastStable is the last stable offset: the first offset of the oldest
// transaction still open, or the high watermark when none is (or the
// oldest opened at or past it). Readers in read-committed mode stop there.
func (l *Log) LastStable() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastStable()
}

// lastStable is LastStable for callers holding l.mu.
func (l *Log) lastStable() int64 {
	lso := l.hw
	for _, first := range l.open {
		lso = min(lso, first)
	}
	return max(lso, l.start)
}

// OpenTxns returns the producers with a transaction open in the log, each
// with the offset of its first transactional batch.
func (l *Log) OpenTxns() map[int64]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.open)
}

// AbortedTxns returns the aborted transactions that may hold records in
// [from, to): those whose marker is at or after from and whose first
// offset is before to, ordered by marker offset.
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AbortedTxn
	for _, s := range l.segments {
		if s.next <= from {
			continue
		}
		for _, a := range s.aborted {
			if a.LastOffset >= from && a.FirstOffset < to {
				out = append(out, a)
			}
		}
	}
	return out
}

// WaitStable blocks until the last stable offset is past offset, ctx is
// done, or the log closes. The last stable offset only moves when the high
// watermark does or a marker is appended, both of which wake it.
func (l *Log) WaitStable(ctx context.Context, offset int64) error {
	for {
		l.mu.Lock()
		lso, ch, closed := l.lastStable(), l.hwCh, l.closed
		l.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if lso > offset {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
