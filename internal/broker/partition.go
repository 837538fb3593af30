package broker

import (
	"context"

	"github.com/wharfmq/wharf/internal/storage"
)

// AppendResult and ReadResult are the storage engine's, named here so that
// adapters work with the core alone.
type (
	AppendResult = storage.AppendResult
	ReadResult   = storage.ReadResult
)

// Partition is one partition of a topic: an ordered log of record batches.
type Partition struct {
	Topic   string
	TopicID TopicID
	Index   int32
	log     *storage.Log
}

// Append validates and appends whole RecordBatch v2 batches, rewriting their
// headers in place, and returns once they are durable per the topic's
// fsync policy.
func (p *Partition) Append(ctx context.Context, batches []byte) (AppendResult, error) {
	return p.log.Append(ctx, batches)
}

// Read returns stored batches from the one holding offset; the caller must
// Release the result.
func (p *Partition) Read(offset int64, maxBytes int) (ReadResult, error) {
	return p.log.Read(offset, maxBytes)
}

// Wait blocks until data at offset can be read, or ctx is done.
func (p *Partition) Wait(ctx context.Context, offset int64) error { return p.log.Wait(ctx, offset) }

// Offsets reports the log start offset, the high watermark and the log end
// offset.
func (p *Partition) Offsets() (start, hw, end int64) { return p.log.Offsets() }

// OffsetForTime returns the first offset with a timestamp of at least ts.
func (p *Partition) OffsetForTime(ts int64) (offset, timestamp int64, err error) {
	return p.log.OffsetForTime(ts)
}

// MaxTimestamp returns the offset and timestamp of the newest-stamped record.
func (p *Partition) MaxTimestamp() (offset, timestamp int64, err error) { return p.log.MaxTimestamp() }

// DeleteRecords moves the log start offset forward (Kafka's DeleteRecords).
func (p *Partition) DeleteRecords(offset int64) (int64, error) { return p.log.SetStartOffset(offset) }
