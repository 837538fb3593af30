package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// TxnState is where a transactional id's transaction stands, as Kafka's
// coordinator names the states.
type TxnState int8

// Transaction states.
const (
	TxnEmpty TxnState = iota
	TxnOngoing
	TxnPrepareCommit
	TxnPrepareAbort
	TxnCompleteCommit
	TxnCompleteAbort
)

// String is the state's name as Kafka's admin APIs report it.
func (s TxnState) String() string {
	switch s {
	case TxnEmpty:
		return "Empty"
	case TxnOngoing:
		return "Ongoing"
	case TxnPrepareCommit:
		return "PrepareCommit"
	case TxnPrepareAbort:
		return "PrepareAbort"
	case TxnCompleteCommit:
		return "CompleteCommit"
	case TxnCompleteAbort:
		return "CompleteAbort"
	}
	return fmt.Sprintf("TxnState(%d)", int8(s))
}

// txnOffset is one offset a transaction commits for a group when it
// commits.
type txnOffset struct {
	Group       string `json:"group"`
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata,omitempty"`
}

// txnPartition is a partition a transaction holds.
type txnPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// txnRecord is the whole state of one transactional id: each change is one
// record of it in the transaction log, and the last record of an id is its
// state.
type txnRecord struct {
	ID         string         `json:"id"`
	ProducerID int64          `json:"producer_id"`
	Epoch      int16          `json:"epoch"`
	PrevEpoch  int16          `json:"prev_epoch"` // the epoch before the last InitProducerId, or -1
	State      TxnState       `json:"state"`
	TimeoutMs  int64          `json:"timeout_ms"`
	StartMs    int64          `json:"start_ms"`  // when the ongoing transaction began
	UpdateMs   int64          `json:"update_ms"` // the last change
	Partitions []txnPartition `json:"partitions,omitempty"`
	Groups     []string       `json:"groups,omitempty"`
	Offsets    []txnOffset    `json:"offsets,omitempty"`
	Expired    bool           `json:"expired,omitempty"` // a tombstone: the id was forgotten
}

// txnRecordFormat is the first byte of every record value.
const txnRecordFormat = 1

var errBadTxnRecord = errors.New("malformed transaction record")

func encodeTxnRecord(r txnRecord) []byte {
	buf, err := json.Marshal(r)
	if err != nil {
		// Every field is a plain value; Marshal cannot fail on it.
		panic(fmt.Sprintf("encoding a transaction record: %v", err))
	}
	return append([]byte{txnRecordFormat}, buf...)
}

// decodeTxnRecord parses and checks a record value.
func decodeTxnRecord(buf []byte) (txnRecord, error) {
	var r txnRecord
	if len(buf) < 1 || buf[0] != txnRecordFormat {
		return r, fmt.Errorf("%w: unknown format", errBadTxnRecord)
	}
	if err := json.Unmarshal(buf[1:], &r); err != nil {
		return r, fmt.Errorf("%w: %w", errBadTxnRecord, err)
	}
	switch {
	case r.ID == "":
		return r, fmt.Errorf("%w: empty transactional id", errBadTxnRecord)
	case r.ProducerID < 0 || r.Epoch < 0 || r.Epoch == math.MaxInt16 || r.PrevEpoch < -1:
		return r, fmt.Errorf("%w: producer %d epoch %d", errBadTxnRecord, r.ProducerID, r.Epoch)
	case r.State < TxnEmpty || r.State > TxnCompleteAbort:
		return r, fmt.Errorf("%w: state %d", errBadTxnRecord, r.State)
	case r.TimeoutMs <= 0:
		return r, fmt.Errorf("%w: timeout %d", errBadTxnRecord, r.TimeoutMs)
	}
	for _, p := range r.Partitions {
		if p.Topic == "" || p.Partition < 0 {
			return r, fmt.Errorf("%w: partition %s-%d", errBadTxnRecord, p.Topic, p.Partition)
		}
	}
	for _, o := range r.Offsets {
		if o.Group == "" || o.Topic == "" || o.Partition < 0 {
			return r, fmt.Errorf("%w: offset of %q for %s-%d", errBadTxnRecord, o.Group, o.Topic, o.Partition)
		}
	}
	return r, nil
}
