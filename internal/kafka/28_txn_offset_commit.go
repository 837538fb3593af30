package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// TxnOffsetCommit (key 28): offsets a transaction commits for a group, once
// AddOffsetsToTxn added the group. They become the group's committed
// offsets when the transaction commits and are dropped if it aborts; until
// then OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for
// them. From v3 the member and generation are checked as OffsetCommit
// checks them.
//
// Versions: v1 same as v0; v2 leader epoch; v3 flexible, member,
// generation and instance id, PRODUCER_FENCED.
func (s *Server) handleTxnOffsetCommit(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	breq := broker.TxnOffsetCommitRequest{
		TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
		Group: req.Group, Generation: -1,
	}
	if r.version >= 3 {
		breq.Generation, breq.MemberID, breq.InstanceID = req.Generation, req.MemberID, deref(req.InstanceID)
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			o := broker.OffsetCommit{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: -1, Metadata: deref(p.Metadata)}
			if r.version >= 2 {
				o.LeaderEpoch = p.LeaderEpoch
			}
			breq.Offsets = append(breq.Offsets, o)
		}
	}
	errs, err := s.b.TxnOffsetCommit(ctx, breq)
	i := 0
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			perr := err
			if perr == nil {
				perr = errs[i]
			}
			rp.ErrorCode = txnErrorCode(perr, r.version, 3)
			rt.Partitions = append(rt.Partitions, rp)
			i++
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return now(resp), nil
}
