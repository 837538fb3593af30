package broker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testCoordinator is a coordinator without its ticker: tests move the
// fake clock and call tick.
type testCoordinator struct {
	*groupCoordinator
	t   *testing.T
	clk *fakeClock
}

func newTestCoordinator(t *testing.T, opts GroupOptions) *testCoordinator {
	t.Helper()
	clk := newFakeClock()
	store, err := openOffsetStore(t.TempDir(), storage.Options{Now: clk.now}, defaultOffsetStoreConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := newGroupCoordinator(opts, clk.now, slog.New(slog.DiscardHandler), store, func(tp TopicPartition) bool { return tp.Topic != "missing" })
	t.Cleanup(func() {
		if err := c.close(); err != nil {
			t.Error(err)
		}
	})
	return &testCoordinator{groupCoordinator: c, t: t, clk: clk}
}

func (tc *testCoordinator) advance(d time.Duration) {
	tc.clk.advance(d)
	tc.mu.Lock()
	tc.tickAt(tc.clk.now())
	tc.mu.Unlock()
}

// settle waits until every offsets-store write made so far is applied.
func (s *offsetStore) settle() {
	s.appendMu.Lock()
	tail := s.tail
	s.appendMu.Unlock()
	<-tail
}

func (tc *testCoordinator) state(group string) string { return tc.describe(group).State }

type joinOpt func(*JoinGroupRequest)

func withSession(d time.Duration) joinOpt { return func(r *JoinGroupRequest) { r.SessionTimeout = d } }
func withRebalance(d time.Duration) joinOpt {
	return func(r *JoinGroupRequest) { r.RebalanceTimeout = d }
}
func withInstance(id string) joinOpt { return func(r *JoinGroupRequest) { r.InstanceID = id } }
func withProtocols(names ...string) joinOpt {
	return func(r *JoinGroupRequest) {
		r.Protocols = nil
		for _, n := range names {
			r.Protocols = append(r.Protocols, GroupProtocol{Name: n, Metadata: []byte(n)})
		}
	}
}

func (tc *testCoordinator) join(group, member string, opts ...joinOpt) <-chan JoinGroupResult {
	req := JoinGroupRequest{
		Group: group, MemberID: member, ClientID: "client", ClientHost: "/127.0.0.1",
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second,
		ProtocolType: "consumer", Protocols: []GroupProtocol{{Name: "range", Metadata: []byte("m")}},
	}
	for _, o := range opts {
		o(&req)
	}
	return tc.groupCoordinator.join(req)
}

// answered returns a wait's answer, which must be there already: the
// coordinator answers synchronously with the call that completes a wait.
func answered[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	default:
		t.Fatal("no answer yet")
		panic("unreachable")
	}
}

func waiting[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("answered early: %+v", v)
	default:
	}
}

func mustJoin(t *testing.T, ch <-chan JoinGroupResult) JoinGroupResult {
	t.Helper()
	res := answered(t, ch)
	if res.Err != nil {
		t.Fatalf("join: %v", res.Err)
	}
	return res
}

func (tc *testCoordinator) syncAs(group, member string, gen int32, assign map[string][]byte) <-chan SyncGroupResult {
	return tc.sync(SyncGroupRequest{Group: group, MemberID: member, Generation: gen, Assignments: assign})
}

func TestGroupJoinSyncHeartbeatAndSessionExpiry(t *testing.T) {
	tc := newTestCoordinator(t, GroupOptions{})
	a := mustJoin(t, tc.join("g", ""))
	if a.Generation != 1 || a.LeaderID != a.MemberID || len(a.Members) != 1 || a.Protocol != "range" {
		t.Fatalf("first join: %+v", a)
	}
	if res := answered(t, tc.syncAs("g", a.MemberID, 1, map[string][]byte{a.MemberID: []byte("p0-3")})); res.Err != nil || string(res.Assignment) != "p0-3" {
		t.Fatalf("sync: %+v", res)
	}

	// b joins: a must rejoin; the rebalance completes when it does.
	bch := tc.join("g", "")
	waiting(t, bch)
	if err := tc.heartbeat("g", a.MemberID, "", 1); !errors.Is(err, ErrRebalanceInProgress) {
		t.Fatalf("heartbeat while preparing: %v", err)
	}
	a2 := mustJoin(t, tc.join("g", a.MemberID))
	b := mustJoin(t, bch)
	if a2.Generation != 2 || b.Generation != 2 || a2.LeaderID != a.MemberID || len(a2.Members) != 2 || len(b.Members) != 0 {
		t.Fatalf("second generation: %+v %+v", a2, b)
	}
	bsync := tc.syncAs("g", b.MemberID, 2, nil)
	waiting(t, bsync)
	tc.syncAs("g", a.MemberID, 2, map[string][]byte{a.MemberID: []byte("p0-1"), b.MemberID: []byte("p2-3")})
	if res := answered(t, bsync); res.Err != nil || string(res.Assignment) != "p2-3" {
		t.Fatalf("follower sync: %+v", res)
	}

	// Only a keeps heartbeating: b's session (10s) runs out.
	for range 4 {
		tc.advance(3 * time.Second)
		if err := tc.heartbeat("g", a.MemberID, "", 2); err != nil && tc.state("g") == "Stable" {
			t.Fatal(err)
		}
	}
	if s := tc.state("g"); s != "PreparingRebalance" {
		t.Fatalf("after b's session: %s", s)
	}
	if err := tc.heartbeat("g", b.MemberID, "", 2); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("expired member's heartbeat: %v", err)
	}
	a3 := mustJoin(t, tc.join("g", a.MemberID))
	if a3.Generation != 3 || len(a3.Members) != 1 {
		t.Fatalf("after expiry: %+v", a3)
	}
}

func TestRebalanceTimeoutExpelsMembersThatDoNotRejoin(t *testing.T) {
	tc := newTestCoordinator(t, GroupOptions{})
	a := mustJoin(t, tc.join("g", ""))
	tc.syncAs("g", a.MemberID, 1, nil)
	bch := tc.join("g", "")
	mustJoin(t, tc.join("g", a.MemberID))
	b := mustJoin(t, bch)
	tc.syncAs("g", b.MemberID, 2, nil)
	tc.syncAs("g", a.MemberID, 2, nil)

	// c joins; a rejoins, b keeps heartbeating but never rejoins.
	cch := tc.join("g", "")
	ach := tc.join("g", a.MemberID)
	for range 5 {
		tc.advance(5 * time.Second)
		if err := tc.heartbeat("g", b.MemberID, "", 2); !errors.Is(err, ErrRebalanceInProgress) {
			t.Fatalf("b's heartbeat: %v", err)
		}
		waiting(t, ach)
	}
	tc.advance(5 * time.Second) // 30s: the rebalance timeout
	a3, c := mustJoin(t, ach), mustJoin(t, cch)
	if a3.Generation != 3 || c.Generation != 3 || len(a3.Members) != 2 {
		t.Fatalf("after the rebalance timeout: %+v %+v", a3, c)
	}
	if err := tc.heartbeat("g", b.MemberID, "", 3); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("b after expulsion: %v", err)
	}
}

func TestMembersThatNeverSyncAreExpelled(t *testing.T) {
	tc := newTestCoordinator(t, GroupOptions{})
	long := withSession(time.Minute)
	a := mustJoin(t, tc.join("g", "", long))
	tc.syncAs("g", a.MemberID, 1, nil)
	bch := tc.join("g", "", long)
	mustJoin(t, tc.join("g", a.MemberID, long))
	b := mustJoin(t, bch)
	// The leader syncs; b never does.
	tc.syncAs("g", a.MemberID, 2, nil)
	if s := tc.state("g"); s != "Stable" {
		t.Fatal(s)
	}
	tc.advance(29 * time.Second)
	if err := tc.heartbeat("g", a.MemberID, "", 2); err != nil {
		t.Fatal(err)
	}
	tc.advance(time.Second)
	if s := tc.state("g"); s != "PreparingRebalance" {
		t.Fatalf("after the sync timeout: %s", s)
	}
	if err := tc.heartbeat("g", b.MemberID, "", 2); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("b: %v", err)
	}
}

func TestMemberIDRequiredAndPendingMembers(t *testing.T) {
	tc := newTestCoordinator(t, GroupOptions{})
	required := func(r *JoinGroupRequest) { r.RequireKnownMemberID = true }
	res := answered(t, tc.join("g", "", required))
	if !errors.Is(res.Err, ErrMemberIDRequired) || res.MemberID == "" {
		t.Fatalf("first join: %+v", res)
	}
	if s := tc.state("g"); s != "Empty" {
		t.Fatalf("a pending member is not a member: %s", s)
	}
	// An id not used within the session timeout expires.
	tc.advance(10 * time.Second)
	if res := answered(t, tc.join("g", res.MemberID, required)); !errors.Is(res.Err, ErrUnknownMemberID) {
		t.Fatalf("expired id: %+v", res)
	}

	// A handed-out id holds the join phase until it is used.
	first := answered(t, tc.join("g", "", required))
	a := mustJoin(t, tc.join("g", first.MemberID, required))
	tc.syncAs("g", a.MemberID, a.Generation, nil)
	pend := answered(t, tc.join("g", "", required))
	if s := tc.state("g"); s != "Stable" {
		t.Fatalf("a pending member does not rebalance: %s", s)
	}
	cch := tc.join("g", "") // an old client's join
	ach := tc.join("g", a.MemberID, required)
	waiting(t, ach)
	bch := tc.join("g", pend.MemberID, required)
	for _, ch := range []<-chan JoinGroupResult{ach, bch, cch} {
		if r := mustJoin(t, ch); r.Generation != a.Generation+1 {
			t.Fatalf("generation %d", r.Generation)
		}
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	tc := newTestCoordinator(t, GroupOptions{InitialRebalanceDelay: 3 * time.Second})
	rt := withRebalance(10 * time.Second)
	ach := tc.join("g", "", rt)
	tc.advance(time.Second)
	bch := tc.join("g", "", rt)
	tc.advance(2 * time.Second) // 3s: a new member came, so the delay extends
	waiting(t, ach)
	waiting(t, bch)
	tc.advance(3 * time.Second) // 6s: nobody new
	a, b := mustJoin(t, ach), mustJoin(t, bch)
	if a.Generation != 1 || b.Generation != 1 || len(a.Members)+len(b.Members) != 2 {
		t.Fatalf("%+v %+v", a, b)
	}
}

func TestLeaderLeavesAndStaticMembers(t *testing.T) {
	tc := newTestCoordinator(t, GroupOptions{})
	both := withProtocols("range", "roundrobin")
	a := mustJoin(t, tc.join("g", "", withInstance("a"), both))
	if a.MemberID[:2] != "a-" {
		t.Fatalf("static member id %q", a.MemberID)
	}
	tc.syncAs("g", a.MemberID, 1, nil)
	bch := tc.join("g", "", withProtocols("roundrobin", "range"))
	mustJoin(t, tc.join("g", a.MemberID, withInstance("a"), both))
	b := mustJoin(t, bch)
	if b.Protocol != "range" {
		t.Fatalf("tie goes to the first member's preference: %q", b.Protocol)
	}
	tc.syncAs("g", b.MemberID, 2, nil)
	tc.syncAs("g", a.MemberID, 2, map[string][]byte{a.MemberID: []byte("A"), b.MemberID: []byte("B")})

	// a restarts: same generation, same assignment, old id fenced.
	a2 := mustJoin(t, tc.join("g", "", withInstance("a"), both))
	if a2.Generation != 2 || a2.MemberID == a.MemberID || a2.LeaderID != a.MemberID || len(a2.Members) != 0 {
		t.Fatalf("static rejoin: %+v", a2)
	}
	if res := answered(t, tc.sync(SyncGroupRequest{Group: "g", MemberID: a2.MemberID, InstanceID: "a", Generation: 2})); string(res.Assignment) != "A" {
		t.Fatalf("assignment after rejoin: %+v", res)
	}
	if err := tc.heartbeat("g", a.MemberID, "a", 2); !errors.Is(err, ErrFencedInstanceID) {
		t.Fatalf("old incarnation: %v", err)
	}
	if tc.state("g") != "Stable" {
		t.Fatal("rejoin rebalanced")
	}

	// a restarts preferring roundrobin: the chosen protocol would change,
	// so the group rebalances.
	a3ch := tc.join("g", "", withInstance("a"), withProtocols("roundrobin", "range"))
	waiting(t, a3ch)
	b3 := mustJoin(t, tc.join("g", b.MemberID, withProtocols("roundrobin", "range")))
	a3 := mustJoin(t, a3ch)
	if a3.Protocol != "roundrobin" || b3.Generation != 3 || a3.LeaderID != a3.MemberID {
		t.Fatalf("protocol change: %+v %+v", a3, b3)
	}

	// The leader leaves: b leads the next generation.
	errs, err := tc.leave("g", []LeavingMember{{InstanceID: "a"}})
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	b4 := mustJoin(t, tc.join("g", b.MemberID, withProtocols("roundrobin", "range")))
	if b4.LeaderID != b.MemberID || b4.Generation != 4 {
		t.Fatalf("after the leader left: %+v", b4)
	}
}

func TestCommitValidation(t *testing.T) {
	tc := newTestCoordinator(t, GroupOptions{MaxMetadataBytes: 8})
	commit := func(member string, gen int32, offsets ...OffsetCommit) []error {
		errs, p := tc.commit(OffsetCommitRequest{Group: "g", MemberID: member, Generation: gen, Offsets: offsets})
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		return errs
	}
	one := OffsetCommit{Topic: "t", Offset: 5, LeaderEpoch: 2, Metadata: "meta"}
	if errs := commit("", -1, one, OffsetCommit{Topic: "missing"}, OffsetCommit{Topic: "t", Partition: 1, Metadata: "too long metadata"}); errs[0] != nil ||
		!errors.Is(errs[1], ErrUnknownPartition) || !errors.Is(errs[2], ErrOffsetMetadataTooLarge) {
		t.Fatalf("simple commit: %v", errs)
	}
	got := tc.store.offsets("g")
	if o := got[TopicPartition{"t", 0}]; len(got) != 1 || o.Offset != 5 || o.LeaderEpoch != 2 || o.Metadata != "meta" || o.CommitMs != tc.clk.now().UnixMilli() {
		t.Fatalf("committed: %+v", got)
	}

	a := mustJoin(t, tc.join("g", ""))
	if errs := commit("", -1, one); !errors.Is(errs[0], ErrUnknownMemberID) {
		t.Fatalf("anonymous commit to a group with members: %v", errs)
	}
	if errs := commit(a.MemberID, 1, one); !errors.Is(errs[0], ErrRebalanceInProgress) {
		t.Fatalf("commit before the assignment: %v", errs)
	}
	tc.syncAs("g", a.MemberID, 1, nil)
	if errs := commit(a.MemberID, 0, one); !errors.Is(errs[0], ErrIllegalGeneration) {
		t.Fatalf("stale generation: %v", errs)
	}
	// A commit is a sign of life.
	for range 4 {
		tc.advance(4 * time.Second)
		if errs := commit(a.MemberID, 1, one); errs[0] != nil {
			t.Fatal(errs)
		}
	}
	if tc.state("g") != "Stable" {
		t.Fatal("committing member expired")
	}
}

func TestOffsetRetentionAndGroupCleanup(t *testing.T) {
	day := 24 * time.Hour
	tc := newTestCoordinator(t, GroupOptions{OffsetsRetention: 7 * day, CleanupInterval: time.Hour})
	commit := func(group string, retention time.Duration) {
		errs, p := tc.commit(OffsetCommitRequest{Group: group, Generation: -1, Offsets: []OffsetCommit{{Topic: "t", Offset: 1, Retention: retention}}})
		if errs[0] != nil || p.Wait(context.Background()) != nil {
			t.Fatal(errs)
		}
	}
	commit("simple", 0)
	commit("short", 2*day)
	commit("consumer", 0)
	tc.advance(6 * day)
	// "consumer" gets a member for a while: its offsets are kept for the
	// retention after it becomes empty again.
	a := mustJoin(t, tc.join("consumer", ""))
	tc.syncAs("consumer", a.MemberID, 1, nil)
	if _, err := tc.leave("consumer", []LeavingMember{{MemberID: a.MemberID}}); err != nil {
		t.Fatal(err)
	}
	if tc.state("short") != "Dead" {
		t.Fatal("an offset committed with a 2-day retention outlived it")
	}
	tc.advance(day + time.Hour)
	listed := map[string]bool{}
	for _, l := range tc.list() {
		listed[l.Group] = true
	}
	if listed["simple"] || !listed["consumer"] {
		t.Fatalf("after 7 days: %v", listed)
	}
	tc.store.settle()
	if len(tc.store.offsets("simple")) != 0 || len(tc.store.offsets("consumer")) != 1 {
		t.Fatal("offsets not expired as expected")
	}
	tc.advance(6 * day)
	tc.store.settle()
	if tc.state("consumer") != "Dead" || len(tc.store.offsets("consumer")) != 0 {
		t.Fatal("consumer's offsets outlived the retention")
	}
}

func TestGroupsAcrossBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	if _, err := b.CreateTopic(context.Background(), "t", 2, nil); err != nil {
		t.Fatal(err)
	}
	join := func(b *Broker, member string) JoinGroupResult {
		res := <-b.JoinGroup(JoinGroupRequest{Group: "g", MemberID: member, SessionTimeout: 10 * time.Second, RebalanceTimeout: time.Second,
			ProtocolType: "consumer", Protocols: []GroupProtocol{{Name: "range"}}})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		return res
	}
	a := join(b, "")
	<-b.SyncGroup(SyncGroupRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation})
	errs, p := b.CommitOffsets(OffsetCommitRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation,
		Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 42, LeaderEpoch: 0, Metadata: "md"}}})
	if errs[0] != nil || p.Wait(context.Background()) != nil {
		t.Fatal(errs)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openBroker(t, dir, nil)
	defer b.Close()
	d := b.DescribeGroup("g")
	if d.State != "Empty" || d.ProtocolType != "consumer" || len(d.Members) != 0 {
		t.Fatalf("after restart: %+v", d)
	}
	if o := b.CommittedOffsets("g")[TopicPartition{"t", 1}]; o.Offset != 42 || o.Metadata != "md" || o.LeaderEpoch != 0 {
		t.Fatalf("offset after restart: %+v", o)
	}
	// The old member is unknown; the generation carries on.
	if err := b.Heartbeat("g", a.MemberID, "", a.Generation); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("old member: %v", err)
	}
	if a2 := join(b, ""); a2.Generation != a.Generation+1 {
		t.Fatalf("generation %d after %d", a2.Generation, a.Generation)
	}
}
