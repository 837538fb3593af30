package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps.
const (
	latestTimestamp        = -1 // the high watermark, or the last stable offset for read_committed
	earliestTimestamp      = -2 // the log start offset
	maxTimestamp           = -3 // the record with the largest timestamp (v7+)
	earliestLocalTimestamp = -4 // the first offset on local disk: the start here (v8+)
	latestTieredTimestamp  = -5 // the last offset in tiered storage: none here (v9+)
)

// ListOffsets (key 2): the offset for a timestamp in each partition:
// earliest, latest, the record with the largest timestamp, or the first
// record with a timestamp at or after the one given.
//
// With isolation level read_committed (v2+) latest is the last stable
// offset, and a timestamp found at or past it is not found.
//
// Versions: v0 answers with a list of offsets (old style); v1 one offset and
// timestamp; v2 isolation level; v4 leader epochs; v6 flexible; v7 max
// timestamp; v8 earliest local; v9 latest tiered.
func (s *Server) handleListOffsets(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, 0
			part, err := s.b.Partition(rt.Topic, rp.Partition)
			switch {
			case err != nil:
				sp.ErrorCode = errorCode(err)
			case rp.CurrentLeaderEpoch > 0:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				start, hw, _ := part.Offsets()
				switch rp.Timestamp {
				case latestTimestamp:
					sp.Offset = hw
					if r.version >= 2 && req.IsolationLevel == 1 {
						sp.Offset = part.LastStable()
					}
				case earliestTimestamp, earliestLocalTimestamp:
					sp.Offset = start
				case latestTieredTimestamp:
					sp.Offset = -1
				case maxTimestamp:
					sp.Offset, sp.Timestamp, err = part.MaxTimestamp()
				default:
					sp.Offset, sp.Timestamp, err = part.OffsetForTime(rp.Timestamp)
					if err == nil && r.version >= 2 && req.IsolationLevel == 1 && sp.Offset >= part.LastStable() {
						// Not yet readable at read_committed: as if not found.
						sp.Offset, sp.Timestamp = -1, -1
					}
				}
				if err != nil {
					sp.ErrorCode, sp.Offset, sp.Timestamp = errorCode(err), -1, -1
				}
			}
			if r.version == 0 && sp.ErrorCode == 0 {
				if sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
					sp.OldStyleOffsets = []int64{sp.Offset}
				} else {
					sp.OldStyleOffsets = []int64{}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}
