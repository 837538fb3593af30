package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// OffsetCommit (key 8): commits offsets, with their metadata and leader
// epoch, for a group. A member's commit is checked against its generation
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
// REBALANCE_IN_PROGRESS while the group waits for its assignment); a
// commit without a member (generation -1) is allowed only for a group
// without members. Partitions that do not exist are
// UNKNOWN_TOPIC_OR_PARTITION, metadata over the limit
// OFFSET_METADATA_TOO_LARGE. The answer waits for the fsync that makes the
// commit durable.
//
// Versions: v0 has no generation (a commit without a member); v1
// generation, member id and a per-partition commit timestamp; v2-v4
// retention time; v3 throttle; v6 leader epoch; v7 group instance id; v8
// flexible; v9 (the new consumer protocol's member epochs; classic
// groups use generations as before).
func (s *Server) handleOffsetCommit(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	breq := broker.OffsetCommitRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: deref(req.InstanceID), Generation: req.Generation}
	if r.version == 0 {
		breq.MemberID, breq.Generation = "", -1
	}
	var retention time.Duration
	if r.version >= 2 && r.version <= 4 && req.RetentionTimeMillis >= 0 {
		retention = time.Duration(req.RetentionTimeMillis) * time.Millisecond
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			o := broker.OffsetCommit{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: -1, Metadata: deref(p.Metadata), Retention: retention}
			if r.version >= 6 {
				o.LeaderEpoch = p.LeaderEpoch
			}
			if r.version == 1 && p.Timestamp >= 0 {
				o.CommitTime = time.UnixMilli(p.Timestamp)
			}
			breq.Offsets = append(breq.Offsets, o)
		}
	}
	errs, persisted := s.b.CommitOffsets(breq)
	fill := func(werr error) {
		i := 0
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
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
	}
	return reply{finish: func(ctx context.Context) kmsg.Response {
		werr := persisted.Wait(ctx)
		if werr != nil && ctx.Err() != nil {
			return nil
		}
		fill(werr)
		return resp
	}}, nil
}
