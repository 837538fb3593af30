package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// deleteToHighWatermark is the DeleteRecords offset meaning "everything
// readable now".
const deleteToHighWatermark = -1

// DeleteRecords (key 21): moves each partition's log start offset forward
// to the offset given (-1: the high watermark), so that the records before
// it can no longer be read; whole segments below it are deleted. The
// answer is the partition's low watermark, the new log start offset. An
// offset below the current start changes nothing; past the high watermark,
// or negative other than -1, it is OFFSET_OUT_OF_RANGE.
//
// Versions: v1 same as v0; v2 flexible.
func (s *Server) handleDeleteRecords(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark = p.Partition, -1
			low, err := s.deleteRecords(t.Topic, p.Partition, p.Offset)
			if err != nil {
				rp.ErrorCode = errorCode(err)
				s.logger.Debug("delete records", "topic", t.Topic, "partition", p.Partition, "offset", p.Offset, "err", err)
			} else {
				rp.LowWatermark = low
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return now(resp), nil
}

func (s *Server) deleteRecords(topic string, partition int32, offset int64) (int64, error) {
	part, err := s.b.Partition(topic, partition)
	if err != nil {
		return -1, err
	}
	if offset == deleteToHighWatermark {
		_, offset, _ = part.Offsets()
	}
	if offset < 0 {
		return -1, fmt.Errorf("%w: offset %d", broker.ErrOffsetOutOfRange, offset)
	}
	return part.DeleteRecords(offset)
}
