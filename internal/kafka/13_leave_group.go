package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// LeaveGroup (key 13): removes members from a group, which rebalances the
// rest. v0-v2 name one member and answer with its error; v3+ name a batch,
// by member id or (for static members) by group instance id, and answer
// per member, with a top-level error only for the group itself.
//
// Versions: v1 throttle; v3 batch of members; v4 flexible; v5 reason.
func (s *Server) handleLeaveGroup(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	var members []broker.LeavingMember
	if r.version < 3 {
		members = []broker.LeavingMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			members = append(members, broker.LeavingMember{MemberID: m.MemberID, InstanceID: deref(m.InstanceID), Reason: deref(m.Reason)})
		}
	}
	errs, err := s.b.LeaveGroup(req.Group, members)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return now(resp), nil
	}
	if r.version < 3 {
		resp.ErrorCode = errorCode(errs[0])
		return now(resp), nil
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, m.InstanceID, errorCode(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	return now(resp), nil
}
