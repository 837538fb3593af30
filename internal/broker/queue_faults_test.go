package broker

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
	"github.com/wharfmq/wharf/internal/storage/faultfs"
)

// openFaultBroker opens a broker whose queue logs are on a fault FS.
func openFaultBroker(t *testing.T, dir string) (*Broker, *faultfs.FS) {
	t.Helper()
	fs := faultfs.New(nil)
	fs.SetMatch(func(path string) bool {
		return strings.Contains(path, string(filepath.Separator)+"queues"+string(filepath.Separator)) && faultfs.IsSegment(path)
	})
	b, err := Open(Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig(), FS: fs})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	return b, fs
}

// syncGate holds fsyncs of the fault FS back while it is closed.
type syncGate struct {
	once   sync.Once
	open   chan struct{}
	inside chan struct{} // receives when an fsync reaches the gate
}

func newSyncGate(fs *faultfs.FS) *syncGate {
	g := &syncGate{open: make(chan struct{}), inside: make(chan struct{}, 1)}
	fs.SetOnSync(func(string) {
		open := g.open
		select {
		case g.inside <- struct{}{}:
		default:
		}
		<-open
	})
	return g
}

// release lets every fsync through; it may be called more than once.
func (g *syncGate) release() {
	g.once.Do(func() { close(g.open) })
}

// waitUntil polls cond until it holds, failing the test after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publishStored(t *testing.T, b *Broker, queue, body string) PublishResult {
	t.Helper()
	res, err := b.Publish(DefaultVhost, "", []string{queue}, nil,
		&Message{RoutingKey: queue, Body: []byte(body), Persistent: true, Timestamp: time.Now().UnixMilli()})
	if err != nil || res.Routed != 1 || !res.Durable() {
		t.Fatalf("publish %q: %+v %v", body, res, err)
	}
	return res
}

// TestQueueDeliversOnlyDurable: a stored message reaches neither a consumer
// nor basic.get before the fsync that covers it; it goes out right after.
func TestQueueDeliversOnlyDurable(t *testing.T) {
	b, fs := openFaultBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	q := qtQueue(t, b, "dq")

	gate := newSyncGate(fs)
	defer gate.release() // before Close, even when the test fails
	res := publishStored(t, b, "dq", "m")
	<-gate.inside // the queue log's fsync has started and is held
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, ok := q.Get(ctx, true); ok {
		t.Fatalf("basic.get returned %q before its fsync", d.Message.Body)
	}
	c, sink := qtConsumer("c", NewCredit(10))
	if err := q.Consume(c); err != nil {
		t.Fatal(err)
	}
	if got := sink.take(); len(got) != 0 {
		t.Fatalf("consumer got %q before the fsync", qtBodies(got))
	}
	qtCounts(t, q, 1, 1)
	gate.release()
	qtWait(t, res)
	var got []Delivery
	waitUntil(t, "the durable message is delivered", func() bool {
		got = append(got, sink.take()...)
		return len(got) == 1
	})
	if string(got[0].Message.Body) != "m" {
		t.Fatalf("delivered %q", got[0].Message.Body)
	}
}

// TestQueueFsyncFailure: messages whose fsync failed are nacked (Wait
// fails), never delivered, and dropped from the queue; a transient message
// published between them is delivered. After the fault, new messages reuse
// the discarded offsets; settling (acking, purging) never touches a later
// message through a reused offset, so what was acknowledged and not
// settled is all there after a restart.
func TestQueueFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	b, fs := openFaultBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "idle", Durable: true})
	q := qtQueue(t, b, "dq")
	c, sink := qtConsumer("c", NewCredit(100))
	if err := q.Consume(c); err != nil {
		t.Fatal(err)
	}
	qtWait(t, publishStored(t, b, "dq", "a"))

	fs.FailSyncs(syscall.EIO, -1)
	x1 := publishStored(t, b, "dq", "x1")
	if _, err := b.Publish(DefaultVhost, "", []string{"dq"}, nil, &Message{RoutingKey: "dq", Body: []byte("t")}); err != nil {
		t.Fatal(err)
	}
	x2 := publishStored(t, b, "dq", "x2")
	for _, r := range []PublishResult{x1, x2} {
		if err := r.Wait(t.Context()); !errors.Is(err, ErrStorage) {
			t.Fatalf("publish under a failing fsync: Wait %v, want ErrStorage", err)
		}
	}
	// A message purged before its fsync failed must not be settled.
	idle := qtQueue(t, b, "idle")
	p := publishStored(t, b, "idle", "purged")
	if n := idle.Purge(); n != 1 {
		t.Fatalf("purge: %d", n)
	}
	if err := p.Wait(t.Context()); !errors.Is(err, ErrStorage) {
		t.Fatalf("purged publish: %v", err)
	}

	var got []string
	waitUntil(t, "the transient message is delivered and the failed ones dropped", func() bool {
		for _, d := range sink.take() {
			got = append(got, string(d.Message.Body))
			q.Ack([]Delivery{d})
		}
		m, _ := q.Counts()
		return len(got) == 2 && m == 0
	})
	if !slices.Equal(got, []string{"a", "t"}) {
		t.Fatalf("consumer got %q, want [a t]: a failed fsync's message was delivered", got)
	}

	fs.Clear()
	qtWait(t, publishStored(t, b, "dq", "b")) // at x1's offset
	qtWait(t, publishStored(t, b, "dq", "kept"))
	qtWait(t, publishStored(t, b, "idle", "c")) // at the purged message's offset
	waitUntil(t, "b and kept are delivered", func() bool {
		for _, d := range sink.take() {
			got = append(got, string(d.Message.Body))
			if string(d.Message.Body) == "b" {
				q.Ack([]Delivery{d})
			}
		}
		return len(got) == 4
	})
	if !slices.Equal(got, []string{"a", "t", "b", "kept"}) {
		t.Fatalf("consumer got %q", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openTestBroker(t, dir)
	defer b.Close()
	if left := qtDrain(qtQueue(t, b, "dq")); !slices.Equal(left, []string{"kept"}) {
		t.Fatalf("dq after restart holds %q, want [kept] (delivered, not acked)", left)
	}
	if left := qtDrain(qtQueue(t, b, "idle")); !slices.Equal(left, []string{"c"}) {
		t.Fatalf("idle after restart holds %q, want [c]", left)
	}
}
