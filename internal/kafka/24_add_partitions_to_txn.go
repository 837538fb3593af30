package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// AddPartitionsToTxn (key 24): adds partitions to a producer's
// transaction, which begins with the first; only then does a partition
// accept the producer's transactional batches. Either every partition is
// added or none: an unknown one is UNKNOWN_TOPIC_OR_PARTITION and the
// others OPERATION_NOT_ATTEMPTED. A producer id that is not the
// transactional id's is INVALID_PRODUCER_ID_MAPPING; an older epoch
// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2).
//
// Versions: v1 same as v0; v2 PRODUCER_FENCED; v3 flexible. v4+ (batched,
// broker-to-broker verification of KIP-890) is not served.
func (s *Server) handleAddPartitionsToTxn(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	var parts []broker.TopicPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, broker.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	errs, err := s.b.AddPartitionsToTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts)
	for _, t := range req.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition = p
			perr := err
			if perr == nil {
				perr = errs[broker.TopicPartition{Topic: t.Topic, Partition: p}]
			}
			rp.ErrorCode = txnErrorCode(perr, r.version, 2)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return now(resp), nil
}
