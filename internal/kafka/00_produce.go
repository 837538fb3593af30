package kafka

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// Produce (key 0): appends each partition's batches as sent (any
// compression, stored as is). acks=0 sends no response (and closes the
// connection if a partition failed, as Kafka does, so the client notices);
// acks=1 answers once the batches are written; acks=-1 answers once the
// group-commit fsync covering them is done, or at the request timeout.
//
// Under a resource alarm the request is refused or throttled; see
// alarms.go.
//
// Versions: v0-v2 carry the legacy message formats (magic 0 and 1), which
// are refused with UNSUPPORTED_FOR_MESSAGE_FORMAT; v3 transactional id; v5
// log start offset; v8 record errors and error message; v9 flexible.
func (s *Server) handleProduce(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	type waiter struct {
		t, p    int
		part    *broker.Partition
		pending broker.Pending
	}
	var waits []waiter
	failed := false
	refuse, throttle := s.produceAlarms()
	if throttle > 0 {
		resp.ThrottleMillis = int32(throttle / time.Millisecond)
		r.conn.throttle(throttle)
	}
	for ti, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			var part *broker.Partition
			err := refuse
			if err == nil {
				part, err = s.producePartition(ctx, rt.Topic, rp.Partition)
			}
			var res broker.AppendResult
			var pending broker.Pending
			if err == nil {
				if len(rp.Records) == 0 {
					err = errors.Join(broker.ErrCorruptBatch, errors.New("no record batch in the request"))
				} else {
					res, pending, err = part.Produce(rp.Records)
				}
			}
			if err != nil {
				failed = true
				setProduceError(&sp, r.version, err)
				if errors.Is(err, broker.ErrBatchTooLarge) {
					s.refusals.Warn("message size", "produce refused: record batch larger than the topic's max.message.bytes",
						"topic", rt.Topic, "partition", rp.Partition, "err", err)
				}
			} else {
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
				if req.Acks == -1 {
					waits = append(waits, waiter{t: ti, p: pi, part: part, pending: pending})
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		if failed {
			return reply{}, errors.New("acks=0 produce failed; closing the connection so the client notices")
		}
		return reply{}, nil
	}
	if len(waits) == 0 {
		return now(resp), nil
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	return reply{finish: func(ctx context.Context) kmsg.Response {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		for _, w := range waits {
			if err := w.pending.Wait(ctx); err != nil {
				sp := &resp.Topics[w.t].Partitions[w.p]
				sp.BaseOffset, sp.LogAppendTime = -1, -1
				setProduceError(sp, r.version, err)
				if errors.Is(err, broker.ErrStorage) {
					w.part.Forget()
				}
			}
		}
		return resp
	}}, nil
}

func setProduceError(sp *kmsg.ProduceResponseTopicPartition, version int16, err error) {
	sp.ErrorCode = errorCode(err)
	if version >= 8 {
		sp.ErrorMessage = errorMessage(err)
	}
}

// producePartition finds the partition, creating the topic if the server
// auto-creates topics.
func (s *Server) producePartition(ctx context.Context, topic string, index int32) (*broker.Partition, error) {
	p, err := s.b.Partition(topic, index)
	if errors.Is(err, broker.ErrUnknownTopic) && s.opts.AutoCreateTopics {
		if _, cerr := s.autoCreate(ctx, topic); cerr != nil {
			return nil, cerr
		}
		p, err = s.b.Partition(topic, index)
	}
	return p, err
}
