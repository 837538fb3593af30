package kafka

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups (key 16): every group this node coordinates, including empty
// ones that only hold committed offsets. Every group is of the "classic"
// type.
//
// Versions: v1 throttle; v3 flexible; v4 states filter and state; v5
// types filter and type. Filters match case-insensitively; an empty
// filter matches everything.
func (s *Server) handleListGroups(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	states := lowerSet(req.StatesFilter)
	types := lowerSet(req.TypesFilter)
	for _, l := range s.b.ListGroups() {
		if len(states) > 0 && !states[strings.ToLower(l.State)] || len(types) > 0 && !types["classic"] {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = l.Group, l.ProtocolType, l.State, "classic"
		resp.Groups = append(resp.Groups, g)
	}
	return now(resp), nil
}

func lowerSet(ss []string) map[string]bool {
	if len(ss) == 0 {
		return nil
	}
	out := make(map[string]bool, len(ss))
	for _, s := range ss {
		out[strings.ToLower(s)] = true
	}
	return out
}
