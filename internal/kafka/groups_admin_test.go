package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCommittedOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServerIn(t, dir, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	spreadRecords(t, ts, "events", 30)

	// An admin commit with metadata and leader epochs, and a consumer
	// group's own commit.
	want := kadm.Offsets{}
	want.Add(kadm.Offset{Topic: "events", Partition: 0, At: 3, LeaderEpoch: 0, Metadata: "zero"})
	want.Add(kadm.Offset{Topic: "events", Partition: 2, At: 7, LeaderEpoch: 0, Metadata: "two"})
	if resp, err := adm.CommitOffsets(ctx, "admin-group", want); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	c := ts.client(kgo.ConsumerGroup("app"), kgo.ConsumeTopics("events"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	consumed := 0
	for consumed < 30 {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		consumed += len(fs.Records())
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()

	ts.stop()
	ts = startServerIn(t, dir, nil)
	adm = ts.admin()

	got, err := adm.FetchOffsets(ctx, "admin-group")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int32{0, 2} {
		w, _ := want.Lookup("events", p)
		g, ok := got.Lookup("events", p)
		if !ok || g.Err != nil || g.At != w.At || g.Metadata != w.Metadata || g.LeaderEpoch != w.LeaderEpoch {
			t.Errorf("partition %d after restart: %+v, want %+v", p, g, w)
		}
	}
	if _, ok := got.Lookup("events", 1); ok {
		t.Errorf("partition 1 has a committed offset: %+v", got)
	}
	app, err := adm.FetchOffsets(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		if o, ok := app.Lookup("events", p); !ok || o.At != 10 {
			t.Errorf("app partition %d after restart: %+v", p, o)
		}
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed["app"]; !ok || g.State != "Empty" || g.ProtocolType != "consumer" {
		t.Errorf("app after restart: %+v", listed)
	}
	if g, ok := listed["admin-group"]; !ok || g.State != "Empty" || g.ProtocolType != "" {
		t.Errorf("admin-group after restart: %+v", listed)
	}

	// The group resumes where it committed.
	spreadRecords(t, ts, "events", 3)
	c = ts.client(kgo.ConsumerGroup("app"), kgo.ConsumeTopics("events"), kgo.FetchMaxWait(100*time.Millisecond))
	var resumed []*kgo.Record
	for len(resumed) < 3 {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		resumed = append(resumed, fs.Records()...)
	}
	for _, r := range resumed {
		if r.Offset != 10 {
			t.Errorf("resumed at %d/%d, want offset 10", r.Partition, r.Offset)
		}
	}
}

// spreadRecords writes n records spread evenly over a topic's partitions.
func spreadRecords(t *testing.T, ts *testServer, topic string, n int) {
	t.Helper()
	info, ok := ts.b.Topic(topic)
	if !ok {
		t.Fatalf("no topic %q", topic)
	}
	p := ts.client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Partition: int32(i) % info.Partitions, Value: []byte(fmt.Sprint(i))}
	}
	if err := p.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestGroupAdministration(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "consumed"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "other"); err != nil {
		t.Fatal(err)
	}
	spreadRecords(t, ts, "consumed", 4)

	// A live consumer group, and an offsets-only group.
	c := ts.client(kgo.ClientID("live-client"), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("consumed"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	for n := 0; n < 4; {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		n += len(fs.Records())
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "consumed", Partition: 0, At: 1, LeaderEpoch: -1, Metadata: "m0"})
	offs.Add(kadm.Offset{Topic: "other", Partition: 1, At: 5, LeaderEpoch: -1, Metadata: "m1"})
	if resp, err := adm.CommitOffsets(ctx, "offsets-only", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	// A commit by no member to a group with members is refused.
	if resp, err := adm.CommitOffsets(ctx, "live", offs); err != nil || !errors.Is(resp.Error(), kerr.UnknownMemberID) {
		t.Fatalf("anonymous commit to a live group: %v %v", err, resp.Error())
	}
	// Metadata over the limit, and a partition that does not exist.
	bad := kadm.Offsets{}
	bad.Add(kadm.Offset{Topic: "consumed", Partition: 0, At: 1, LeaderEpoch: -1, Metadata: string(make([]byte, 4097))})
	bad.Add(kadm.Offset{Topic: "consumed", Partition: 9, At: 1, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctx, "offsets-only", bad)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.Lookup("consumed", 0); !errors.Is(r.Err, kerr.OffsetMetadataTooLarge) {
		t.Errorf("large metadata: %v", r.Err)
	}
	if r, _ := resp.Lookup("consumed", 9); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown partition: %v", r.Err)
	}

	fetched, err := adm.FetchOffsets(ctx, "offsets-only")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("other", 1); !ok || o.At != 5 || o.Metadata != "m1" {
		t.Errorf("fetched %+v", fetched)
	}
	if o, _ := fetched.Lookup("consumed", 0); o.At != 1 || o.Metadata != "m0" {
		t.Errorf("fetched %+v: the failed commit changed it", o)
	}

	// DescribeGroups.
	eventually(t, "a stable group", 10*time.Second, func() bool {
		ds, err := adm.DescribeGroups(ctx, "live")
		return err == nil && ds["live"].State == "Stable"
	})
	ds, err := adm.DescribeGroups(ctx, "live", "offsets-only", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	live := ds["live"]
	if live.Err != nil || live.ProtocolType != "consumer" || live.Protocol != "cooperative-sticky" || len(live.Members) != 1 {
		t.Fatalf("live: %+v", live)
	}
	m := live.Members[0]
	if m.ClientID != "live-client" || m.ClientHost != "/127.0.0.1" {
		t.Errorf("member %+v", m)
	}
	if ca, ok := m.Assigned.AsConsumer(); !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != 2 {
		t.Errorf("assignment %+v", m.Assigned)
	}
	if ds["offsets-only"].State != "Empty" || ds["nobody"].State != "Dead" {
		t.Errorf("states: %q %q", ds["offsets-only"].State, ds["nobody"].State)
	}

	// ListGroups, filtered by state.
	listed, err := adm.ListGroups(ctx, "Empty")
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed["offsets-only"].State != "Empty" {
		t.Errorf("empty groups: %+v", listed)
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed["live"].ProtocolType != "consumer" {
		t.Errorf("all groups: %+v", listed)
	}

	// OffsetDelete: a live group keeps the offsets of the topics it
	// consumes.
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, err := adm.CommitOffsets(ctx, "live", offs); err == nil && resp.Error() == nil {
		t.Fatal("anonymous commit accepted")
	}
	del := kadm.TopicsSet{}
	del.Add("consumed", 0)
	dr, err := adm.DeleteOffsets(ctx, "live", del)
	if err != nil {
		t.Fatal(err)
	}
	if err := dr["consumed"][0]; !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Errorf("deleting a consumed topic's offset: %v", err)
	}
	del = kadm.TopicsSet{}
	del.Add("other", 1)
	del.Add("consumed", 1)
	if dr, err := adm.DeleteOffsets(ctx, "offsets-only", del); err != nil || dr.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, dr.Error())
	}
	fetched, err = adm.FetchOffsets(ctx, "offsets-only")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fetched.Lookup("other", 1); ok || len(fetched) != 1 {
		t.Errorf("after OffsetDelete: %+v", fetched)
	}
	if _, err := adm.DeleteOffsets(ctx, "nobody", del); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("offsets of an unknown group: %v", err)
	}

	// DeleteGroups: not while it has members.
	dg, err := adm.DeleteGroups(ctx, "live", "nobody", "offsets-only")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dg["live"].Err, kerr.NonEmptyGroup) || !errors.Is(dg["nobody"].Err, kerr.GroupIDNotFound) || dg["offsets-only"].Err != nil {
		t.Fatalf("delete groups: %+v", dg)
	}
	c.Close()
	eventually(t, "the group to empty", 10*time.Second, func() bool {
		ds, err := adm.DescribeGroups(ctx, "live")
		return err == nil && ds["live"].State == "Empty"
	})
	if dg, err := adm.DeleteGroups(ctx, "live"); err != nil || dg.Error() != nil {
		t.Fatalf("delete live: %v %v", err, dg.Error())
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 0 {
		t.Errorf("groups left: %+v", listed)
	}
	for _, g := range []string{"live", "offsets-only"} {
		fetched, err := adm.FetchOffsets(ctx, g)
		if err != nil || len(fetched) != 0 {
			t.Errorf("offsets of deleted group %q: %+v %v", g, fetched, err)
		}
	}

	// Deleting a topic forgets its committed offsets.
	if resp, err := adm.CommitOffsets(ctx, "g", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	if _, err := adm.DeleteTopics(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	fetched, err = adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fetched.Lookup("other", 1); ok || len(fetched) != 1 {
		t.Errorf("offsets after deleting the topic: %+v", fetched)
	}
}

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "static"); err != nil {
		t.Fatal(err)
	}
	// b's rebalance callbacks, and what it was last assigned.
	var mu sync.Mutex
	var callbacks int
	var ownedB []int32
	consumer := func(instance string, extra ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(ts.addr), kgo.ClientID(instance), kgo.ConsumerGroup("static-group"), kgo.ConsumeTopics("static"),
			kgo.InstanceID(instance), kgo.Balancers(kgo.RangeBalancer()), kgo.SessionTimeout(10 * time.Second),
			kgo.HeartbeatInterval(300 * time.Millisecond), kgo.FetchMaxWait(100 * time.Millisecond),
		}, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if fs := cl.PollFetches(context.Background()); fs.IsClientClosed() {
					return
				}
			}
		}()
		return cl
	}
	a := consumer("a")
	b := consumer("b",
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			callbacks++
			ownedB = append([]int32(nil), m["static"]...)
			mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) {
			mu.Lock()
			callbacks++
			ownedB = nil
			mu.Unlock()
		}),
	)
	defer b.Close()

	type view struct {
		generation int32
		members    map[string]string // instance -> member id
		assigned   map[string][]int32
	}
	describe := func() (view, bool) {
		ds, err := adm.DescribeGroups(ctx, "static-group")
		if err != nil || ds["static-group"].State != "Stable" {
			return view{}, false
		}
		v := view{members: map[string]string{}, assigned: map[string][]int32{}}
		for _, m := range ds["static-group"].Members {
			if m.InstanceID == nil {
				return view{}, false
			}
			v.members[*m.InstanceID] = m.MemberID
			ca, _ := m.Assigned.AsConsumer()
			for _, tp := range ca.Topics {
				v.assigned[*m.InstanceID] = append(v.assigned[*m.InstanceID], tp.Partitions...)
			}
		}
		return v, len(v.members) == 2 && len(v.assigned["a"]) == 2 && len(v.assigned["b"]) == 2
	}
	var before view
	var beforeCallbacks int
	eventually(t, "two stable static members", 20*time.Second, func() bool {
		var ok bool
		if before, ok = describe(); !ok {
			return false
		}
		// b has run its callbacks for the generation both clients are in.
		_, ga := a.GroupMetadata()
		_, gb := b.GroupMetadata()
		mu.Lock()
		defer mu.Unlock()
		beforeCallbacks = callbacks
		return ga == gb && fmt.Sprint(sorted(ownedB)) == fmt.Sprint(sorted(before.assigned["b"]))
	})
	_, before.generation = b.GroupMetadata()

	// A static member's Close does not leave the group; its restart
	// takes its place under a new member id, without a rebalance.
	a.Close()
	a = consumer("a")
	defer a.Close()
	var after view
	eventually(t, "the restarted member", 20*time.Second, func() bool {
		var ok bool
		after, ok = describe()
		_, after.generation = a.GroupMetadata()
		return ok && after.members["a"] != before.members["a"] && after.generation > 0
	})
	if _, bg := b.GroupMetadata(); after.generation != before.generation || bg != before.generation {
		t.Errorf("generation moved from %d to %d (b sees %d): the rejoin rebalanced", before.generation, after.generation, bg)
	}
	if fmt.Sprint(after.assigned) != fmt.Sprint(before.assigned) {
		t.Errorf("assignment changed from %v to %v", before.assigned, after.assigned)
	}
	if after.members["b"] != before.members["b"] {
		t.Errorf("b changed member id")
	}
	mu.Lock()
	defer mu.Unlock()
	if callbacks != beforeCallbacks {
		t.Errorf("b saw %d rebalance callbacks during a's restart", callbacks-beforeCallbacks)
	}
}

func sorted(ps []int32) []int32 {
	ps = append([]int32(nil), ps...)
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}
