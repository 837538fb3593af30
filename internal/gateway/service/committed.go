package service

import (
	"slices"

	"github.com/wharfmq/wharf/internal/broker"
)

// The gateway's topic faces read as Kafka's read_committed consumers do:
// Fetch reads up to the partition's last stable offset, so records of a
// transaction still open are not shown yet, and leaves out the batches of
// aborted transactions and the transaction markers. A record is shown
// once, when its transaction commits (or at once, outside transactions).

// abortedFilter tells which batches of a read belong to aborted
// transactions, as a read_committed Kafka client works it out: an aborted
// transaction's producer is aborted from its first offset until its
// marker.
type abortedFilter struct {
	txns   []broker.AbortedTxn // by first offset
	next   int                 // the first of txns not yet active
	active map[int64]bool      // producers inside an aborted transaction
}

func newAbortedFilter(txns []broker.AbortedTxn) *abortedFilter {
	slices.SortFunc(txns, func(a, b broker.AbortedTxn) int {
		switch {
		case a.FirstOffset < b.FirstOffset:
			return -1
		case a.FirstOffset > b.FirstOffset:
			return 1
		}
		return 0
	})
	return &abortedFilter{txns: txns, active: map[int64]bool{}}
}

// skip reports whether batch b is left out: a transaction marker, or a
// transactional batch of an aborted transaction. Batches must come in
// offset order.
func (f *abortedFilter) skip(b broker.Batch) bool {
	for f.next < len(f.txns) && f.txns[f.next].FirstOffset <= b.LastOffset() {
		f.active[f.txns[f.next].ProducerID] = true
		f.next++
	}
	if b.IsControl() {
		delete(f.active, b.ProducerID()) // the marker ends its transaction
		return true
	}
	return b.IsTransactional() && f.active[b.ProducerID()]
}
