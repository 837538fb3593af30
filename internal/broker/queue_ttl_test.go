package broker

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// testClock is a clock tests move by hand.
type testClock struct{ ms atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ms.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli())
	return c
}

func (c *testClock) now() time.Time   { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) advance(ms int64) { c.ms.Add(ms) }

func openClockBroker(t *testing.T, dir string, c *testClock) *Broker {
	t.Helper()
	b, err := Open(Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig(), Now: c.now})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// expirationProps encodes basic properties holding only an expiration.
func expirationProps(ms string) []byte {
	return append([]byte{0x01, 0x00, byte(len(ms))}, ms...)
}

// ttlPublish publishes body to queue with an optional expiration.
func ttlPublish(t *testing.T, b *Broker, c *testClock, queue, body, expiration string, persistent bool) {
	t.Helper()
	msg := &Message{RoutingKey: queue, Body: []byte(body), Persistent: persistent, Timestamp: c.ms.Load()}
	if expiration != "" {
		msg.Properties = expirationProps(expiration)
	}
	res, err := b.Publish(DefaultVhost, "", []string{queue}, nil, msg)
	if err != nil || res.Routed != 1 {
		t.Fatalf("publish %q: routed %d, %v", body, res.Routed, err)
	}
	if res.Durable() {
		qtWait(t, res)
		qtQueue(t, b, queue).Kick()
	}
}

func TestPropertyExpiration(t *testing.T) {
	// content-type "t", headers {}, delivery-mode 2, expiration "250".
	props := []byte{0xb1, 0x00, 1, 't', 0, 0, 0, 0, 2, 3, '2', '5', '0'}
	if ttl, ok := propertyExpiration(props); !ok || ttl != 250 {
		t.Fatalf("expiration = %d, %v; want 250", ttl, ok)
	}
	for _, bad := range [][]byte{nil, {0x01, 0x00}, {0x01, 0x00, 2, '-', '1'}, {0x01, 0x00, 1, 'x'}, {0x80, 0x00, 1, 't'}} {
		if ttl, ok := propertyExpiration(bad); ok {
			t.Fatalf("expiration of %x = %d, want none", bad, ttl)
		}
	}
}

// TestQueueMessageTTL: per-queue and per-message TTL, the lower applying,
// expired messages dropped at the head only, on durable and transient
// queues.
func TestQueueMessageTTL(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "transient", true: "durable"}[durable], func(t *testing.T) {
			c := newTestClock()
			b := openClockBroker(t, t.TempDir(), c)
			mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: durable, Arguments: Table{"x-message-ttl": int32(1000)}})
			q := qtQueue(t, b, "q")
			ttlPublish(t, b, c, "q", "queue-ttl", "", durable)
			ttlPublish(t, b, c, "q", "short", "200", durable)
			ttlPublish(t, b, c, "q", "long", "5000", durable) // the queue's 1000 applies
			c.advance(500)
			// "short" has expired but is not at the head: still counted.
			qtCounts(t, q, 3, 0)
			d := qtGet(t, q, false)
			if string(d.Message.Body) != "queue-ttl" {
				t.Fatalf("got %q, want queue-ttl", d.Message.Body)
			}
			q.Requeue([]Delivery{d}) // keeps its expiry
			// Now "queue-ttl" is at the head, unexpired: "short" behind it waits.
			qtCounts(t, q, 3, 0)
			c.advance(600) // 1100 ms: everything is past its TTL
			qtCounts(t, q, 0, 0)
			if _, ok := q.Get(t.Context(), true); ok {
				t.Fatal("got an expired message")
			}
			ttlPublish(t, b, c, "q", "fresh", "", durable)
			if got := qtDrain(q); !slices.Equal(got, []string{"fresh"}) {
				t.Fatalf("drained %q, want [fresh]", got)
			}
		})
	}
}

// TestQueueTTLZero: with x-message-ttl 0 a message goes to a consumer that
// can take it as it arrives, and expires otherwise.
func TestQueueTTLZero(t *testing.T) {
	c := newTestClock()
	b := openClockBroker(t, t.TempDir(), c)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Arguments: Table{"x-message-ttl": int32(0)}})
	q := qtQueue(t, b, "q")
	ttlPublish(t, b, c, "q", "nobody", "", false)
	qtCounts(t, q, 0, 0)
	cons, sink := qtConsumer("c", NewCredit(1))
	if err := q.Consume(cons); err != nil {
		t.Fatal(err)
	}
	ttlPublish(t, b, c, "q", "taken", "", false)
	ttlPublish(t, b, c, "q", "over-prefetch", "", false)
	got := sink.take()
	if !slices.Equal(qtBodies(got), []string{"taken"}) {
		t.Fatalf("delivered %q, want [taken]", qtBodies(got))
	}
	qtCounts(t, q, 0, 1)
	q.Ack(got)
}

// TestQueueTTLSweep: the periodic sweep drops expired head messages with
// no consumer or get involved.
func TestQueueTTLSweep(t *testing.T) {
	c := newTestClock()
	b := openClockBroker(t, t.TempDir(), c)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
	q := qtQueue(t, b, "q")
	ttlPublish(t, b, c, "q", "a", "100", true)
	ttlPublish(t, b, c, "q", "b", "", true)
	c.advance(100)
	b.ExpireMessages()
	q.mu.Lock()
	n := q.readyLocked()
	q.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d ready after the sweep, want 1", n)
	}
}

// TestQueueTTLAcrossRestart: a recovered message expires when it would
// have without the restart (from its publish time, with its own
// expiration), whether recovered into memory or paged out.
func TestQueueTTLAcrossRestart(t *testing.T) {
	for _, memLimit := range []int64{-1, 1} {
		t.Run(fmt.Sprintf("memory-limit-%d", memLimit), func(t *testing.T) {
			c := newTestClock()
			dir := t.TempDir()
			open := func() *Broker {
				b, err := Open(Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig(), Now: c.now, QueueMemoryBytes: memLimit})
				if err != nil {
					t.Fatalf("open broker: %v", err)
				}
				return b
			}
			b := open()
			mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int32(5000)}})
			ttlPublish(t, b, c, "q", "own", "1000", true)
			ttlPublish(t, b, c, "q", "queue", "", true)
			c.advance(600)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b = open()
			defer b.Close()
			q := qtQueue(t, b, "q")
			qtCounts(t, q, 2, 0)
			c.advance(400) // "own" is 1000 ms old
			qtCounts(t, q, 1, 0)
			c.advance(3999)
			qtCounts(t, q, 1, 0)
			c.advance(1) // "queue" is 5000 ms old
			qtCounts(t, q, 0, 0)
		})
	}
}
