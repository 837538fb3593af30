package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// SyncGroup (key 14): the leader hands in every member's assignment and
// each member receives its own. A member's answer waits (in the
// connection's writer) until the leader's SyncGroup arrives; assignments
// are passed through unread.
//
// Versions: v1 throttle; v3 group instance id; v4 flexible; v5 protocol
// type and name, checked against the group's and echoed back.
func (s *Server) handleSyncGroup(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.SyncGroupRequest)
	breq := broker.SyncGroupRequest{
		Group:        req.Group,
		MemberID:     req.MemberID,
		InstanceID:   deref(req.InstanceID),
		Generation:   req.Generation,
		ProtocolType: deref(req.ProtocolType),
		Protocol:     deref(req.Protocol),
	}
	if len(req.GroupAssignment) > 0 {
		breq.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			breq.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	ch := s.b.SyncGroup(breq)
	return reply{finish: func(ctx context.Context) kmsg.Response {
		res, err := awaitGroup(ctx, s.stopping, ch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			res = broker.SyncGroupResult{Err: err}
		}
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = errorCode(res.Err)
		resp.MemberAssignment = []byte{}
		if res.Err == nil {
			resp.ProtocolType, resp.Protocol = &res.ProtocolType, &res.Protocol
			resp.MemberAssignment = res.Assignment
		}
		return resp
	}}, nil
}
