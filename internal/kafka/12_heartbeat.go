package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat (key 12): keeps a member's session alive. REBALANCE_IN_PROGRESS
// tells it to rejoin; ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and
// FENCED_INSTANCE_ID that it is no longer the member it thinks it is.
//
// Versions: v1 throttle; v3 group instance id; v4 flexible.
func (s *Server) handleHeartbeat(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = errorCode(s.b.Heartbeat(req.Group, req.MemberID, deref(req.InstanceID), req.Generation))
	return now(resp), nil
}
