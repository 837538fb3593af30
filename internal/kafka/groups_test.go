package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// killSwitch is a dialer whose connections can all be severed at once,
// after which it refuses to dial: a consumer process that died without
// leaving its group.
type killSwitch struct {
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func (k *killSwitch) dial(ctx context.Context, network, host string) (net.Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead {
		return nil, errors.New("process is dead")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		k.conns = append(k.conns, c)
	}
	return c, err
}

func (k *killSwitch) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dead = true
	for _, c := range k.conns {
		c.Close()
	}
}

// consumeLog records what a group consumed and what it committed, and
// finds records consumed again after a commit covering them was
// acknowledged.
type consumeLog struct {
	mu         sync.Mutex
	seen       map[int32]map[int64]int // partition -> offset -> times consumed
	committed  map[int32]int64         // partition -> acknowledged committed offset
	total      int
	violations []string
}

func newConsumeLog() *consumeLog {
	return &consumeLog{seen: map[int32]map[int64]int{}, committed: map[int32]int64{}}
}

func (l *consumeLog) consumed(who string, rs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		m := l.seen[r.Partition]
		if m == nil {
			m = map[int64]int{}
			l.seen[r.Partition] = m
		}
		if m[r.Offset] > 0 && l.committed[r.Partition] > r.Offset {
			l.violations = append(l.violations, fmt.Sprintf("%s consumed %d/%d again after offset %d was committed", who, r.Partition, r.Offset, l.committed[r.Partition]))
		}
		if m[r.Offset] == 0 {
			l.total++
		}
		m[r.Offset]++
	}
}

func (l *consumeLog) commitAcked(rs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		l.committed[r.Partition] = max(l.committed[r.Partition], r.Offset+1)
	}
}

func (l *consumeLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// eventually polls cond until it holds or the bounded wait ends.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupConsumer consumes with at-least-once processing: every polled batch
// is logged, committed, and only then may the group rebalance.
type groupConsumer struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startGroupConsumer(t *testing.T, ts *testServer, name, group, topic string, balancer kgo.GroupBalancer, log *consumeLog, extra ...kgo.Opt) *groupConsumer {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.RebalanceTimeout(20 * time.Second),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, extra...)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ts.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &groupConsumer{name: name, cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollRecords(ctx, 200)
			if rs := fs.Records(); len(rs) > 0 {
				log.consumed(name, rs)
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := cl.CommitRecords(cctx, rs...); err == nil {
					log.commitAcked(rs)
				}
				ccancel()
			}
			cl.AllowRebalance()
		}
	}()
	return c
}

// stop ends the poll loop; the client stays open.
func (c *groupConsumer) stop() {
	c.cancel()
	<-c.done
}

func TestConsumerGroupLeaveAndCrashLoseNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer func() kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testGroupLeaveAndCrash(t, tc.balancer())
		})
	}
}

func testGroupLeaveAndCrash(t *testing.T, balancer kgo.GroupBalancer) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	const topic, group, parts, perPhase = "orders", "billing", 6, 600
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	producer := ts.client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produced := 0
	produce := func(n int) {
		t.Helper()
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Partition: int32(produced % parts), Value: []byte(fmt.Sprint(produced))}
			produced++
		}
		if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	log := newConsumeLog()
	var ks killSwitch
	leaver := startGroupConsumer(t, ts, "leaver", group, topic, balancer, log)
	survivor := startGroupConsumer(t, ts, "survivor", group, topic, balancer, log)
	victim := startGroupConsumer(t, ts, "victim", group, topic, balancer, log, kgo.Dialer(ks.dial))
	t.Cleanup(func() {
		survivor.stop()
		survivor.cl.Close()
		victim.stop()
		lctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		victim.cl.LeaveGroupContext(lctx) // cannot reach the broker: the process is dead
		victim.cl.Close()
	})
	members := func() []string {
		gs, err := adm.DescribeGroups(ctx, group)
		if err != nil || gs[group].Err != nil || gs[group].State != "Stable" {
			return nil
		}
		var ids []string
		for _, m := range gs[group].Members {
			ids = append(ids, m.ClientID)
		}
		sort.Strings(ids)
		return ids
	}
	eventually(t, "three stable members", 20*time.Second, func() bool { return len(members()) == 3 })

	produce(perPhase)
	eventually(t, "the first records", 20*time.Second, func() bool { return log.distinct() == produced })

	// A clean leave: the loop stops after committing, then the client
	// leaves the group.
	leaver.stop()
	leaver.cl.CloseAllowingRebalance()
	produce(perPhase)
	eventually(t, "the records after the leave", 20*time.Second, func() bool { return log.distinct() == produced })
	eventually(t, "two stable members", 20*time.Second, func() bool {
		return strings.Join(members(), ",") == "survivor,victim"
	})

	// A crash: the victim's connections drop and it never comes back. Its
	// partitions stall until its session times out and the group
	// expels it.
	victim.stop()
	ks.kill()
	produce(perPhase)
	eventually(t, "the victim's expulsion", 30*time.Second, func() bool {
		return strings.Join(members(), ",") == "survivor"
	})
	eventually(t, "every record consumed", 30*time.Second, func() bool { return log.distinct() == produced })

	// Every partition's committed offset reaches its end.
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "commits at the end of every partition", 20*time.Second, func() bool {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			o, ok := offs.Lookup(topic, e.Partition)
			done = done && ok && o.At == e.Offset
		})
		return done
	})

	log.mu.Lock()
	defer log.mu.Unlock()
	for _, v := range log.violations {
		t.Error(v)
	}
	ends.Each(func(e kadm.ListedOffset) {
		for o := int64(0); o < e.Offset; o++ {
			if log.seen[e.Partition][o] == 0 {
				t.Errorf("record %d/%d was never consumed", e.Partition, o)
			}
		}
	})
	if log.total != produced {
		t.Errorf("consumed %d distinct records, produced %d", log.total, produced)
	}
}

// TestShutdownAnswersWaitingJoins checks that a JoinGroup waiting for other
// members does not hold up a shutdown: it is answered NOT_COORDINATOR, so
// the client looks for the coordinator again.
func TestShutdownAnswersWaitingJoins(t *testing.T) {
	ts := startServer(t, nil)
	a, b := dialRaw(t, ts), dialRaw(t, ts)
	if r := a.do(joinReq("g", "", nil), 3).(*kmsg.JoinGroupResponse); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	b.send(joinReq("g", "", nil), 3) // waits for a to rejoin
	eventually(t, "the rebalance", 10*time.Second, func() bool { return ts.b.DescribeGroup("g").State == "PreparingRebalance" })
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ts.stop() // fails the test if connections do not finish
	}()
	if r := b.recv().(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Errorf("waiting join at shutdown: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	<-stopped
}
