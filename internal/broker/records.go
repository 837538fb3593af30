package broker

import "github.com/wharfmq/wharf/internal/storage"

// Record and Header are the storage engine's decoded record, named here so
// that adapters that build or read records work with the core alone.
type (
	Record = storage.Record
	Header = storage.Header
)

// Compression codecs of a record batch (the low three bits of its
// attributes).
const (
	CompressionNone   = 0
	CompressionGzip   = 1
	CompressionSnappy = 2
	CompressionLZ4    = 3
	CompressionZstd   = 4
)

// EncodeRecords returns an uncompressed RecordBatch v2 holding recs, from a
// producer that is not idempotent, ready for Partition.Produce. recs must
// not be empty; their offsets are ignored.
func EncodeRecords(recs []Record) []byte {
	return storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
}

// SplitBatches calls fn for each whole batch in buf, as Partition.Read
// returns them, until fn returns false.
func SplitBatches(buf []byte, fn func(Batch) bool) error { return storage.SplitBatches(buf, fn) }

// DecodeRecords decodes the records of an uncompressed batch; see
// storage.DecodeRecords.
func DecodeRecords(b Batch, fn func(Record) bool) error { return storage.DecodeRecords(b, fn) }

// DecodeRecordsIn decodes a batch's records section that the caller has
// decompressed; see storage.DecodeRecordsIn.
func DecodeRecordsIn(b Batch, records []byte, fn func(Record) bool) error {
	return storage.DecodeRecordsIn(b, records, fn)
}
