package amqp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// manualClock is a broker clock that tests move by hand, so TTL tests
// never sleep.
type manualClock struct{ ms atomic.Int64 }

func (c *manualClock) now() time.Time   { return time.UnixMilli(c.ms.Load()) }
func (c *manualClock) advance(ms int64) { c.ms.Add(ms) }
func (c *manualClock) set(t time.Time)  { c.ms.Store(t.UnixMilli()) }
func newManualClock() *manualClock {
	c := &manualClock{}
	c.set(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	return c
}

// startClockServer is startServer with the broker on a manual clock.
func startClockServer(t *testing.T, opts Options) (*testServer, *manualClock) {
	t.Helper()
	clk := newManualClock()
	ts := &testServer{t: t, dir: t.TempDir(), opts: opts, now: clk.now}
	ts.start()
	t.Cleanup(ts.stop)
	return ts, clk
}

// confirmedChannel opens a channel in confirm mode.
func confirmedChannel(t *testing.T, ts *testServer) *amqp091.Channel {
	t.Helper()
	_, ch := ts.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	return ch
}

// publishConfirmed publishes to queue through the default exchange and
// waits for the broker's ack, so the message is in the queue on return.
func publishConfirmed(t *testing.T, ch *amqp091.Channel, queue string, p amqp091.Publishing) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, p)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		t.Fatalf("waiting for the confirm: %v", err)
	}
	return ok
}

// queueCount is the message count of a passive queue.declare.
func queueCount(t *testing.T, ch *amqp091.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare %s: %v", queue, err)
	}
	return q.Messages
}

// getBody is basic.get with auto-ack; "" when the queue is empty.
func getBody(t *testing.T, ch *amqp091.Channel, queue string) string {
	t.Helper()
	m, ok, err := ch.Get(queue, true)
	if err != nil {
		t.Fatalf("basic.get %s: %v", queue, err)
	}
	if !ok {
		return ""
	}
	return string(m.Body)
}

// TestAMQPMessageTTL: x-message-ttl and the expiration property, the lower
// applying, expired messages dropped when they reach the head, on durable
// and transient queues, persistent and not.
func TestAMQPMessageTTL(t *testing.T) {
	ts, clk := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	for _, durable := range []bool{false, true} {
		name := map[bool]string{false: "ttl-transient", true: "ttl-durable"}[durable]
		if _, err := ch.QueueDeclare(name, durable, false, false, false, amqp091.Table{"x-message-ttl": int32(1000)}); err != nil {
			t.Fatal(err)
		}
		mode := map[bool]uint8{false: amqp091.Transient, true: amqp091.Persistent}[durable]
		publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("queue-ttl"), DeliveryMode: mode})
		publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("long"), Expiration: "60000", DeliveryMode: mode})
		publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("short"), Expiration: "100", DeliveryMode: mode})
		publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("none"), DeliveryMode: mode})
		clk.advance(999)
		if n := queueCount(t, ch, name); n != 4 {
			t.Fatalf("%s: %d messages at 999 ms, want 4 ('short' has expired but is not at the head)", name, n)
		}
		if got := getBody(t, ch, name); got != "queue-ttl" {
			t.Fatalf("%s: got %q, want queue-ttl", name, got)
		}
		clk.advance(1)
		// Every message has reached the queue's TTL (the lower of 1000 and
		// its own expiration).
		if got := getBody(t, ch, name); got != "" {
			t.Fatalf("%s: got %q after 1000 ms, want nothing", name, got)
		}
		if n := queueCount(t, ch, name); n != 0 {
			t.Fatalf("%s: %d messages, want 0", name, n)
		}
	}
	// A queue without TTL: only the message's own expiration applies.
	if _, err := ch.QueueDeclare("no-ttl", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, ch, "no-ttl", amqp091.Publishing{Body: []byte("short"), Expiration: "50", DeliveryMode: amqp091.Persistent})
	publishConfirmed(t, ch, "no-ttl", amqp091.Publishing{Body: []byte("stays"), DeliveryMode: amqp091.Persistent})
	clk.advance(50)
	if got := getBody(t, ch, "no-ttl"); got != "stays" {
		t.Fatalf("got %q, want stays", got)
	}
}

// TestAMQPMessageTTLRequeue: a requeued message keeps its expiry.
func TestAMQPMessageTTLRequeue(t *testing.T) {
	ts, clk := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	if _, err := ch.QueueDeclare("q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, ch, "q", amqp091.Publishing{Body: []byte("m"), Expiration: "500"})
	m, ok, err := ch.Get("q", false)
	if err != nil || !ok {
		t.Fatalf("basic.get: %v %v", ok, err)
	}
	clk.advance(500)
	if err := m.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	// The nack is asynchronous: a passive declare after it on the same
	// channel is answered after it is handled.
	if n := queueCount(t, ch, "q"); n != 0 {
		t.Fatalf("%d messages after requeueing an expired message, want 0", n)
	}
}

// TestAMQPMessageTTLZero: x-message-ttl 0 delivers to a consumer that can
// take the message as it arrives (for a persistent message in a durable
// queue: as soon as it is durable) and drops it otherwise.
func TestAMQPMessageTTLZero(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "transient", true: "durable"}[durable], func(t *testing.T) {
			testMessageTTLZero(t, durable)
		})
	}
}

func testMessageTTLZero(t *testing.T, durable bool) {
	ts, _ := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	if _, err := ch.QueueDeclare("now", durable, false, false, false, amqp091.Table{"x-message-ttl": int64(0)}); err != nil {
		t.Fatal(err)
	}
	mode := map[bool]uint8{false: amqp091.Transient, true: amqp091.Persistent}[durable]
	publishConfirmed(t, ch, "now", amqp091.Publishing{Body: []byte("nobody"), DeliveryMode: mode})
	if n := queueCount(t, ch, "now"); n != 0 {
		t.Fatalf("%d messages with no consumer, want 0", n)
	}
	_, cch := ts.channel(t)
	if err := cch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := cch.Consume("now", "c", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The channel handles its methods in order: once this is answered
	// the consumer is started.
	queueCount(t, cch, "now")
	publishConfirmed(t, ch, "now", amqp091.Publishing{Body: []byte("taken"), DeliveryMode: mode})
	select {
	case d := <-deliveries:
		if string(d.Body) != "taken" {
			t.Fatalf("delivered %q, want taken", d.Body)
		}
		publishConfirmed(t, ch, "now", amqp091.Publishing{Body: []byte("over-prefetch"), DeliveryMode: mode})
		// A persistent message reaches the queue's head once its append is
		// durable, which may follow the confirm by a moment: then it expires.
		itEventually(t, "the message over the prefetch expired", func() bool { return queueCount(t, ch, "now") == 0 })
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
		// A synchronous method on the consumer's channel is answered
		// after the ack is handled: the consumer has room again.
		queueCount(t, cch, "now")
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30s")
	}
	publishConfirmed(t, ch, "now", amqp091.Publishing{Body: []byte("after-ack"), DeliveryMode: mode})
	select {
	case d := <-deliveries:
		if string(d.Body) != "after-ack" {
			t.Fatalf("delivered %q, want after-ack", d.Body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30s")
	}
}

// TestAMQPInvalidExpiration: an expiration that is not a non-negative
// integer closes the channel with PRECONDITION_FAILED; the queue loses
// nothing and the connection keeps working.
func TestAMQPInvalidExpiration(t *testing.T) {
	ts, _ := startClockServer(t, Options{})
	conn, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "q", false, false, amqp091.Publishing{Body: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	for _, bad := range []string{"-1", "soon"} {
		if err := ch.Publish("", "q", false, false, amqp091.Publishing{Body: []byte("bad"), Expiration: bad}); err != nil {
			t.Fatal(err)
		}
		if e := waitClose(t, closed); e == nil || e.Code != amqp091.PreconditionFailed {
			t.Fatalf("expiration %q: close %v, want PRECONDITION_FAILED", bad, e)
		}
		var err error
		if ch, err = conn.Channel(); err != nil {
			t.Fatal(err)
		}
		closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	}
	if n := queueCount(t, ch, "q"); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}
