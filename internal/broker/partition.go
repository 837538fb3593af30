package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/wharfmq/wharf/internal/storage"
)

// AppendResult, ReadResult and Pending are the storage engine's, named here
// so that adapters work with the core alone.
type (
	AppendResult = storage.AppendResult
	ReadResult   = storage.ReadResult
	Pending      = storage.Pending
	Batch        = storage.Batch
)

// Partition is one partition of a topic: an ordered log of record batches,
// and the state of the idempotent producers writing to it.
type Partition struct {
	Topic   string
	TopicID TopicID
	Index   int32
	log     *storage.Log

	mu        sync.Mutex // serialises idempotent appends with their checks
	producers map[int64]*producerState
	txns      map[int64]int16 // producers whose transaction holds this partition -> their epoch (txn_partition.go)

	stats flowCounters
}

// Append validates and appends whole RecordBatch v2 batches, rewriting their
// headers in place, and returns once they are durable per the topic's
// fsync policy.
func (p *Partition) Append(ctx context.Context, batches []byte) (AppendResult, error) {
	res, pending, err := p.Produce(batches)
	if err != nil {
		return res, err
	}
	return res, pending.Wait(ctx)
}

// Produce appends batches as a Kafka producer sends them and returns without
// waiting for durability: the Pending says when they are durable. Batches
// of an idempotent producer (producer id >= 0) are checked against the
// producer's epoch and sequence: a retry of one of its last five batches is
// answered with the original offsets and not written again; a gap is
// ErrOutOfOrderSequence and a stale epoch ErrInvalidProducerEpoch.
// A transactional batch is accepted only while the producer's ongoing
// transaction holds the partition (txn_partition.go); control batches are
// written by the broker alone.
func (p *Partition) Produce(batches []byte) (AppendResult, Pending, error) {
	// Only the header is read here; AppendAsync verifies every batch (CRC
	// included) before anything is written or any producer state recorded.
	// A corrupt retry of a batch already stored is answered with the stored
	// original's offsets, which loses nothing.
	first, err := storage.PeekBatch(batches)
	if err != nil {
		return AppendResult{}, Pending{}, err
	}
	switch {
	case first.IsControl():
		return AppendResult{}, Pending{}, fmt.Errorf("%w: clients may not write control batches", ErrInvalidRecord)
	case first.IsTransactional() && first.ProducerID() < 0:
		return AppendResult{}, Pending{}, fmt.Errorf("%w: a transactional batch needs a producer id", ErrInvalidRecord)
	}
	pid := first.ProducerID()
	if pid < 0 {
		res, pending, err := p.log.AppendAsync(batches)
		if err == nil {
			p.stats.in(res.LastOffset-res.BaseOffset+1, len(batches))
		}
		return res, pending, err
	}
	if len(first) != len(batches) {
		return AppendResult{}, Pending{}, fmt.Errorf("%w: an idempotent produce must carry one batch per partition", ErrInvalidRecord)
	}
	epoch, firstSeq := first.ProducerEpoch(), first.BaseSequence()
	lastSeq := lastSequence(firstSeq, first.LastOffsetDelta())
	p.mu.Lock()
	defer p.mu.Unlock()
	if first.IsTransactional() {
		if err := p.checkTxn(pid, epoch); err != nil {
			return AppendResult{}, Pending{}, err
		}
	}
	st := p.producers[pid]
	if st == nil {
		st = &producerState{epoch: -1}
	}
	dup, err := st.check(epoch, firstSeq, lastSeq)
	if err != nil {
		return AppendResult{}, Pending{}, err
	}
	if dup != nil {
		// The retry is durable when the original append is, and fails
		// with it if a failed fsync discarded it.
		start, _, _ := p.log.Offsets()
		res := AppendResult{BaseOffset: dup.base, LastOffset: dup.last, LogAppendTime: dup.logAppendTime, LogStartOffset: start}
		return res, dup.pending, nil
	}
	res, pending, err := p.log.AppendAsync(batches)
	if err != nil {
		return res, pending, err
	}
	p.stats.in(res.LastOffset-res.BaseOffset+1, len(batches))
	st.record(epoch, producerBatch{
		firstSeq: firstSeq, lastSeq: lastSeq, base: res.BaseOffset, last: res.LastOffset,
		logAppendTime: res.LogAppendTime, maxTimestamp: max(first.MaxTimestamp(), res.LogAppendTime), pending: pending,
	})
	p.producers[pid] = st
	return res, pending, nil
}

// Forget drops what the partition remembers of batches that a failed fsync
// discarded: a retry of such a batch must be written again, not answered as
// a duplicate. Batches are told apart by their own appends' outcome, not
// by offsets, which later appends may have reused.
func (p *Partition) Forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pid, st := range p.producers {
		kept := st.batches[:0]
		for _, b := range st.batches {
			if !discarded(b.pending) {
				kept = append(kept, b)
			}
		}
		st.batches = kept
		if len(kept) == 0 {
			delete(p.producers, pid)
		}
	}
}

// discarded reports, without waiting, whether an append failed for good.
func discarded(pending Pending) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return errors.Is(pending.Wait(ctx), ErrStorage)
}

// Read returns stored batches from the one holding offset; the caller must
// Release the result.
func (p *Partition) Read(offset int64, maxBytes int) (ReadResult, error) {
	res, err := p.log.Read(offset, maxBytes)
	if err == nil {
		p.stats.bytesOut.Add(int64(res.Len()))
	}
	return res, err
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
