package grpcapi

import (
	"cmp"
	"context"
	"slices"

	"connectrpc.com/connect"

	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// groupDead is the state of a group the coordinator does not know.
const groupDead = "Dead"

func (a *admin) ListGroups(ctx context.Context, req *connect.Request[wharfv1.ListGroupsRequest]) (*connect.Response[wharfv1.ListGroupsResponse], error) {
	gs := a.b.ListGroups()
	res := &wharfv1.ListGroupsResponse{Groups: make([]*wharfv1.GroupSummary, len(gs))}
	for i, g := range gs {
		res.Groups[i] = &wharfv1.GroupSummary{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State}
	}
	return connect.NewResponse(res), nil
}

// DescribeGroup describes a group's members and, for each partition it has
// committed an offset on, how far behind the high watermark it is. A group
// that has neither members nor offsets is NOT_FOUND.
func (a *admin) DescribeGroup(ctx context.Context, req *connect.Request[wharfv1.DescribeGroupRequest]) (*connect.Response[wharfv1.DescribeGroupResponse], error) {
	name := req.Msg.GetGroup()
	if name == "" {
		return nil, invalidf("no group named")
	}
	d := a.b.DescribeGroup(name)
	committed := a.b.CommittedOffsets(name)
	if d.State == groupDead && len(committed) == 0 {
		return nil, toConnect(service.Errorf(service.CodeNotFound, "no group '%s'", name))
	}
	res := &wharfv1.DescribeGroupResponse{
		Group:    &wharfv1.GroupSummary{Group: d.Group, ProtocolType: d.ProtocolType, State: d.State},
		Protocol: d.Protocol,
	}
	for _, m := range d.Members {
		res.Members = append(res.Members, &wharfv1.GroupMember{
			MemberId: m.MemberID, InstanceId: m.InstanceID, ClientId: m.ClientID, ClientHost: m.ClientHost,
		})
	}
	for tp, co := range committed {
		if co.Offset < 0 {
			continue
		}
		_, hw, err := a.svc.Offsets(tp.Topic, tp.Partition)
		if err != nil {
			continue // the partition is gone
		}
		res.Offsets = append(res.Offsets, &wharfv1.GroupOffset{
			Topic: tp.Topic, Partition: tp.Partition, CommittedOffset: co.Offset, Metadata: co.Metadata,
			HighWatermark: hw, Lag: max(0, hw-co.Offset),
		})
	}
	slices.SortFunc(res.Offsets, func(x, y *wharfv1.GroupOffset) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return connect.NewResponse(res), nil
}
