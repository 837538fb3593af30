package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one decoded record. Key and Value are nil for a null key or value.
type Record struct {
	Offset    int64
	Timestamp int64 // milliseconds since the Unix epoch
	Key       []byte
	Value     []byte
	Headers   []Header
}

// BatchSpec describes a batch to encode with AppendBatch.
type BatchSpec struct {
	BaseOffset    int64
	Attributes    int16 // compression must be 0: AppendBatch does not compress
	ProducerID    int64 // -1 when not idempotent
	ProducerEpoch int16 // -1 when not idempotent
	BaseSequence  int32 // -1 when not idempotent
	Records       []Record
}

// ErrCompressed is returned by DecodeRecords for a compressed batch.
var ErrCompressed = errors.New("storage: compressed record batch")

// AppendBatch encodes spec as an uncompressed RecordBatch v2 and appends it to
// dst. Record offsets are taken as their position in spec.Records; the batch
// timestamps are derived from the records. spec.Records must not be empty.
func AppendBatch(dst []byte, spec BatchSpec) []byte {
	start := len(dst)
	var baseTS, maxTS int64
	if len(spec.Records) > 0 {
		baseTS = spec.Records[0].Timestamp
		maxTS = baseTS
	}
	for _, r := range spec.Records {
		maxTS = max(maxTS, r.Timestamp)
	}
	dst = append(dst, make([]byte, batchHeaderSize)...)
	h := dst[start:]
	binary.BigEndian.PutUint64(h[offBaseOffset:], uint64(spec.BaseOffset))
	h[offMagic] = 2
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(spec.Attributes&^attrCompressionMask))
	binary.BigEndian.PutUint32(h[offLastOffsetDelta:], uint32(len(spec.Records)-1))
	binary.BigEndian.PutUint64(h[offBaseTimestamp:], uint64(baseTS))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(maxTS))
	binary.BigEndian.PutUint64(h[offProducerID:], uint64(spec.ProducerID))
	binary.BigEndian.PutUint16(h[offProducerEpoch:], uint16(spec.ProducerEpoch))
	binary.BigEndian.PutUint32(h[offBaseSequence:], uint32(spec.BaseSequence))
	binary.BigEndian.PutUint32(h[offRecordCount:], uint32(len(spec.Records)))
	var body []byte
	for i, r := range spec.Records {
		body = body[:0]
		body = append(body, 0) // record attributes
		body = binary.AppendVarint(body, r.Timestamp-baseTS)
		body = binary.AppendVarint(body, int64(i))
		body = appendVarBytes(body, r.Key)
		body = appendVarBytes(body, r.Value)
		body = binary.AppendVarint(body, int64(len(r.Headers)))
		for _, hd := range r.Headers {
			body = binary.AppendVarint(body, int64(len(hd.Key)))
			body = append(body, hd.Key...)
			body = appendVarBytes(body, hd.Value)
		}
		dst = binary.AppendVarint(dst, int64(len(body)))
		dst = append(dst, body...)
	}
	b := Batch(dst[start:])
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-batchLogOverhead))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// DecodeRecords decodes the records of an uncompressed batch that CheckBatch
// accepted and calls fn for each, stopping early when fn returns false. The
// slices in a Record alias b. A LogAppendTime batch reports its MaxTimestamp
// for every record, as Kafka consumers do. Errors wrap ErrCorruptBatch or
// ErrCompressed.
func DecodeRecords(b Batch, fn func(Record) bool) error {
	if b.Compression() != 0 {
		return fmt.Errorf("%w: codec %d", ErrCompressed, b.Compression())
	}
	return DecodeRecordsIn(b, b.Records(), fn)
}

// DecodeRecordsIn is DecodeRecords for a batch whose records section the
// caller has already decompressed: records is that section, and the
// offsets and timestamps come from b's header. The slices in a Record alias
// records.
func DecodeRecordsIn(b Batch, records []byte, fn func(Record) bool) error {
	d := recordDecoder{buf: records}
	base, baseTS := b.BaseOffset(), b.BaseTimestamp()
	logAppend := b.IsLogAppendTime()
	for i := int32(0); i < b.RecordCount(); i++ {
		length := d.varint()
		if d.err != nil || length < 0 || length > int64(len(d.buf)) {
			return fmt.Errorf("%w: record %d has a bad length", ErrCorruptBatch, i)
		}
		rd := recordDecoder{buf: d.buf[:length]}
		d.buf = d.buf[length:]
		var r Record
		rd.byte() // attributes, unused in v2
		r.Timestamp = baseTS + rd.varint()
		if logAppend {
			r.Timestamp = b.MaxTimestamp()
		}
		r.Offset = base + rd.varint()
		r.Key = rd.varBytes()
		r.Value = rd.varBytes()
		n := rd.varint()
		if n < 0 || n > int64(len(rd.buf)) {
			return fmt.Errorf("%w: record %d has a bad header count", ErrCorruptBatch, i)
		}
		if n > 0 {
			r.Headers = make([]Header, n)
			for j := range r.Headers {
				k := rd.varBytes()
				if k == nil {
					rd.fail()
				}
				r.Headers[j] = Header{Key: string(k), Value: rd.varBytes()}
			}
		}
		if rd.err != nil || len(rd.buf) != 0 {
			return fmt.Errorf("%w: record %d is malformed", ErrCorruptBatch, i)
		}
		if !fn(r) {
			return nil
		}
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrCorruptBatch, len(d.buf))
	}
	return nil
}

type recordDecoder struct {
	buf []byte
	err error
}

func (d *recordDecoder) fail() {
	if d.err == nil {
		d.err = ErrCorruptBatch
	}
	d.buf = nil
}

func (d *recordDecoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail()
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

func (d *recordDecoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *recordDecoder) varBytes() []byte {
	n := d.varint()
	switch {
	case d.err != nil:
		return nil
	case n == -1:
		return nil
	case n < -1 || n > int64(len(d.buf)):
		d.fail()
		return nil
	}
	v := d.buf[:n:n]
	d.buf = d.buf[n:]
	return v
}
