package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator (key 10): this node coordinates every group (key type 0)
// and every transactional id (key type 1). Any other key type is
// INVALID_REQUEST, with no node.
//
// Versions: v1 key type, throttle and error message; v3 flexible; v4 a
// batch of keys, answered one coordinator each (v5 and v6 add error codes
// and share groups that this broker does not have).
func (s *Server) handleFindCoordinator(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := s.endpoint()
	var invalid *string
	if req.CoordinatorType != 0 && req.CoordinatorType != 1 {
		msg := fmt.Sprintf("Unknown coordinator type received: %d", req.CoordinatorType)
		invalid = &msg
	}
	if r.version >= 4 {
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			if invalid != nil {
				c.ErrorCode, c.ErrorMessage = kerr.InvalidRequest.Code, invalid
				c.NodeID, c.Port = -1, -1
			} else {
				c.NodeID, c.Host, c.Port = s.opts.NodeID, host, port
			}
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return now(resp), nil
	}
	if invalid != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, invalid
		resp.NodeID, resp.Port = -1, -1
		return now(resp), nil
	}
	resp.NodeID, resp.Host, resp.Port = s.opts.NodeID, host, port
	return now(resp), nil
}
