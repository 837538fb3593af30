package broker

import (
	"fmt"
	"math"

	"github.com/wharfmq/wharf/internal/storage"
)

// Errors of the idempotent producer checks.
var (
	ErrOutOfOrderSequence   = fmt.Errorf("out of order sequence number")
	ErrInvalidProducerEpoch = fmt.Errorf("invalid producer epoch")
)

// producerWindow is how many recent batches of each producer a partition
// remembers to recognise retries, as Kafka does.
const producerWindow = 5

type producerBatch struct {
	firstSeq, lastSeq int32
	base, last        int64
	logAppendTime     int64
	maxTimestamp      int64   // the batch's max timestamp, for DescribeProducers
	pending           Pending // the append's durability; zero when read back from disk
}

// producerState is what a partition knows of one producer id: its epoch
// and its last batches, oldest first.
type producerState struct {
	epoch   int16
	batches []producerBatch
}

func inSequence(last, next int32) bool {
	return next == nextSequence(last)
}

// nextSequence is the sequence after seq: sequences wrap from MaxInt32 to 0.
func nextSequence(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// lastSequence is the sequence of a batch's last record, wrapping past
// MaxInt32 as Kafka's producers do.
func lastSequence(first, lastOffsetDelta int32) int32 {
	if first > math.MaxInt32-lastOffsetDelta {
		return lastOffsetDelta - (math.MaxInt32 - first) - 1
	}
	return first + lastOffsetDelta
}

// lastSeq returns the producer's last sequence, or false when none is known.
func (st *producerState) lastSeq() (int32, bool) {
	if len(st.batches) == 0 {
		return 0, false
	}
	return st.batches[len(st.batches)-1].lastSeq, true
}

// check decides what to do with a batch from this producer: append it
// (nil, nil), answer it as the duplicate of a batch already written (the
// batch, nil), or refuse it.
func (st *producerState) check(epoch int16, first, last int32) (*producerBatch, error) {
	switch {
	case epoch < st.epoch:
		return nil, fmt.Errorf("%w: batch epoch %d is older than the producer's %d", ErrInvalidProducerEpoch, epoch, st.epoch)
	case epoch > st.epoch:
		if first != 0 && st.epoch >= 0 {
			return nil, fmt.Errorf("%w: first batch of new epoch %d has sequence %d, want 0", ErrOutOfOrderSequence, epoch, first)
		}
		return nil, nil
	}
	for i := range st.batches {
		if b := &st.batches[i]; b.firstSeq == first && b.lastSeq == last {
			return b, nil
		}
	}
	if prev, ok := st.lastSeq(); ok && !inSequence(prev, first) {
		return nil, fmt.Errorf("%w: expected sequence %d, got %d", ErrOutOfOrderSequence, nextSequence(prev), first)
	}
	return nil, nil
}

// bumpEpoch moves the producer to a later epoch without a batch, as a
// transaction marker of that epoch does: its next batch starts a new
// sequence.
func (st *producerState) bumpEpoch(epoch int16) {
	if epoch > st.epoch {
		st.epoch, st.batches = epoch, st.batches[:0]
	}
}

// record remembers a batch that was written.
func (st *producerState) record(epoch int16, b producerBatch) {
	if epoch != st.epoch {
		st.epoch, st.batches = epoch, st.batches[:0]
	}
	if len(st.batches) == producerWindow {
		copy(st.batches, st.batches[1:])
		st.batches = st.batches[:producerWindow-1]
	}
	st.batches = append(st.batches, b)
}

// rebuildProducers recovers producer state from the batch headers of the
// partition's last two segments. A producer idle for longer is forgotten,
// and its next batch is accepted whatever its sequence, as Kafka does for a
// producer whose state has expired.
func (p *Partition) rebuildProducers() error {
	bases := p.log.SegmentBases()
	from := bases[max(0, len(bases)-2)]
	p.producers = map[int64]*producerState{}
	return p.log.ScanHeaders(from, func(b storage.Batch) bool {
		if b.ProducerID() < 0 {
			return true
		}
		st := p.producers[b.ProducerID()]
		if st == nil {
			st = &producerState{epoch: -1}
			p.producers[b.ProducerID()] = st
		}
		if b.IsControl() {
			// A transaction marker carries the producer's epoch.
			st.bumpEpoch(b.ProducerEpoch())
			return true
		}
		lat := int64(-1)
		if b.IsLogAppendTime() {
			lat = b.MaxTimestamp()
		}
		st.record(b.ProducerEpoch(), producerBatch{
			firstSeq: b.BaseSequence(), lastSeq: lastSequence(b.BaseSequence(), b.LastOffsetDelta()),
			base: b.BaseOffset(), last: b.LastOffset(), logAppendTime: lat, maxTimestamp: b.MaxTimestamp(),
		})
		return true
	})
}
