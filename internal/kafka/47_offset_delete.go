package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// OffsetDelete (key 47): deletes committed offsets of a group. A group
// without members loses all the requested ones; a "consumer" group with
// members only those of topics no member subscribes to (the others are
// GROUP_SUBSCRIBED_TO_TOPIC), and a group with members of another protocol
// type none (NON_EMPTY_GROUP). Partitions that do not exist are
// UNKNOWN_TOPIC_OR_PARTITION. The answer waits for the deletion's fsync.
//
// Versions: v0 only.
func (s *Server) handleOffsetDelete(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var parts []broker.TopicPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, broker.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	errs, persisted, err := s.b.DeleteOffsets(req.Group, parts, consumerSubscriptions)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return now(resp), nil
	}
	return reply{finish: func(ctx context.Context) kmsg.Response {
		werr := persisted.Wait(ctx)
		if werr != nil && ctx.Err() != nil {
			return nil
		}
		i := 0
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition = p.Partition
				err := errs[i]
				if err == nil {
					err = werr
				}
				rp.ErrorCode = errorCode(err)
				rt.Partitions = append(rt.Partitions, rp)
				i++
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}}, nil
}
