package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, which
// consumers use to detect a log truncated under them. Every partition has
// had one leader, with epoch 0, since it was created, so:
//
//   - epoch 0 (the current one) ends at the log end offset, as Kafka answers
//     for the leader's latest epoch;
//   - a later epoch is unknown: epoch -1 and offset -1 with no error, as
//     Kafka answers for an epoch past its latest;
//   - -1 (undefined) is answered the same way;
//   - an epoch before 0 other than -1 gets itself and the log start offset,
//     where the first known epoch begins.
//
// A current leader epoch (v2+) other than -1 is checked against 0: a newer
// one is UNKNOWN_LEADER_EPOCH, an older one FENCED_LEADER_EPOCH.
//
// Versions: v1 leader epoch in the answer; v2 current leader epoch and
// throttle; v3 replica id; v4 flexible.
func (s *Server) handleOffsetForLeaderEpoch(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition = p.Partition
			part, err := s.b.Partition(t.Topic, p.Partition)
			switch {
			case err != nil:
				rp.ErrorCode = errorCode(err)
			case r.version >= 2 && p.CurrentLeaderEpoch > 0:
				rp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case r.version >= 2 && p.CurrentLeaderEpoch < -1:
				rp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case p.LeaderEpoch == 0:
				_, _, end := part.Offsets()
				rp.LeaderEpoch, rp.EndOffset = 0, end
			case p.LeaderEpoch < -1:
				start, _, _ := part.Offsets()
				rp.LeaderEpoch, rp.EndOffset = p.LeaderEpoch, start
			default:
				rp.LeaderEpoch, rp.EndOffset = -1, -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return now(resp), nil
}
