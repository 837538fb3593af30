package kafka

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn speaks the protocol at exactly the version asked for, one
// connection per group member (a waiting JoinGroup holds up the answers
// after it on its connection).
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	corr int32
	sent map[int32]kmsg.Request
}

func dialRaw(t *testing.T, ts *testServer) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, sent: map[int32]kmsg.Request{}}
}

// send writes req at version v without waiting for the answer.
func (c *rawConn) send(req kmsg.Request, v int16) {
	c.t.Helper()
	req.SetVersion(v)
	c.corr++
	frame := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(v))
	frame = binary.BigEndian.AppendUint32(frame, uint32(c.corr))
	frame = binary.BigEndian.AppendUint16(frame, 3)
	frame = append(frame, "raw"...)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	if _, err := c.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
		c.t.Fatal(err)
	}
	c.sent[c.corr] = req
}

// recv reads the next answer.
func (c *rawConn) recv() kmsg.Response {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		c.t.Fatalf("reading an answer: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		c.t.Fatal(err)
	}
	rd := kbin.Reader{Src: body}
	corr := rd.Int32()
	req := c.sent[corr]
	if req == nil {
		c.t.Fatalf("answer to unknown correlation id %d", corr)
	}
	delete(c.sent, corr)
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		c.t.Fatalf("decoding key %d v%d: %v", req.Key(), req.GetVersion(), err)
	}
	return resp
}

func (c *rawConn) do(req kmsg.Request, v int16) kmsg.Response {
	c.t.Helper()
	c.send(req, v)
	return c.recv()
}

func wantErr(t *testing.T, what string, code int16, want *kerr.Error) {
	t.Helper()
	if want == nil && code != 0 || want != nil && code != want.Code {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(code), want)
	}
}

func TestFindCoordinatorVersions(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.NodeID = 7 })
	c := dialRaw(t, ts)
	host, port := ts.srv.endpoint()
	for v := int16(0); v <= 6; v++ {
		for _, typ := range []int8{0, 1, 2} {
			if v == 0 && typ != 0 {
				continue
			}
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey, req.CoordinatorType, req.CoordinatorKeys = "g", typ, []string{"a", "b"}
			resp := c.do(req, v).(*kmsg.FindCoordinatorResponse)
			what := fmt.Sprintf("v%d type %d", v, typ)
			if v < 4 {
				if typ == 2 {
					wantErr(t, what, resp.ErrorCode, kerr.InvalidRequest)
					if resp.NodeID != -1 || v >= 1 && (resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, "coordinator type")) {
						t.Fatalf("%s: %+v", what, resp)
					}
					continue
				}
				wantErr(t, what, resp.ErrorCode, nil)
				if resp.NodeID != 7 || resp.Host != host || resp.Port != port {
					t.Fatalf("%s: %+v", what, resp)
				}
				continue
			}
			if len(resp.Coordinators) != 2 || resp.Coordinators[0].Key != "a" || resp.Coordinators[1].Key != "b" {
				t.Fatalf("%s: %+v", what, resp.Coordinators)
			}
			for _, co := range resp.Coordinators {
				if typ == 2 {
					wantErr(t, what, co.ErrorCode, kerr.InvalidRequest)
					if co.NodeID != -1 || co.ErrorMessage == nil {
						t.Fatalf("%s: %+v", what, co)
					}
					continue
				}
				wantErr(t, what, co.ErrorCode, nil)
				if co.NodeID != 7 || co.Host != host || co.Port != port {
					t.Fatalf("%s: %+v", what, co)
				}
			}
		}
	}
}

func joinReq(group, member string, instance *string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.InstanceID = group, member, instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte("subscription")
	req.Protocols = append(req.Protocols, p)
	return req
}

// TestGroupKeysAtEveryVersion runs one member through a whole group life
// at each version of JoinGroup, with the matching versions of the other
// keys.
func TestGroupKeysAtEveryVersion(t *testing.T) {
	ts := startServer(t, nil)
	for v := int16(0); v <= 9; v++ {
		c := dialRaw(t, ts)
		group := fmt.Sprintf("life-v%d", v)
		join := c.do(joinReq(group, "", nil), v).(*kmsg.JoinGroupResponse)
		if v >= 4 {
			wantErr(t, "first join", join.ErrorCode, kerr.MemberIDRequired)
			if !strings.HasPrefix(join.MemberID, "raw-") || join.Generation != -1 {
				t.Fatalf("v%d: member id %q generation %d", v, join.MemberID, join.Generation)
			}
			join = c.do(joinReq(group, join.MemberID, nil), v).(*kmsg.JoinGroupResponse)
		}
		wantErr(t, fmt.Sprintf("v%d join", v), join.ErrorCode, nil)
		id := join.MemberID
		if join.Generation != 1 || join.LeaderID != id || len(join.Members) != 1 || join.Members[0].MemberID != id ||
			string(join.Members[0].ProtocolMetadata) != "subscription" || join.Protocol == nil || *join.Protocol != "range" {
			t.Fatalf("v%d join: %+v", v, join)
		}
		if v >= 7 && (join.ProtocolType == nil || *join.ProtocolType != "consumer") {
			t.Fatalf("v%d: protocol type %v", v, join.ProtocolType)
		}

		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Group, sync.MemberID, sync.Generation = group, id, 1
		sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: id, MemberAssignment: []byte("mine")}}
		sv := min(v, 5)
		sr := c.do(sync, sv).(*kmsg.SyncGroupResponse)
		wantErr(t, fmt.Sprintf("v%d sync", sv), sr.ErrorCode, nil)
		if string(sr.MemberAssignment) != "mine" || sv >= 5 && (sr.Protocol == nil || *sr.Protocol != "range") {
			t.Fatalf("v%d sync: %+v", sv, sr)
		}

		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = group, id, 1
		wantErr(t, "heartbeat", c.do(hb, min(v, 4)).(*kmsg.HeartbeatResponse).ErrorCode, nil)
		hb.Generation = 0
		wantErr(t, "stale heartbeat", c.do(hb, min(v, 4)).(*kmsg.HeartbeatResponse).ErrorCode, kerr.IllegalGeneration)

		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups, dg.IncludeAuthorizedOperations = []string{group}, true
		dv := min(v, 5)
		d := c.do(dg, dv).(*kmsg.DescribeGroupsResponse).Groups[0]
		if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "mine" ||
			d.Members[0].ClientID != "raw" || d.Members[0].ClientHost != "/127.0.0.1" {
			t.Fatalf("v%d describe: %+v", dv, d)
		}
		if dv >= 3 && d.AuthorizedOperations != groupOperations || dv < 3 && d.AuthorizedOperations != -2147483648 {
			t.Fatalf("v%d describe: authorized operations %d", dv, d.AuthorizedOperations)
		}

		lv := min(v, 5)
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group = group
		if lv < 3 {
			leave.MemberID = id
		} else {
			leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: id}, {MemberID: "stranger"}}
		}
		lr := c.do(leave, lv).(*kmsg.LeaveGroupResponse)
		wantErr(t, fmt.Sprintf("v%d leave", lv), lr.ErrorCode, nil)
		if lv >= 3 {
			if len(lr.Members) != 2 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
				t.Fatalf("v%d leave: %+v", lv, lr.Members)
			}
		}
		d = c.do(dg, dv).(*kmsg.DescribeGroupsResponse).Groups[0]
		if d.State != "Empty" || len(d.Members) != 0 || d.ProtocolType != "consumer" {
			t.Fatalf("v%d after leave: %+v", v, d)
		}
		// Leaving again is UNKNOWN_MEMBER_ID (per member from v3).
		lr = c.do(leave, lv).(*kmsg.LeaveGroupResponse)
		if lv < 3 {
			wantErr(t, "second leave", lr.ErrorCode, kerr.UnknownMemberID)
		} else if lr.ErrorCode != 0 || lr.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("v%d second leave: %+v", lv, lr)
		}
	}
}

func TestJoinGroupErrors(t *testing.T) {
	ts := startServer(t, nil)
	c := dialRaw(t, ts)
	req := joinReq("", "", nil)
	wantErr(t, "empty group", c.do(req, 9).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidGroupID)
	req = joinReq("g", "", nil)
	req.SessionTimeoutMillis = 1000
	wantErr(t, "short session", c.do(req, 9).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidSessionTimeout)
	req = joinReq("g", "", nil)
	req.ProtocolType = ""
	wantErr(t, "no protocol type", c.do(req, 3).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
	req = joinReq("g", "nobody", nil)
	wantErr(t, "unknown member", c.do(req, 9).(*kmsg.JoinGroupResponse).ErrorCode, kerr.UnknownMemberID)

	// A member of another protocol type, or with no protocol in common,
	// cannot join.
	if r := c.do(joinReq("g", "", nil), 3).(*kmsg.JoinGroupResponse); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	other := dialRaw(t, ts)
	req = joinReq("g", "", nil)
	req.ProtocolType = "connect"
	wantErr(t, "other protocol type", other.do(req, 3).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
	req = joinReq("g", "", nil)
	req.Protocols[0].Name = "roundrobin"
	wantErr(t, "no common protocol", other.do(req, 3).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
}

// TestRebalanceOverTheWire drives two members through a rebalance by hand
// and checks commit validation at each step.
func TestRebalanceOverTheWire(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	a, b := dialRaw(t, ts), dialRaw(t, ts)
	const group = "wire"
	commit := func(c *rawConn, member string, gen int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = group, member, gen
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.do(req, 8).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	heartbeat := func(c *rawConn, member string, gen int32) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = group, member, gen
		return c.do(req, 4).(*kmsg.HeartbeatResponse).ErrorCode
	}
	sync := func(member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Group, req.MemberID, req.Generation = group, member, gen
		req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
		for m, as := range assign {
			req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(as)})
		}
		return req
	}

	ja := a.do(joinReq(group, "", nil), 3).(*kmsg.JoinGroupResponse)
	idA := ja.MemberID
	if r := a.do(sync(idA, 1, map[string]string{idA: "all"}), 5).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	wantErr(t, "commit in generation 1", commit(a, idA, 1), nil)
	wantErr(t, "anonymous commit to a live group", commit(a, "", -1), kerr.UnknownMemberID)
	wantErr(t, "commit by a stranger", commit(a, "stranger", 1), kerr.UnknownMemberID)
	wantErr(t, "commit at a wrong generation", commit(a, idA, 7), kerr.IllegalGeneration)

	// b joins: a learns of the rebalance from its heartbeat, may still
	// commit at its generation, and rejoins.
	b.send(joinReq(group, "", nil), 3)
	eventually(t, "the rebalance", 10*time.Second, func() bool { return heartbeat(a, idA, 1) == kerr.RebalanceInProgress.Code })
	wantErr(t, "commit while preparing", commit(a, idA, 1), nil)
	ja = a.do(joinReq(group, idA, nil), 3).(*kmsg.JoinGroupResponse)
	jb := b.recv().(*kmsg.JoinGroupResponse)
	idB := jb.MemberID
	if ja.ErrorCode != 0 || jb.ErrorCode != 0 || ja.Generation != 2 || jb.Generation != 2 || ja.LeaderID != idA || jb.LeaderID != idA {
		t.Fatalf("joins: %+v %+v", ja, jb)
	}
	if len(ja.Members) != 2 || len(jb.Members) != 0 {
		t.Fatalf("only the leader gets the members: %d %d", len(ja.Members), len(jb.Members))
	}
	wantErr(t, "commit while completing", commit(a, idA, 2), kerr.RebalanceInProgress)
	wantErr(t, "commit at the old generation", commit(a, idA, 1), kerr.IllegalGeneration)
	wantErr(t, "heartbeat while completing", heartbeat(b, idB, 2), nil)

	// The follower's sync waits for the leader's.
	b.send(sync(idB, 2, nil), 5)
	bad := sync(idA, 2, nil)
	bad.Protocol = kmsg.StringPtr("roundrobin")
	wantErr(t, "sync with another protocol", a.do(bad, 5).(*kmsg.SyncGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
	if r := a.do(sync(idA, 2, map[string]string{idA: "p0", idB: "p1"}), 5).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 || string(r.MemberAssignment) != "p0" {
		t.Fatalf("leader sync: %+v", r)
	}
	if r := b.recv().(*kmsg.SyncGroupResponse); r.ErrorCode != 0 || string(r.MemberAssignment) != "p1" {
		t.Fatalf("follower sync: %+v", r)
	}
	wantErr(t, "commit in generation 2", commit(b, idB, 2), nil)

	// Both leave in one request; the group is empty, and anyone may
	// commit again.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = group
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: idA}, {MemberID: idB}}
	if r := a.do(leave, 5).(*kmsg.LeaveGroupResponse); r.ErrorCode != 0 || r.Members[0].ErrorCode != 0 || r.Members[1].ErrorCode != 0 {
		t.Fatalf("leave: %+v", r)
	}
	wantErr(t, "member commit to an empty group", commit(a, idA, 2), kerr.UnknownMemberID)
	wantErr(t, "anonymous commit to an empty group", commit(a, "", -1), nil)
	wantErr(t, "anonymous commit to a new group", func() int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = "fresh"
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 3}}}}
		return a.do(req, 8).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}(), nil)
	wantErr(t, "member commit to a group that does not exist", func() int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = "never", 3, "m"
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 3}}}}
		return a.do(req, 8).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}(), kerr.IllegalGeneration)
}

func TestStaticMemberFencing(t *testing.T) {
	ts := startServer(t, nil)
	old, cur := dialRaw(t, ts), dialRaw(t, ts)
	const group = "fence"
	inst := kmsg.StringPtr("host-1")
	// A static member joins at once, without MEMBER_ID_REQUIRED.
	j := old.do(joinReq(group, "", inst), 9).(*kmsg.JoinGroupResponse)
	wantErr(t, "static join", j.ErrorCode, nil)
	oldID := j.MemberID
	if !strings.HasPrefix(oldID, "host-1-") {
		t.Fatalf("member id %q", oldID)
	}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.MemberID, s.InstanceID, s.Generation = group, oldID, inst, j.Generation
	s.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: oldID, MemberAssignment: []byte("a0")}}
	wantErr(t, "sync", old.do(s, 5).(*kmsg.SyncGroupResponse).ErrorCode, nil)

	// The same instance rejoins: a new member id, the same generation and
	// assignment. At v9 the rejoined leader learns it leads and must not
	// assign; before v9 it is told the old leader id.
	j2 := cur.do(joinReq(group, "", inst), 9).(*kmsg.JoinGroupResponse)
	wantErr(t, "static rejoin", j2.ErrorCode, nil)
	newID := j2.MemberID
	if newID == oldID || j2.Generation != j.Generation || j2.LeaderID != newID || !j2.SkipAssignment || len(j2.Members) != 1 {
		t.Fatalf("rejoin: %+v", j2)
	}
	s.MemberID = newID
	s.GroupAssignment = nil
	if r := cur.do(s, 5).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 || string(r.MemberAssignment) != "a0" {
		t.Fatalf("sync after rejoin: %+v", r)
	}
	j3 := old.do(joinReq(group, "", inst), 8).(*kmsg.JoinGroupResponse)
	if j3.ErrorCode != 0 || j3.LeaderID != newID || j3.SkipAssignment || len(j3.Members) != 0 {
		t.Fatalf("v8 rejoin: %+v", j3)
	}
	newID = j3.MemberID

	// The older incarnations are fenced.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.InstanceID, hb.Generation = group, oldID, inst, j.Generation
	wantErr(t, "fenced heartbeat", cur.do(hb, 4).(*kmsg.HeartbeatResponse).ErrorCode, kerr.FencedInstanceID)
	hb.MemberID = newID
	wantErr(t, "current heartbeat", cur.do(hb, 4).(*kmsg.HeartbeatResponse).ErrorCode, nil)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.MemberID, oc.InstanceID, oc.Generation = group, oldID, inst, j.Generation
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "x", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1}}}}
	wantErr(t, "fenced commit", cur.do(oc, 7).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.FencedInstanceID)

	// LeaveGroup by instance id alone, and with a member id that is not
	// the instance's.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = group
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: oldID, InstanceID: inst}, {InstanceID: inst}, {InstanceID: kmsg.StringPtr("host-2")}}
	r := cur.do(leave, 5).(*kmsg.LeaveGroupResponse)
	if r.ErrorCode != 0 || r.Members[0].ErrorCode != kerr.FencedInstanceID.Code || r.Members[1].ErrorCode != 0 || r.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", r)
	}
}

func TestOffsetCommitAndFetchVersions(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 3, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, ts)
	for v := int16(0); v <= 9; v++ {
		group := fmt.Sprintf("oc-v%d", v)
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group = group
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		for p := int32(0); p < 2; p++ {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, int64(10*v)+int64(p), 3, kmsg.StringPtr(fmt.Sprintf("m%d", p))
			rt.Partitions = append(rt.Partitions, rp)
		}
		oc.Topics = append(oc.Topics, rt)
		resp := c.do(oc, v).(*kmsg.OffsetCommitResponse)
		for _, p := range resp.Topics[0].Partitions {
			wantErr(t, fmt.Sprintf("v%d commit", v), p.ErrorCode, nil)
		}
		epoch := int32(-1)
		if v >= 6 {
			epoch = 3
		}
		fv := v
		check := func(what string, p int32, offset int64, le int32, meta *string, code int16) {
			t.Helper()
			wantOffset, wantMeta, wantEpoch := int64(10*v)+int64(p), fmt.Sprintf("m%d", p), epoch
			if p == 2 {
				wantOffset, wantMeta, wantEpoch = -1, "", -1
			}
			if fv < 5 {
				wantEpoch = -1
			}
			if code != 0 || offset != wantOffset || meta == nil || *meta != wantMeta || le != wantEpoch {
				t.Fatalf("v%d %s partition %d: offset %d epoch %d metadata %v %v", fv, what, p, offset, le, meta, kerr.ErrorForCode(code))
			}
		}
		if fv < 8 {
			of := kmsg.NewPtrOffsetFetchRequest()
			of.Group = group
			of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1, 2}}}
			r := c.do(of, fv).(*kmsg.OffsetFetchResponse)
			wantErr(t, "fetch", r.ErrorCode, nil)
			for i, p := range r.Topics[0].Partitions {
				check("fetch", int32(i), p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode)
			}
			if fv >= 2 {
				of.Topics = nil
				r = c.do(of, fv).(*kmsg.OffsetFetchResponse)
				if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 {
					t.Fatalf("v%d fetch all: %+v", fv, r.Topics)
				}
				for i, p := range r.Topics[0].Partitions {
					check("fetch all", int32(i), p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode)
				}
			}
			continue
		}
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Groups = []kmsg.OffsetFetchRequestGroup{
			{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0, 1, 2}}}},
			{Group: group},
			{Group: "nobody", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{2}}}},
		}
		r := c.do(of, fv).(*kmsg.OffsetFetchResponse)
		if len(r.Groups) != 3 {
			t.Fatalf("v%d: %+v", fv, r)
		}
		for i, p := range r.Groups[0].Topics[0].Partitions {
			check("fetch", int32(i), p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode)
		}
		if len(r.Groups[1].Topics) != 1 || len(r.Groups[1].Topics[0].Partitions) != 2 {
			t.Fatalf("v%d fetch all: %+v", fv, r.Groups[1])
		}
		for i, p := range r.Groups[1].Topics[0].Partitions {
			check("fetch all", int32(i), p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode)
		}
		p := r.Groups[2].Topics[0].Partitions[0]
		check("unknown group", 2, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode)
	}
}

func TestListDescribeDeleteVersions(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	c, member := dialRaw(t, ts), dialRaw(t, ts)
	if r := member.do(joinReq("busy", "", nil), 3).(*kmsg.JoinGroupResponse); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	commit := func(group string) {
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group = group
		oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1}}}}
		wantErr(t, "commit", c.do(oc, 2).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	}
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrListGroupsRequest()
		if v >= 4 {
			req.StatesFilter = []string{"completingrebalance"}
		}
		if v >= 5 {
			req.TypesFilter = []string{"Classic"}
		}
		r := c.do(req, v).(*kmsg.ListGroupsResponse)
		if r.ErrorCode != 0 || len(r.Groups) != 1 || r.Groups[0].Group != "busy" || r.Groups[0].ProtocolType != "consumer" {
			t.Fatalf("v%d list: %+v", v, r)
		}
		if v >= 4 && r.Groups[0].GroupState != "CompletingRebalance" || v >= 5 && r.Groups[0].GroupType != "classic" {
			t.Fatalf("v%d list: %+v", v, r.Groups[0])
		}
	}
	req := kmsg.NewPtrListGroupsRequest()
	req.TypesFilter = []string{"consumer"}
	if r := c.do(req, 5).(*kmsg.ListGroupsResponse); len(r.Groups) != 0 {
		t.Fatalf("consumer-type groups: %+v", r.Groups)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"busy", "nobody"}
	d := c.do(dg, 0).(*kmsg.DescribeGroupsResponse)
	if d.Groups[0].State != "CompletingRebalance" || d.Groups[0].Protocol != "" || len(d.Groups[0].Members) != 1 ||
		len(d.Groups[0].Members[0].ProtocolMetadata) != 0 || d.Groups[1].State != "Dead" || d.Groups[1].ErrorCode != 0 {
		t.Fatalf("describe: %+v", d.Groups)
	}

	for v := int16(0); v <= 2; v++ {
		g := fmt.Sprintf("del-v%d", v)
		commit(g)
		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{g, "busy", "nobody"}
		r := c.do(del, v).(*kmsg.DeleteGroupsResponse)
		if len(r.Groups) != 3 || r.Groups[0].ErrorCode != 0 || r.Groups[1].ErrorCode != kerr.NonEmptyGroup.Code || r.Groups[2].ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("v%d delete: %+v", v, r.Groups)
		}
	}

	commit("od")
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "od"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}, {Partition: 5}}}}
	r := c.do(od, 0).(*kmsg.OffsetDeleteResponse)
	if r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 || r.Topics[0].Partitions[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("offset delete: %+v", r)
	}
	// A live group whose members' metadata is no subscription: every
	// topic counts as consumed.
	od.Group = "busy"
	r = c.do(od, 0).(*kmsg.OffsetDeleteResponse)
	if r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("offset delete from a live group: %+v", r)
	}
	od.Group = ""
	if r := c.do(od, 0).(*kmsg.OffsetDeleteResponse); r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("offset delete without a group: %+v", r)
	}
}
