package kafka

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// OffsetFetch (key 9): a group's committed offsets, with metadata and
// leader epoch. A partition without a committed offset (or a group that
// does not exist) answers offset -1, leader epoch -1 and empty metadata,
// without an error. Null topics (v2+) ask for every committed offset of
// the group. Committed offsets are visible once their commit was
// acknowledged. With require_stable, a partition whose offset a
// transaction not yet complete commits (TxnOffsetCommit) answers
// UNSTABLE_OFFSET_COMMIT, which the client retries.
//
// Versions: v1 offsets kept by the broker (as v0 here); v2 null topics and
// a top-level error; v3 throttle; v5 leader epoch; v6 flexible; v7
// require stable; v8 several groups, each with its own error; v9 member id
// and epoch (for the new consumer protocol; not checked for classic
// groups).
func (s *Server) handleOffsetFetch(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.version >= 8 {
		for _, rg := range req.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			var want []requestedTopic
			if rg.Topics != nil {
				want = make([]requestedTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					want = append(want, requestedTopic{t.Topic, t.Partitions})
				}
			}
			for _, t := range s.fetchOffsets(rg.Group, want, rg.Topics == nil, req.RequireStable) {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.topic
				for _, p := range t.parts {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata = p.partition, p.offset, p.leaderEpoch, &p.metadata
					gp.ErrorCode = p.errorCode
					gt.Partitions = append(gt.Partitions, gp)
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return now(resp), nil
	}
	want := make([]requestedTopic, 0, len(req.Topics))
	for _, t := range req.Topics {
		want = append(want, requestedTopic{t.Topic, t.Partitions})
	}
	for _, t := range s.fetchOffsets(req.Group, want, r.version >= 2 && req.Topics == nil, r.version >= 7 && req.RequireStable) {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.topic
		for _, p := range t.parts {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.Metadata = p.partition, p.offset, &p.metadata
			rp.ErrorCode = p.errorCode
			if r.version >= 5 {
				rp.LeaderEpoch = p.leaderEpoch
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return now(resp), nil
}

type requestedTopic struct {
	topic string
	parts []int32
}

type fetchedTopic struct {
	topic string
	parts []fetchedOffset
}

type fetchedOffset struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    string
	errorCode   int16
}

// fetchOffsets answers the requested partitions of a group in request
// order, or, when all is set, every committed partition sorted by topic
// and partition. With stable, a partition a pending transaction commits
// is UNSTABLE_OFFSET_COMMIT.
func (s *Server) fetchOffsets(group string, want []requestedTopic, all, stable bool) []fetchedTopic {
	committed := s.b.CommittedOffsets(group)
	var pending map[broker.TopicPartition]bool
	if stable {
		pending = s.b.PendingTxnOffsets(group)
	}
	if all {
		tps := make([]broker.TopicPartition, 0, len(committed))
		for tp := range committed {
			tps = append(tps, tp)
		}
		sort.Slice(tps, func(i, j int) bool {
			if tps[i].Topic != tps[j].Topic {
				return tps[i].Topic < tps[j].Topic
			}
			return tps[i].Partition < tps[j].Partition
		})
		want = nil
		for _, tp := range tps {
			if len(want) == 0 || want[len(want)-1].topic != tp.Topic {
				want = append(want, requestedTopic{topic: tp.Topic})
			}
			want[len(want)-1].parts = append(want[len(want)-1].parts, tp.Partition)
		}
	}
	out := make([]fetchedTopic, 0, len(want))
	for _, t := range want {
		ft := fetchedTopic{topic: t.topic, parts: make([]fetchedOffset, 0, len(t.parts))}
		for _, p := range t.parts {
			fo := fetchedOffset{partition: p, offset: -1, leaderEpoch: -1}
			tp := broker.TopicPartition{Topic: t.topic, Partition: p}
			if o, ok := committed[tp]; ok {
				fo.offset, fo.leaderEpoch, fo.metadata = o.Offset, o.LeaderEpoch, o.Metadata
			}
			if pending[tp] {
				fo.errorCode = errorCode(broker.ErrUnstableOffsetCommit)
			}
			ft.parts = append(ft.parts, fo)
		}
		out = append(out, ft)
	}
	return out
}
