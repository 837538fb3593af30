package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Reading a stream queue: each consumer has its own StreamReader, a cursor
// per partition of the stream's topic, starting where its x-stream-offset
// says. Readers take no lock of the broker or of a queue: they read the
// partitions' logs and follow them with Partition.Wait.

// streamStart is the kind of an x-stream-offset.
type streamStart int

const (
	startNext streamStart = iota
	startFirst
	startLast
	startOffset
	startTime
)

// StreamOffset is where a stream reader starts (x-stream-offset).
type StreamOffset struct {
	kind   streamStart
	offset int64 // startOffset
	millis int64 // startTime: milliseconds since the Unix epoch
}

// The named stream offsets.
var (
	// StreamFirst starts at the first record the log holds.
	StreamFirst = StreamOffset{kind: startFirst}
	// StreamLast starts at the last record the log holds (RabbitMQ starts
	// at the last chunk, which may hold several).
	StreamLast = StreamOffset{kind: startLast}
	// StreamNext starts after the last record: only new ones are read.
	StreamNext = StreamOffset{kind: startNext}
)

// StreamAtOffset starts at offset, or at the log's start if that is gone,
// or at its end if it is beyond it.
func StreamAtOffset(offset int64) StreamOffset {
	return StreamOffset{kind: startOffset, offset: offset}
}

// StreamAtTime starts at the first record stamped at or after t.
func StreamAtTime(t time.Time) StreamOffset {
	return StreamOffset{kind: startTime, millis: t.UnixMilli()}
}

// ParseStreamOffset reads an x-stream-offset consumer argument: "first",
// "last", "next", a non-negative integer offset, a timestamp, or an
// interval back from now such as "30m" (the units of x-max-age). Absent
// (nil) is "next".
func ParseStreamOffset(v any, now time.Time) (StreamOffset, error) {
	switch x := v.(type) {
	case nil:
		return StreamNext, nil
	case string:
		switch x {
		case "first":
			return StreamFirst, nil
		case "last":
			return StreamLast, nil
		case "next":
			return StreamNext, nil
		}
		if d, ok := ParseStreamInterval(x); ok {
			return StreamAtTime(now.Add(-d)), nil
		}
		return StreamOffset{}, fmt.Errorf("%q is not first, last, next or an interval such as 30m", x)
	case time.Time:
		return StreamAtTime(x), nil
	}
	if isIntArg(v) {
		neg, mag, _ := intValue(v)
		if neg {
			return StreamOffset{}, fmt.Errorf("offset %s is negative", formatValue(v))
		}
		return StreamAtOffset(int64(mag)), nil
	}
	return StreamOffset{}, fmt.Errorf("a value of type '%s' is not an offset", fieldTypeName(v))
}

// StreamRecord is one record read from a stream, as the AMQP message it
// reads as (MessageFromRecord) with its offset in the x-stream-offset
// header, and its partition in x-stream-partition when the topic has more
// than one.
type StreamRecord struct {
	Partition int32
	Offset    int64
	Message   *Message
}

// Decompressor returns the records section of a compressed batch
// decompressed; codec is one of the Compression constants. The core has
// no codecs; the adapter that reads gives one.
type Decompressor func(codec int, records []byte) ([]byte, error)

// streamReadBytes is how much of a partition a reader reads at a time.
const streamReadBytes = 1 << 20

// StreamReader reads a stream queue's log from a start position. It is
// not safe for concurrent use: one goroutine reads it.
type StreamReader struct {
	s          *Stream
	parts      []*streamCursor
	rr         int
	decompress Decompressor
	filter     *StreamFilter // nil: every record
}

// Stream filtering, RabbitMQ's x-stream-filter: a message published with
// the header x-stream-filter-value is read by a consumer whose
// x-stream-filter names that value; a message without one only by
// consumers that also give x-stream-match-unfiltered true. RabbitMQ
// filters by chunk and leaves the exact match to the client; Wharf
// matches each message exactly, so a filtering consumer gets only what it
// asked for.
const (
	HeaderStreamFilterValue  = "x-stream-filter-value"
	ArgStreamFilter          = "x-stream-filter"
	ArgStreamMatchUnfiltered = "x-stream-match-unfiltered"
)

// StreamFilter selects the records a reader returns.
type StreamFilter struct {
	values          map[string]bool
	matchUnfiltered bool
}

// ParseStreamFilter reads the x-stream-filter (a string or an array of
// strings) and x-stream-match-unfiltered (a boolean) consumer arguments;
// it returns nil, no filter, when x-stream-filter is absent.
func ParseStreamFilter(filter, matchUnfiltered any) (*StreamFilter, error) {
	if filter == nil {
		return nil, nil
	}
	f := &StreamFilter{values: map[string]bool{}}
	switch x := filter.(type) {
	case string:
		f.values[x] = true
	case []any:
		for _, v := range x {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("x-stream-filter holds a value of type '%s', not a string", fieldTypeName(v))
			}
			f.values[s] = true
		}
	default:
		return nil, fmt.Errorf("x-stream-filter is of type '%s', not a string or an array of strings", fieldTypeName(filter))
	}
	if matchUnfiltered != nil {
		b, ok := matchUnfiltered.(bool)
		if !ok {
			return nil, fmt.Errorf("x-stream-match-unfiltered is of type '%s', not a boolean", fieldTypeName(matchUnfiltered))
		}
		f.matchUnfiltered = b
	}
	return f, nil
}

// matches reports whether a message passes the filter.
func (f *StreamFilter) matches(msg *Message) bool {
	bp, err := splitProperties(msg.Properties)
	if err != nil {
		return false
	}
	h, err := bp.headers()
	if err != nil {
		return false
	}
	v, ok := h[HeaderStreamFilterValue]
	if !ok {
		return f.matchUnfiltered
	}
	switch x := v.(type) {
	case string:
		return f.values[x]
	case []byte:
		return f.values[string(x)]
	}
	return false
}

// SetFilter makes the reader return only the records f selects; nil
// selects every record.
func (r *StreamReader) SetFilter(f *StreamFilter) { r.filter = f }

type streamCursor struct {
	p    *Partition
	next int64
	buf  []Record
}

// NewReader returns a reader of the stream starting at at. The partitions
// are those of the topic now; partitions added later are not read.
func (s *Stream) NewReader(at StreamOffset, decompress Decompressor) (*StreamReader, error) {
	ps, err := s.partitions()
	if err != nil {
		return nil, err
	}
	r := &StreamReader{s: s, decompress: decompress}
	for _, p := range ps {
		next, err := startOffsetOf(p, at)
		if err != nil {
			return nil, fmt.Errorf("finding where to start reading %s-%d: %w", p.Topic, p.Index, err)
		}
		r.parts = append(r.parts, &streamCursor{p: p, next: next})
	}
	return r, nil
}

// startOffsetOf resolves a start position in one partition.
func startOffsetOf(p *Partition, at StreamOffset) (int64, error) {
	start, hw, _ := p.Offsets()
	switch at.kind {
	case startFirst:
		return start, nil
	case startLast:
		return max(start, hw-1), nil
	case startOffset:
		return min(max(at.offset, start), hw), nil
	case startTime:
		off, _, err := p.OffsetForTime(at.millis)
		if err != nil {
			return 0, err
		}
		if off < 0 {
			return hw, nil
		}
		return max(off, start), nil
	}
	return hw, nil
}

// Next returns the next record, waiting for one; it fails with ctx's error
// when ctx ends and with ErrStreamClosed when the stream is deleted or the
// broker closes. Partitions are read in turn, a record at a time, so a
// busy partition does not starve the others; within a partition records
// come in offset order.
func (r *StreamReader) Next(ctx context.Context) (StreamRecord, error) {
	for {
		select {
		case <-r.s.done:
			return StreamRecord{}, ErrStreamClosed
		default:
		}
		for i := range r.parts {
			idx := (r.rr + i) % len(r.parts)
			c := r.parts[idx]
			if len(c.buf) == 0 {
				if err := r.fill(c); err != nil {
					return StreamRecord{}, err
				}
			}
			for len(c.buf) > 0 {
				rec := c.buf[0]
				c.buf[0] = Record{}
				c.buf = c.buf[1:]
				r.rr = idx + 1
				sr := r.record(c.p, rec)
				if r.filter != nil && !r.filter.matches(sr.Message) {
					continue
				}
				r.s.msgsOut.Add(1)
				r.s.bytesOut.Add(int64(len(sr.Message.Body)))
				return sr, nil
			}
		}
		if err := r.wait(ctx); err != nil {
			return StreamRecord{}, err
		}
	}
}

// fill reads the next records of a partition that are durable and
// stable, if any: as a Kafka read-committed consumer, a reader stops at
// the last stable offset and skips the records of aborted transactions.
func (r *StreamReader) fill(c *streamCursor) error {
	for range 2 {
		start, _, _ := c.p.Offsets()
		if c.next < start {
			c.next = start // retention removed what was next
		}
		stable := c.p.LastStable()
		if c.next >= stable {
			return nil
		}
		aborted := c.p.AbortedTxns(c.next, stable)
		res, err := c.p.ReadStable(c.next, streamReadBytes)
		switch {
		case errors.Is(err, ErrOffsetOutOfRange):
			continue // retention moved the start meanwhile
		case errors.Is(err, ErrLogClosed):
			return ErrStreamClosed
		case err != nil:
			return fmt.Errorf("reading %s-%d at %d: %w", c.p.Topic, c.p.Index, c.next, err)
		}
		buf, err := res.AppendTo(nil)
		res.Release()
		if err != nil {
			return fmt.Errorf("reading %s-%d at %d: %w", c.p.Topic, c.p.Index, c.next, err)
		}
		from, next := c.next, c.next
		var derr error
		err = SplitBatches(buf, func(b Batch) bool {
			next = max(next, b.NextOffset())
			if b.IsControl() || b.IsTransactional() && abortedBatch(aborted, b) {
				return true
			}
			records := b.Records()
			if codec := b.Compression(); codec != CompressionNone {
				if r.decompress == nil {
					derr = fmt.Errorf("the batch at offset %d is compressed (codec %d) and the reader has no codec", b.BaseOffset(), codec)
					return false
				}
				if records, derr = r.decompress(codec, records); derr != nil {
					derr = fmt.Errorf("decompressing the batch at offset %d: %w", b.BaseOffset(), derr)
					return false
				}
			}
			derr = DecodeRecordsIn(b, records, func(rec Record) bool {
				if rec.Offset >= from {
					c.buf = append(c.buf, rec)
				}
				return true
			})
			return derr == nil
		})
		if err == nil {
			err = derr
		}
		if err != nil {
			return fmt.Errorf("reading %s-%d at %d: %w", c.p.Topic, c.p.Index, from, err)
		}
		c.next = next
		return nil
	}
	return nil
}

// abortedBatch reports whether a transactional batch belongs to one of the
// aborted transactions.
func abortedBatch(aborted []AbortedTxn, b Batch) bool {
	pid, base := b.ProducerID(), b.BaseOffset()
	for _, a := range aborted {
		if a.ProducerID == pid && a.FirstOffset <= base && base <= a.LastOffset {
			return true
		}
	}
	return false
}

// record makes the delivery of a record.
func (r *StreamReader) record(p *Partition, rec Record) StreamRecord {
	msg := MessageFromRecord(rec)
	if props, err := SetHeader(msg.Properties, HeaderStreamOffset, rec.Offset); err == nil {
		msg.Properties = props
	}
	if len(r.parts) > 1 {
		if props, err := SetHeader(msg.Properties, HeaderStreamPartition, p.Index); err == nil {
			msg.Properties = props
		}
	}
	return StreamRecord{Partition: p.Index, Offset: rec.Offset, Message: msg}
}

// wait blocks until a partition has data past its cursor, ctx ends or the
// stream closes.
func (r *StreamReader) wait(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(r.parts))
	for _, c := range r.parts {
		wg.Add(1)
		go func(p *Partition, at int64) {
			defer wg.Done()
			err := p.WaitStable(wctx, at)
			if err == nil || errors.Is(err, ErrLogClosed) {
				cancel()
			}
			errs <- err
		}(c.p, c.next)
	}
	select {
	case <-wctx.Done():
	case <-r.s.done:
		cancel()
	}
	wg.Wait()
	close(errs)
	if err := ctx.Err(); err != nil {
		return err
	}
	for err := range errs {
		if errors.Is(err, ErrLogClosed) {
			return ErrStreamClosed
		}
	}
	return nil
}
