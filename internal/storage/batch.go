package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch is a view over the bytes of one Kafka RecordBatch v2. Its accessors
// read the fixed header only; they never decode records. A Batch is only
// meaningful after CheckBatch accepted it.
type Batch []byte

// BaseOffset is the offset of the first record.
func (b Batch) BaseOffset() int64 { return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) }

// LastOffset is the offset of the last record.
func (b Batch) LastOffset() int64 { return b.BaseOffset() + int64(b.LastOffsetDelta()) }

// NextOffset is the offset that follows the batch.
func (b Batch) NextOffset() int64 { return b.LastOffset() + 1 }

// LastOffsetDelta is LastOffset - BaseOffset.
func (b Batch) LastOffsetDelta() int32 { return int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])) }

// Size is the batch's total length in bytes.
func (b Batch) Size() int {
	return batchLogOverhead + int(int32(binary.BigEndian.Uint32(b[offBatchLength:])))
}

// Magic is the format version; always 2 for stored batches.
func (b Batch) Magic() int8 { return int8(b[offMagic]) }

// Attributes holds compression, timestamp type, transactional and control bits.
func (b Batch) Attributes() int16 { return int16(binary.BigEndian.Uint16(b[offAttributes:])) }

// Compression is the codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
func (b Batch) Compression() int { return int(b.Attributes() & attrCompressionMask) }

// IsLogAppendTime reports whether MaxTimestamp is the broker's append time.
func (b Batch) IsLogAppendTime() bool { return b.Attributes()&attrTimestampType != 0 }

// IsTransactional reports the transactional attribute.
func (b Batch) IsTransactional() bool { return b.Attributes()&attrTransactional != 0 }

// IsControl reports the control-batch attribute (transaction markers).
func (b Batch) IsControl() bool { return b.Attributes()&attrControl != 0 }

// BaseTimestamp is the timestamp the record deltas are relative to.
func (b Batch) BaseTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])) }

// MaxTimestamp is the largest record timestamp, or the append time.
func (b Batch) MaxTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])) }

// ProducerID, ProducerEpoch and BaseSequence identify idempotent writes.
func (b Batch) ProducerID() int64 { return int64(binary.BigEndian.Uint64(b[offProducerID:])) }

// ProducerEpoch is the producer's epoch, or -1.
func (b Batch) ProducerEpoch() int16 { return int16(binary.BigEndian.Uint16(b[offProducerEpoch:])) }

// BaseSequence is the sequence number of the first record, or -1.
func (b Batch) BaseSequence() int32 { return int32(binary.BigEndian.Uint32(b[offBaseSequence:])) }

// RecordCount is the number of records in the batch.
func (b Batch) RecordCount() int32 { return int32(binary.BigEndian.Uint32(b[offRecordCount:])) }

// LeaderEpoch is the partition leader epoch stamped by the broker.
func (b Batch) LeaderEpoch() int32 { return int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])) }

// Records returns the bytes after the header: the (possibly compressed)
// records.
func (b Batch) Records() []byte { return b[batchHeaderSize:b.Size()] }

// setBaseOffset rewrites the base offset; the CRC does not cover it.
func (b Batch) setBaseOffset(o int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(o)) }

// setLogAppendTime marks the batch as LogAppendTime with the given time and
// recomputes the CRC, which covers both fields.
func (b Batch) setLogAppendTime(ts int64) {
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(b.Attributes()|attrTimestampType))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	b.updateCRC()
}

func (b Batch) updateCRC() {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:b.Size()], castagnoli))
}

// CheckBatch validates the batch at the start of buf: the length field, magic
// 2, the CRC32C and the header's record count. It returns the batch, which
// may be shorter than buf. maxSize bounds the batch size; zero or less means
// no bound. Errors wrap ErrCorruptBatch, ErrBatchTooLarge or
// ErrUnsupportedMagic. Records are not decoded.
func CheckBatch(buf []byte, maxSize int) (Batch, error) {
	if len(buf) < offMagic+1 {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a batch header", ErrCorruptBatch, len(buf))
	}
	length := int64(int32(binary.BigEndian.Uint32(buf[offBatchLength:])))
	size := batchLogOverhead + length
	if magic := int8(buf[offMagic]); magic != 2 {
		return nil, fmt.Errorf("%w: magic %d (only RecordBatch v2 is stored)", ErrUnsupportedMagic, magic)
	}
	if size < batchHeaderSize {
		return nil, fmt.Errorf("%w: batch length %d is shorter than the header", ErrCorruptBatch, length)
	}
	if maxSize > 0 && size > int64(maxSize) {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBatchTooLarge, size, maxSize)
	}
	if size > int64(len(buf)) {
		return nil, fmt.Errorf("%w: batch length %d but only %d bytes present", ErrCorruptBatch, size, len(buf))
	}
	b := Batch(buf[:size])
	if want, got := binary.BigEndian.Uint32(b[offCRC:]), crc32.Checksum(b[offAttributes:], castagnoli); want != got {
		return nil, fmt.Errorf("%w: CRC32C %08x, computed %08x", ErrCorruptBatch, want, got)
	}
	count, delta := b.RecordCount(), b.LastOffsetDelta()
	if count < 1 || delta != count-1 {
		return nil, fmt.Errorf("%w: %d records with last offset delta %d", ErrInvalidRecord, count, delta)
	}
	return b, nil
}

// PeekBatch returns the batch at the start of buf after checking only that
// its header is present, its length fits in buf and its magic is 2: enough
// to read header fields. It does not verify the CRC; Append does.
func PeekBatch(buf []byte) (Batch, error) {
	if len(buf) < batchHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a batch header", ErrCorruptBatch, len(buf))
	}
	if magic := int8(buf[offMagic]); magic != 2 {
		return nil, fmt.Errorf("%w: magic %d (only RecordBatch v2 is stored)", ErrUnsupportedMagic, magic)
	}
	size := batchLogOverhead + int64(int32(binary.BigEndian.Uint32(buf[offBatchLength:])))
	if size < batchHeaderSize || size > int64(len(buf)) {
		return nil, fmt.Errorf("%w: batch length %d does not fit the %d bytes present", ErrCorruptBatch, size, len(buf))
	}
	return Batch(buf[:size]), nil
}

// SplitBatches calls fn for each batch in buf, which must hold whole batches
// that CheckBatch accepts. It stops early when fn returns false.
func SplitBatches(buf []byte, fn func(Batch) bool) error {
	for len(buf) > 0 {
		b, err := CheckBatch(buf, 0)
		if err != nil {
			return err
		}
		if !fn(b) {
			return nil
		}
		buf = buf[len(b):]
	}
	return nil
}
