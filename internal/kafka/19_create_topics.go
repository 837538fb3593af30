package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// CreateTopics (key 19): creates topics with a partition count (or the
// server default for -1), replication factor 1 (or -1: this is one node)
// and configs. A manual assignment must put every replica on this node.
// validate_only checks without creating.
//
// Versions: v1 validate only and error messages; v2 throttle; v4 default
// partitions and replication factor (-1); v5 flexible and the created
// topic's configs; v7 topic id.
func (s *Server) handleCreateTopics(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			if r.version >= 1 {
				st.ErrorMessage = &msg
			}
		}
		partitions := rt.NumPartitions
		if partitions == -1 {
			partitions = s.opts.DefaultPartitions
		}
		configs := map[string]string{}
		for _, c := range rt.Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
		}
		switch {
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, fmt.Sprintf("topic %q appears more than once in the request", rt.Topic))
		case len(rt.ReplicaAssignment) > 0 && (rt.NumPartitions != -1 || rt.ReplicationFactor != -1):
			fail(kerr.InvalidRequest.Code, "a manual replica assignment requires partitions and replication factor of -1")
		case len(rt.ReplicaAssignment) == 0 && rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1:
			fail(kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d: this cluster has 1 broker", rt.ReplicationFactor))
		default:
			if len(rt.ReplicaAssignment) > 0 {
				partitions = int32(len(rt.ReplicaAssignment))
				if msg := s.checkAssignment(rt.ReplicaAssignment); msg != "" {
					fail(kerr.InvalidReplicaAssignment.Code, msg)
					break
				}
			}
			var err error
			if req.ValidateOnly {
				err = s.b.ValidateTopic(rt.Topic, partitions, configs)
			} else {
				var created broker.TopicInfo
				created, err = s.b.CreateTopic(ctx, rt.Topic, partitions, configs)
				st.TopicID = created.ID
			}
			if err != nil {
				fail(errorCode(err), err.Error())
				break
			}
			st.NumPartitions, st.ReplicationFactor = partitions, 1
			if r.version >= 5 {
				for _, e := range s.b.DescribeConfigs(configs) {
					c := kmsg.NewCreateTopicsResponseTopicConfig()
					c.Name, c.IsSensitive = e.Name, false
					v := e.Value
					c.Value = &v
					c.Source = configSource(e.IsDefault)
					st.Configs = append(st.Configs, c)
				}
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}

// checkAssignment accepts a manual assignment only if every partition has
// exactly this node as its replica.
func (s *Server) checkAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) string {
	for i, a := range as {
		if a.Partition != int32(i) {
			return fmt.Sprintf("replica assignment partitions must be 0..%d in order", len(as)-1)
		}
		if len(a.Replicas) != 1 || a.Replicas[0] != s.opts.NodeID {
			return fmt.Sprintf("partition %d: replicas %v; this cluster has only broker %d", a.Partition, a.Replicas, s.opts.NodeID)
		}
	}
	return ""
}

// configSource is DescribeConfigs' source code for an effective value:
// DEFAULT_CONFIG (5) or DYNAMIC_TOPIC_CONFIG (1).
func configSource(isDefault bool) int8 {
	if isDefault {
		return 5
	}
	return 1
}
