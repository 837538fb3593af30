package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups (key 42): deletes groups without members, and their
// committed offsets; a group with members is NON_EMPTY_GROUP, an unknown
// one GROUP_ID_NOT_FOUND. The answer waits for the deletion's fsync.
//
// Versions: v1 throttle semantics; v2 flexible.
func (s *Server) handleDeleteGroups(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	errs, persisted := s.b.DeleteGroups(req.Groups)
	return reply{finish: func(ctx context.Context) kmsg.Response {
		werr := persisted.Wait(ctx)
		if werr != nil && ctx.Err() != nil {
			return nil
		}
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for i, name := range req.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group = name
			err := errs[i]
			if err == nil {
				err = werr
			}
			g.ErrorCode = errorCode(err)
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}}, nil
}
