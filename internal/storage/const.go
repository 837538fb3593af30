package storage

// RecordBatch v2 header layout (all integers big-endian). The CRC covers the
// bytes from the attributes field to the end of the batch, so the base offset
// and the partition leader epoch can be rewritten without recomputing it.
const (
	offBaseOffset      = 0  // int64
	offBatchLength     = 8  // int32: bytes after this field
	offLeaderEpoch     = 12 // int32
	offMagic           = 16 // int8
	offCRC             = 17 // uint32, CRC32C of bytes [offAttributes:]
	offAttributes      = 21 // int16
	offLastOffsetDelta = 23 // int32
	offBaseTimestamp   = 27 // int64
	offMaxTimestamp    = 35 // int64
	offProducerID      = 43 // int64
	offProducerEpoch   = 51 // int16
	offBaseSequence    = 53 // int32
	offRecordCount     = 57 // int32
	batchHeaderSize    = 61

	// batchLogOverhead is the part of the header before batchLength counts.
	batchLogOverhead = 12

	attrCompressionMask = 0x07
	attrTimestampType   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20

	// maxSegmentBytes keeps every file position within an int32, as Kafka does.
	maxSegmentBytes = 1<<31 - 1
)
