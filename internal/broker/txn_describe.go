package broker

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// TxnDescription describes one transactional id.
type TxnDescription struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	State           TxnState
	Timeout         time.Duration
	Start           time.Time // zero when no transaction is open
	Partitions      []TopicPartition
}

// Transactions describes every transactional id, sorted by id, with its
// partitions sorted by topic and partition.
func (b *Broker) Transactions() []TxnDescription {
	b.txns.mu.Lock()
	defer b.txns.mu.Unlock()
	out := make([]TxnDescription, 0, len(b.txns.txns))
	for _, e := range b.txns.txns {
		v := e.view
		if v.ID == "" || v.Expired {
			continue
		}
		d := TxnDescription{TransactionalID: v.ID, ProducerID: v.ProducerID, ProducerEpoch: v.Epoch, State: v.State,
			Timeout: time.Duration(v.TimeoutMs) * time.Millisecond}
		if v.State == TxnOngoing || v.State == TxnPrepareCommit || v.State == TxnPrepareAbort {
			d.Start = time.UnixMilli(v.StartMs)
		}
		for _, p := range v.Partitions {
			d.Partitions = append(d.Partitions, TopicPartition{Topic: p.Topic, Partition: p.Partition})
		}
		slices.SortFunc(d.Partitions, func(a, b TopicPartition) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return cmp.Compare(a.Partition, b.Partition)
		})
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b TxnDescription) int { return strings.Compare(a.TransactionalID, b.TransactionalID) })
	return out
}

// PendingTxnOffsets reports the partitions of a group whose committed
// offset a transaction not yet complete may change.
func (b *Broker) PendingTxnOffsets(group string) map[TopicPartition]bool {
	b.txns.mu.Lock()
	defer b.txns.mu.Unlock()
	out := map[TopicPartition]bool{}
	for _, e := range b.txns.txns {
		v := e.view
		if v.State != TxnOngoing && v.State != TxnPrepareCommit {
			continue
		}
		for _, o := range v.Offsets {
			if o.Group == group {
				out[TopicPartition{Topic: o.Topic, Partition: o.Partition}] = true
			}
		}
	}
	return out
}
