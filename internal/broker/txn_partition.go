package broker

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/wharfmq/wharf/internal/storage"
)

// AbortedTxn is an aborted transaction of one producer in a partition: its
// first offset and the offset of its abort marker.
type AbortedTxn = storage.AbortedTxn

// checkTxn decides whether a transactional batch of producer pid at epoch
// may be written: only while the producer's ongoing transaction holds the
// partition. Callers hold p.mu.
func (p *Partition) checkTxn(pid int64, epoch int16) error {
	e, ok := p.txns[pid]
	switch {
	case ok && epoch == e:
		return nil
	case ok && epoch < e:
		return fmt.Errorf("%w: batch epoch %d is older than the transaction's %d", ErrInvalidProducerEpoch, epoch, e)
	}
	if st := p.producers[pid]; st != nil && epoch < st.epoch {
		return fmt.Errorf("%w: batch epoch %d is older than the producer's %d", ErrInvalidProducerEpoch, epoch, st.epoch)
	}
	return fmt.Errorf("%w: %s-%d was not added to a transaction of producer %d at epoch %d", ErrInvalidTxnState, p.Topic, p.Index, pid, epoch)
}

// addToTxn lets producer pid write transactional batches at epoch until
// its marker is written.
func (p *Partition) addToTxn(pid int64, epoch int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.txns == nil {
		p.txns = map[int64]int16{}
	}
	p.txns[pid] = epoch
}

// writeMarker appends the marker that commits or aborts producer pid's
// transaction in this partition and ends it: later transactional batches
// of the producer need the partition added again. The marker's epoch
// becomes the producer's, which fences batches of older epochs.
func (p *Partition) writeMarker(pid int64, epoch int16, commit bool, now int64) (Pending, error) {
	typ := storage.ControlAbort
	if commit {
		typ = storage.ControlCommit
	}
	batch := storage.ControlBatch(pid, epoch, typ, 0, now)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, pending, err := p.log.AppendAsync(batch)
	if err != nil {
		return pending, fmt.Errorf("writing a transaction marker to %s-%d: %w", p.Topic, p.Index, err)
	}
	delete(p.txns, pid)
	st := p.producers[pid]
	if st == nil {
		st = &producerState{epoch: -1}
		p.producers[pid] = st
	}
	st.bumpEpoch(epoch)
	return pending, nil
}

// LastStable is the partition's last stable offset: where read-committed
// consumers stop.
func (p *Partition) LastStable() int64 { return p.log.LastStable() }

// ReadStable is Read for a read-committed consumer: it stops at the last
// stable offset.
func (p *Partition) ReadStable(offset int64, maxBytes int) (ReadResult, error) {
	res, err := p.log.ReadStable(offset, maxBytes)
	if err == nil {
		p.stats.bytesOut.Add(int64(res.Len()))
	}
	return res, err
}

// WaitStable blocks until the last stable offset is past offset, or ctx is
// done.
func (p *Partition) WaitStable(ctx context.Context, offset int64) error {
	return p.log.WaitStable(ctx, offset)
}

// AbortedTxns lists the aborted transactions that may hold records in
// [from, to).
func (p *Partition) AbortedTxns(from, to int64) []AbortedTxn { return p.log.AbortedTxns(from, to) }

// OpenTxns maps the producers with a transaction open in the partition to
// its first offset.
func (p *Partition) OpenTxns() map[int64]int64 { return p.log.OpenTxns() }

// ProducerInfo is what a partition knows of one producer (Kafka's
// DescribeProducers).
type ProducerInfo struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32 // -1 when no batch of the current epoch is remembered
	LastTimestamp int64 // the max timestamp of that batch, or -1
	// TxnStartOffset is the first offset of the producer's open
	// transaction, or -1.
	TxnStartOffset int64
}

// Producers lists the producers the partition remembers, and those with a
// transaction open in it, by producer id.
func (p *Partition) Producers() []ProducerInfo {
	open := p.log.OpenTxns()
	p.mu.Lock()
	out := make([]ProducerInfo, 0, len(p.producers))
	for pid, st := range p.producers {
		info := ProducerInfo{ProducerID: pid, ProducerEpoch: st.epoch, LastSequence: -1, LastTimestamp: -1, TxnStartOffset: -1}
		if n := len(st.batches); n > 0 {
			info.LastSequence, info.LastTimestamp = st.batches[n-1].lastSeq, st.batches[n-1].maxTimestamp
		}
		if first, ok := open[pid]; ok {
			info.TxnStartOffset = first
			delete(open, pid)
		}
		out = append(out, info)
	}
	p.mu.Unlock()
	for pid, first := range open {
		out = append(out, ProducerInfo{ProducerID: pid, ProducerEpoch: -1, LastSequence: -1, LastTimestamp: -1, TxnStartOffset: first})
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}
