package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Endpoint types of DescribeCluster v1.
const (
	endpointBrokers     = 1
	endpointControllers = 2
)

// DescribeCluster (key 60): this node as the only broker and the
// controller, and the cluster id. The listener is a broker endpoint, so
// asking it for controller endpoints is UNSUPPORTED_ENDPOINT_TYPE, as a
// Kafka broker answers.
//
// Versions: v0 flexible; v1 endpoint type.
func (s *Server) handleDescribeCluster(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if r.version >= 1 && req.EndpointType != endpointBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "this listener serves broker endpoints (type 1) only"
		if req.EndpointType == endpointControllers {
			msg = "this listener is a broker endpoint; it cannot describe controller endpoints (type 2)"
		}
		resp.ErrorMessage = &msg
		return now(resp), nil
	}
	host, port := s.endpoint()
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = s.opts.NodeID, host, port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{br}
	resp.ClusterID = s.b.ClusterID()
	resp.ControllerID = s.opts.NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	return now(resp), nil
}
