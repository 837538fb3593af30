package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// Metadata (key 3): this broker as the only node, leader of every partition
// with leader epoch 0, and the requested topics (all of them for a null
// list, or an empty one before v1). Unknown topics are created when the
// server allows it and the client asks for it (always before v4).
//
// Versions: v1 controller and racks; v2 cluster id; v3 throttle; v4
// allow_auto_topic_creation; v5 offline replicas; v7 leader epochs; v8-v10
// authorized operations; v9 flexible; v10 topic ids; v12 topics by id.
func (s *Server) handleMetadata(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := s.endpoint()
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = s.opts.NodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{br}
	cid := s.b.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = s.opts.NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOperations
	}

	var names []string
	all := req.Topics == nil || (r.version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range s.b.Topics() {
			names = append(names, t.Name)
		}
	}
	autoCreate := s.opts.AutoCreateTopics && (r.version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			// v12+: by topic id.
			name, ok := s.b.TopicByID(rt.TopicID)
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			names = append(names, name)
			continue
		}
		names = append(names, *rt.Topic)
	}
	for _, name := range names {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = &name
		if req.IncludeTopicAuthorizedOperations {
			mt.AuthorizedOperations = topicOperations
		}
		info, ok := s.b.Topic(name)
		if !ok && autoCreate {
			var err error
			info, err = s.autoCreate(ctx, name)
			ok = err == nil
			if err != nil {
				mt.ErrorCode = errorCode(err)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		if !ok {
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if broker.ValidateTopicName(name) != nil {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		mt.TopicID = info.ID
		for i := int32(0); i < info.Partitions; i++ {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition = i
			mp.Leader = s.opts.NodeID
			mp.LeaderEpoch = 0
			mp.Replicas = []int32{s.opts.NodeID}
			mp.ISR = []int32{s.opts.NodeID}
			mt.Partitions = append(mt.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return now(resp), nil
}

// autoCreate creates a topic with the server's default partition count; a
// concurrent creation of the same topic counts as success.
func (s *Server) autoCreate(ctx context.Context, name string) (broker.TopicInfo, error) {
	info, err := s.b.CreateTopic(ctx, name, s.opts.DefaultPartitions, nil)
	if errors.Is(err, broker.ErrTopicExists) {
		if info, ok := s.b.Topic(name); ok {
			return info, nil
		}
	}
	if err == nil {
		s.logger.Info("auto-created topic", "topic", name, "partitions", s.opts.DefaultPartitions)
	}
	return info, err
}

// Authorized operations bit sets (bit n is ACL operation n). Without
// authorization configured every operation is allowed.
const (
	// READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
	// DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
	topicOperations = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	// CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10,
	// ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
	clusterOperations = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
)
