package kafka

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// DescribeConfigs (key 32): a topic's effective configs, or the broker's
// settings. A topic config the topic sets is DYNAMIC_TOPIC_CONFIG; one it
// inherits is STATIC_BROKER_CONFIG when the broker's log settings changed
// it and DEFAULT_CONFIG when they did not, with the broker setting it
// comes from (log.retention.ms, log.segment.bytes, ...) as its synonym. A
// BROKER resource is named by this node's id, or empty for the cluster
// default, which on one node is the same thing; its settings are
// read-only, fixed when the broker starts. A null name list means every
// config; names this broker does not know are left out.
//
// Versions: v1 synonyms and sources (v0 has is_default instead); v2
// throttle; v3 config types and documentation; v4 flexible.
func (s *Server) handleDescribeConfigs(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, res := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		fail := func(code int16, msg string) {
			rr.ErrorCode, rr.ErrorMessage = code, &msg
		}
		switch res.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			info, ok := s.b.Topic(res.ResourceName)
			switch {
			case ok:
				appendConfigs(&rr, r.version, req, res.ConfigNames, s.topicConfigs(info.Configs))
			case broker.ValidateTopicName(res.ResourceName) != nil:
				fail(kerr.InvalidTopicException.Code, broker.ValidateTopicName(res.ResourceName).Error())
			default:
				fail(kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %q does not exist", res.ResourceName))
			}
		case kmsg.ConfigResourceTypeBroker:
			if msg := s.checkBrokerResource(res.ResourceName); msg != "" {
				fail(kerr.InvalidRequest.Code, msg)
				break
			}
			appendConfigs(&rr, r.version, req, res.ConfigNames, s.brokerConfigs())
		default:
			fail(kerr.InvalidRequest.Code, unsupportedResource(res.ResourceType))
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return now(resp), nil
}

// checkBrokerResource accepts a BROKER resource name that is this node's id
// or empty (the cluster default); otherwise it says what is wrong.
func (s *Server) checkBrokerResource(name string) string {
	if name == "" {
		return ""
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return fmt.Sprintf("broker id must be an integer, not %q", name)
	}
	if int32(id) != s.opts.NodeID {
		return fmt.Sprintf("unexpected broker id %d: this is broker %d (or use an empty name for the cluster default)", id, s.opts.NodeID)
	}
	return ""
}

func unsupportedResource(t kmsg.ConfigResourceType) string {
	return fmt.Sprintf("config resource type %s (%d) is not supported; only TOPIC and BROKER are", t, int8(t))
}
