package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// JoinGroup (key 11): joins a member to a group, or rejoins it for a
// rebalance. The answer waits (in the connection's writer) until the
// rebalance completes; the leader's carries every member's metadata.
//
// Versions: v1 rebalance timeout (v0 uses the session timeout); v2
// throttle; v4 a new member first gets MEMBER_ID_REQUIRED with its id; v5
// static membership (group instance id); v6 flexible; v7 protocol type in
// the response; v8 reason; v9 skip assignment, for a static leader that
// rejoined a stable group (older versions are told the old leader id
// instead, so that they do not assign).
func (s *Server) handleJoinGroup(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	rebalance := req.RebalanceTimeoutMillis
	if r.version == 0 {
		rebalance = req.SessionTimeoutMillis
	}
	breq := broker.JoinGroupRequest{
		Group:                req.Group,
		MemberID:             req.MemberID,
		InstanceID:           deref(req.InstanceID),
		ClientID:             r.clientID,
		ClientHost:           clientHost(r),
		SessionTimeout:       millis(req.SessionTimeoutMillis),
		RebalanceTimeout:     millis(rebalance),
		ProtocolType:         req.ProtocolType,
		RequireKnownMemberID: r.version >= 4,
		SkipAssignment:       r.version >= 9,
		Reason:               deref(req.Reason),
	}
	for _, p := range req.Protocols {
		breq.Protocols = append(breq.Protocols, broker.GroupProtocol{Name: p.Name, Metadata: p.Metadata})
	}
	ch := s.b.JoinGroup(breq)
	return reply{finish: func(ctx context.Context) kmsg.Response {
		res, err := awaitGroup(ctx, s.stopping, ch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			res = broker.JoinGroupResult{Err: err, MemberID: req.MemberID, Generation: -1}
		}
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = errorCode(res.Err)
		resp.Generation, resp.MemberID, resp.LeaderID = res.Generation, res.MemberID, res.LeaderID
		if res.Err != nil {
			return resp
		}
		resp.ProtocolType, resp.Protocol = &res.ProtocolType, &res.Protocol
		resp.SkipAssignment = res.SkipAssignment
		for _, m := range res.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, nilIfEmpty(m.InstanceID), m.Metadata
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}}, nil
}
