package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions (key 37): grows topics to a new partition count; new
// partitions start empty. A count that is not larger than the current one
// is INVALID_PARTITIONS. A manual assignment must name one replica list
// per new partition, each holding exactly this node (the cluster has one
// broker and topics one replica); otherwise INVALID_REPLICA_ASSIGNMENT. A
// topic named twice is INVALID_REQUEST. validate_only checks without
// creating.
//
// Versions: v1 same as v0; v2 flexible; v3 same as v2.
func (s *Server) handleCreatePartitions(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, t := range req.Topics {
		seen[t.Topic]++
	}
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		code, msg := s.createPartitions(ctx, t, req.ValidateOnly, seen[t.Topic] > 1)
		if code != 0 {
			rt.ErrorCode, rt.ErrorMessage = code, &msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return now(resp), nil
}

func (s *Server) createPartitions(ctx context.Context, t kmsg.CreatePartitionsRequestTopic, validateOnly, dup bool) (int16, string) {
	if dup {
		return kerr.InvalidRequest.Code, fmt.Sprintf("topic %q appears more than once in the request", t.Topic)
	}
	info, ok := s.b.Topic(t.Topic)
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %q does not exist", t.Topic)
	}
	switch {
	case t.Count == info.Partitions:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("topic %q already has %d partitions", t.Topic, info.Partitions)
	case t.Count < info.Partitions:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("topic %q has %d partitions, more than the requested %d; partitions cannot be removed",
			t.Topic, info.Partitions, t.Count)
	}
	if t.Assignment != nil {
		if added := t.Count - info.Partitions; int64(len(t.Assignment)) != int64(added) {
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("%d partitions would be added but %d assignments were given", added, len(t.Assignment))
		}
		for i, a := range t.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != s.opts.NodeID {
				return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("new partition %d: replicas %v; this cluster has only broker %d and topics have one replica",
					info.Partitions+int32(i), a.Replicas, s.opts.NodeID)
			}
		}
	}
	var err error
	if validateOnly {
		err = s.b.ValidateCreatePartitions(t.Topic, t.Count)
	} else {
		err = s.b.CreatePartitions(ctx, t.Topic, t.Count)
	}
	if err != nil {
		return errorCode(err), err.Error()
	}
	return 0, ""
}
