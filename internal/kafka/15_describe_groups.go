package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups (key 15): each group's state, protocol type, chosen
// protocol and members. Member metadata and assignments, and the
// protocol, are shown only for a Stable group; a group that does not exist
// is described as Dead, without an error, as Kafka does before v6.
//
// Versions: v1 throttle; v3 authorized operations; v4 group instance ids;
// v5 flexible.
func (s *Server) handleDescribeGroups(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		d := s.b.DescribeGroup(name)
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group, g.State, g.ProtocolType, g.Protocol = d.Group, d.State, d.ProtocolType, d.Protocol
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = groupOperations
		}
		for _, m := range d.Members {
			gm := kmsg.NewDescribeGroupsResponseGroupMember()
			gm.MemberID, gm.InstanceID, gm.ClientID, gm.ClientHost = m.MemberID, nilIfEmpty(m.InstanceID), m.ClientID, m.ClientHost
			gm.ProtocolMetadata, gm.MemberAssignment = m.Metadata, m.Assignment
			g.Members = append(g.Members, gm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return now(resp), nil
}

// groupOperations is the authorized operations bit set of a group: READ 3,
// DELETE 6, DESCRIBE 8.
const groupOperations = 1<<3 | 1<<6 | 1<<8
