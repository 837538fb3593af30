package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/wharfmq/wharf/internal/storage"
)

// A durable queue's persistent messages are records in a log of its own
// under <data-dir>/queues/<queue id>, one single-record batch per message:
// the key is the routing key, the value the body, and two headers carry the
// exchange and the encoded basic properties. Transient messages are never
// written, so a restart drops them.
//
// Settlement (ack, no-ack delivery, purge, discard) is tracked by offset:
// every offset below low is settled, and settled offsets above it are in a
// set. low becomes the log's start offset (whole segments below it are
// deleted) and the set is written to the acks file, both at most once per
// flush (every second while anything changed, and on close). A crash loses
// the settlements since the last flush: those messages come back after a
// restart (at-least-once, as in RabbitMQ), flagged redelivered: after a
// clean shutdown if the delivery mark written with the acks covers them,
// after a crash always (see cleanmark.go). PersistSettlements writes the
// settlements at once, for tx.commit and for the AMQP channel's reply that
// follows an ack. A stored message is delivered (and so settled) only once
// its append is durable, and one whose fsync failed is dropped unsettled,
// because later appends reuse its offset. The acks state is still clamped
// to the log's end on open, for data written before that rule. A missing
// or damaged acks file means every message from the start offset comes
// back.
//
// The acks file also keeps the delivery counts of a quorum queue's
// unsettled messages (queue_quorum.go): offset and count of each message
// returned at least once, written with the settlements, so a returned
// message keeps its count across a restart. Files written before counts
// were kept (magic WQA1) have none.

const (
	queueHeaderExchange   = "amqp.exchange"
	queueHeaderProperties = "amqp.properties"
	acksFile              = "acks"
	acksMagic             = "WQA2"
	acksMagicNoCounts     = "WQA1" // written before delivery counts were kept
)

type queueStore struct {
	log    *storage.Log
	fs     storage.FS
	dir    string
	logger *slog.Logger

	// Guarded by the owning Queue's mu.
	low       int64              // every offset below is settled
	acked     map[int64]struct{} // settled offsets at or above low
	delivered int64              // highest offset ever delivered, or -1
	returns   map[int64]uint32   // delivery counts of unsettled returned messages (quorum queues)
	dirty     bool
	ahead     readAhead // messages read back past the one asked for

	snaps   uint64     // snapshots taken; guarded by the queue's mu
	flushMu sync.Mutex // one write at a time
	synced  int64      // low as last made the log start
	written uint64     // the snapshot last written: an older one is not
	wrErr   error      // the outcome of writing it
	gone    bool       // deleted: nothing more is written
}

// queueLogConfig adapts the topic log defaults to a queue: no retention
// (acknowledgements delete data) and segments small enough to go soon.
func queueLogConfig(defaults storage.LogConfig) storage.LogConfig {
	cfg := defaults
	cfg.RetentionAge = 0
	cfg.RetentionBytes = -1
	cfg.SegmentBytes = min(cfg.SegmentBytes, 64<<20)
	cfg.MaxBatchBytes = 1 << 30
	cfg.TimestampType = storage.CreateTime
	return cfg
}

// openQueueStore opens (or creates) a queue's log and recovers its
// unsettled persistent messages, in offset order. With a memory limit
// (memLimit > 0) they are recovered paged out, as offsets to read back when
// delivered, without reading the log; with none, they are read into memory.
// Unless clean (the last run closed the queue, writing its exact delivery
// mark), every recovered message may have been delivered and is flagged
// redelivered.
func openQueueStore(dir string, cfg storage.LogConfig, opts storage.Options, memLimit int64, clean bool) (*queueStore, []*queued, error) {
	l, err := storage.Open(dir, cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	s := &queueStore{log: l, fs: opts.FS, dir: dir, logger: opts.Logger, acked: map[int64]struct{}{}, delivered: -1, returns: map[int64]uint32{}}
	if s.fs == nil {
		s.fs = storage.OSFS{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	start, _, _ := l.Offsets()
	s.low, s.synced = start, start
	if err := s.readAcks(); err != nil {
		if opts.Logger != nil {
			opts.Logger.Warn("queue acknowledgements unreadable; unsettled messages from the log start come back", "dir", dir, "err", err)
		}
		s.low, s.acked, s.delivered, s.returns = start, map[int64]struct{}{}, -1, map[int64]uint32{}
	}
	s.low = max(s.low, start)
	// The acks file may record settlements past the log's end (written
	// before stored messages waited for their fsync to be delivered: an
	// ack could precede the fsync, and a crash then lost the append but
	// not the ack). New messages reuse those offsets, so forget what the
	// file says about them.
	_, end, _ := l.Offsets()
	s.low = min(s.low, end)
	s.delivered = min(s.delivered, end-1)
	if !clean {
		s.delivered = end - 1
	}
	for o := range s.acked {
		if o < s.low || o >= end {
			delete(s.acked, o)
		}
	}
	for o := range s.returns {
		if _, settled := s.acked[o]; settled || o < s.low || o >= end {
			delete(s.returns, o)
		}
	}
	msgs, err := s.recover(memLimit)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return s, msgs, nil
}

// recover lists every unsettled message of the log. Each offset of the
// log is one message (every append is one single-record batch, and offsets
// are dense), so with a memory limit the unsettled ones are known without
// reading anything: they come back paged out, and a restart costs a few
// bytes per message instead of a read of every body (measured: 4-7 s for
// 512 MB in 50 queues before, see docs/benchmarks.md). Without a limit
// every body is read back into memory.
func (s *queueStore) recover(memLimit int64) ([]*queued, error) {
	_, hw, _ := s.log.Offsets()
	if memLimit > 0 {
		out := make([]*queued, 0, max(0, hw-s.low-int64(len(s.acked))))
		for off := s.low; off < hw; off++ {
			if _, done := s.acked[off]; !done {
				out = append(out, &queued{offset: off, redelivered: off <= s.delivered, returns: s.returns[off]})
			}
		}
		return out, nil
	}
	return s.readAll()
}

// readAll reads every unsettled message from the log into memory.
func (s *queueStore) readAll() ([]*queued, error) {
	_, hw, _ := s.log.Offsets()
	var out []*queued
	var buf []byte
	for from := s.low; from < hw; {
		res, err := s.log.Read(from, 4<<20)
		if err != nil {
			return nil, fmt.Errorf("recovering queue log %s: %w", s.dir, err)
		}
		if res.Len() == 0 {
			res.Release()
			break
		}
		buf, err = res.AppendTo(buf[:0])
		res.Release()
		if err != nil {
			return nil, err
		}
		next := from
		err = storage.SplitBatches(buf, func(b storage.Batch) bool {
			derr := storage.DecodeRecords(b, func(r storage.Record) bool {
				if r.Offset < from {
					return true
				}
				if _, done := s.acked[r.Offset]; !done {
					out = append(out, &queued{offset: r.Offset, redelivered: r.Offset <= s.delivered, returns: s.returns[r.Offset], msg: decodeQueueRecord(r)})
				}
				return true
			})
			if derr != nil {
				err = derr
				return false
			}
			next = b.NextOffset()
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("recovering queue log %s: %w", s.dir, err)
		}
		if next <= from {
			break
		}
		from = next
	}
	return out, nil
}

// encodeQueueRecord appends m as a single-record batch.
func encodeQueueRecord(dst []byte, m *Message) []byte {
	return storage.AppendBatch(dst, storage.BatchSpec{
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{
			Timestamp: m.Timestamp,
			Key:       []byte(m.RoutingKey),
			Value:     nonNil(m.Body),
			Headers: []storage.Header{
				{Key: queueHeaderExchange, Value: []byte(m.Exchange)},
				{Key: queueHeaderProperties, Value: nonNil(m.Properties)},
			},
		}},
	})
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// decodeQueueRecord rebuilds a message from its record, copying what the
// record aliases.
func decodeQueueRecord(r storage.Record) *Message {
	m := &Message{RoutingKey: string(r.Key), Body: slices.Clone(r.Value), Persistent: true, Timestamp: r.Timestamp}
	if m.Body == nil {
		m.Body = []byte{}
	}
	for _, h := range r.Headers {
		switch h.Key {
		case queueHeaderExchange:
			m.Exchange = string(h.Value)
		case queueHeaderProperties:
			m.Properties = slices.Clone(h.Value)
		}
	}
	return m
}

// loadAheadBytes is how much of the log one read back takes: paged-out
// messages go out in offset order, so the messages after the one asked for
// are usually asked for next (measured on 1 KiB messages: one read per
// message drained a recovered queue at 32-45k msg/s, against 95k from
// memory).
const loadAheadBytes = 64 << 10

// readAhead holds the messages decoded by the last read back: msgs[i] is
// the message at offset from+i, nil once taken.
type readAhead struct {
	from int64
	msgs []*Message
}

// take returns the message at off if the last read back decoded it.
func (r *readAhead) take(off int64) *Message {
	i := off - r.from
	if i < 0 || i >= int64(len(r.msgs)) || r.msgs[i] == nil {
		return nil
	}
	m := r.msgs[i]
	r.msgs[i] = nil
	return m
}

// load reads the message stored at off back from the log, and keeps the
// ones after it from the same read for the next loads. Callers hold the
// queue's lock.
func (s *queueStore) load(off int64) (*Message, error) {
	if m := s.ahead.take(off); m != nil {
		return m, nil
	}
	res, err := s.log.Read(off, loadAheadBytes)
	if err != nil {
		return nil, err
	}
	defer res.Release()
	buf, err := res.AppendTo(nil)
	if err != nil {
		return nil, err
	}
	clear(s.ahead.msgs)
	s.ahead.from, s.ahead.msgs = off, s.ahead.msgs[:0]
	err = storage.SplitBatches(buf, func(b storage.Batch) bool {
		derr := storage.DecodeRecords(b, func(r storage.Record) bool {
			// Offsets are dense: the record at off+i is msgs[i].
			if r.Offset == s.ahead.from+int64(len(s.ahead.msgs)) {
				s.ahead.msgs = append(s.ahead.msgs, decodeQueueRecord(r))
			}
			return true
		})
		if derr != nil {
			err = derr
		}
		return err == nil
	})
	if err != nil {
		s.ahead.msgs = s.ahead.msgs[:0]
		return nil, err
	}
	if m := s.ahead.take(off); m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("offset %d not found in %s", off, s.dir)
}

// append writes one encoded message; callers hold the queue's lock so that
// offsets follow arrival order.
func (s *queueStore) append(batch []byte) (int64, storage.Pending, error) {
	res, p, err := s.log.AppendAsync(batch)
	if err != nil {
		return -1, storage.Pending{}, err
	}
	return res.BaseOffset, p, nil
}

// noteDelivered records that a stored message went out. Callers hold the
// queue's lock.
func (s *queueStore) noteDelivered(off int64) {
	if off > s.delivered {
		s.delivered = off
		s.dirty = true
	}
}

// noteReturned records the delivery count of a stored message that came
// back unacknowledged. Callers hold the queue's lock.
func (s *queueStore) noteReturned(off int64, n uint32) {
	s.returns[off] = n
	s.dirty = true
}

// settle marks a stored message settled. Callers hold the queue's lock.
func (s *queueStore) settle(off int64) {
	s.dirty = true
	delete(s.returns, off)
	if off != s.low {
		if off > s.low {
			s.acked[off] = struct{}{}
		}
		return
	}
	s.low++
	for {
		if _, ok := s.acked[s.low]; !ok {
			return
		}
		delete(s.acked, s.low)
		s.low++
	}
}

// ackSnapshot is the settlement state at one moment, to be written.
type ackSnapshot struct {
	data []byte
	low  int64
	seq  uint64
}

// snapshot returns the acks file's content and the settled low mark, or
// false when nothing changed since the last one. Callers hold the queue's
// lock.
func (s *queueStore) snapshot() (ackSnapshot, bool) {
	if !s.dirty {
		return ackSnapshot{}, false
	}
	s.dirty = false
	s.snaps++
	offs := make([]int64, 0, len(s.acked))
	for o := range s.acked {
		offs = append(offs, o)
	}
	slices.Sort(offs)
	b := []byte(acksMagic)
	b = binary.BigEndian.AppendUint64(b, uint64(s.low))
	b = binary.BigEndian.AppendUint64(b, uint64(s.delivered))
	// Ranges of consecutive settled offsets: first, count.
	var ranges [][2]int64
	for _, o := range offs {
		if n := len(ranges); n > 0 && ranges[n-1][0]+ranges[n-1][1] == o {
			ranges[n-1][1]++
			continue
		}
		ranges = append(ranges, [2]int64{o, 1})
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(ranges)))
	for _, r := range ranges {
		b = binary.BigEndian.AppendUint64(b, uint64(r[0]))
		b = binary.BigEndian.AppendUint64(b, uint64(r[1]))
	}
	// Delivery counts: offset, count, in offset order.
	counted := make([]int64, 0, len(s.returns))
	for o := range s.returns {
		counted = append(counted, o)
	}
	slices.Sort(counted)
	b = binary.BigEndian.AppendUint32(b, uint32(len(counted)))
	for _, o := range counted {
		b = binary.BigEndian.AppendUint64(b, uint64(o))
		b = binary.BigEndian.AppendUint32(b, s.returns[o])
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return ackSnapshot{data: b, low: s.low, seq: s.snaps}, true
}

// write persists a snapshot: the low mark becomes the log start (deleting
// whole settled segments) and the acks file is replaced.
func (s *queueStore) write(snap ackSnapshot) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.gone {
		return nil // the queue is deleted
	}
	if snap.seq <= s.written {
		// A later snapshot was written, or failed to be, while this one
		// waited: its outcome is this one's.
		return s.wrErr
	}
	s.written = snap.seq
	s.wrErr = s.writeLocked(snap)
	return s.wrErr
}

// writeLocked does write's work; callers hold flushMu.
func (s *queueStore) writeLocked(snap ackSnapshot) error {
	data, low := snap.data, snap.low
	if low > s.synced {
		_, hw, _ := s.log.Offsets()
		start, err := s.log.SetStartOffset(min(low, hw))
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			return fmt.Errorf("moving the start of %s: %w", s.dir, err)
		}
		s.synced = start
	}
	if err := storage.WriteFileAtomic(s.fs, filepath.Join(s.dir, acksFile), data); err != nil {
		return fmt.Errorf("writing the acknowledgements of %s: %w", s.dir, err)
	}
	return nil
}

func (s *queueStore) readAcks() error {
	b, err := s.fs.ReadFile(filepath.Join(s.dir, acksFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	const fixed = len(acksMagic) + 8 + 8 + 4
	if len(b) < fixed+4 {
		return fmt.Errorf("bad acks file header")
	}
	withCounts := false
	switch string(b[:len(acksMagic)]) {
	case acksMagic:
		withCounts = true
	case acksMagicNoCounts:
	default:
		return fmt.Errorf("bad acks file header")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != sum {
		return fmt.Errorf("acks file checksum mismatch")
	}
	p := body[len(acksMagic):]
	low := int64(binary.BigEndian.Uint64(p))
	delivered := int64(binary.BigEndian.Uint64(p[8:]))
	n := int(binary.BigEndian.Uint32(p[16:]))
	p = p[20:]
	if len(p) < n*16 || !withCounts && len(p) != n*16 {
		return fmt.Errorf("acks file holds %d bytes of ranges, want %d", len(p), n*16)
	}
	acked := map[int64]struct{}{}
	for i := range n {
		first := int64(binary.BigEndian.Uint64(p[i*16:]))
		count := int64(binary.BigEndian.Uint64(p[i*16+8:]))
		if count < 0 || count > 1<<40 {
			return fmt.Errorf("acks file range %d has count %d", i, count)
		}
		for o := first; o < first+count; o++ {
			acked[o] = struct{}{}
		}
	}
	returns := map[int64]uint32{}
	if withCounts {
		p = p[n*16:]
		if len(p) < 4 {
			return fmt.Errorf("acks file has no delivery counts")
		}
		m := int(binary.BigEndian.Uint32(p))
		p = p[4:]
		if len(p) != m*12 {
			return fmt.Errorf("acks file holds %d bytes of delivery counts, want %d", len(p), m*12)
		}
		for i := range m {
			returns[int64(binary.BigEndian.Uint64(p[i*12:]))] = binary.BigEndian.Uint32(p[i*12+8:])
		}
	}
	s.low, s.delivered, s.acked, s.returns = low, delivered, acked, returns
	return nil
}

// close closes the log; the caller flushed first.
func (s *queueStore) close() error {
	return s.log.Close()
}

// delete removes the queue's log and everything beside it.
func (s *queueStore) delete() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.gone = true
	return s.log.Delete()
}
