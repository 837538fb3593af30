package amqp

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// getMessage is basic.get with auto-ack, failing when the queue is empty.
func getMessage(t *testing.T, ch *amqp091.Channel, queue string) amqp091.Delivery {
	t.Helper()
	m, ok, err := ch.Get(queue, true)
	if err != nil {
		t.Fatalf("basic.get %s: %v", queue, err)
	}
	if !ok {
		t.Fatalf("basic.get %s: empty", queue)
	}
	return m
}

// deaths returns a message's x-death entries.
func deaths(t *testing.T, m amqp091.Delivery) []amqp091.Table {
	t.Helper()
	arr, ok := m.Headers["x-death"].([]any)
	if !ok {
		t.Fatalf("x-death is %T %v, want an array", m.Headers["x-death"], m.Headers["x-death"])
	}
	out := make([]amqp091.Table, len(arr))
	for i, e := range arr {
		if out[i], ok = e.(amqp091.Table); !ok {
			t.Fatalf("x-death[%d] is %T, want a table", i, e)
		}
	}
	return out
}

func wantDeath(t *testing.T, d amqp091.Table, queue, reason, exchange string, keys []string, count int64) {
	t.Helper()
	if d["queue"] != queue || d["reason"] != reason || d["exchange"] != exchange || d["count"] != count {
		t.Fatalf("x-death entry %v, want queue %s reason %s exchange %q count %d", d, queue, reason, exchange, count)
	}
	rk, _ := d["routing-keys"].([]any)
	if len(rk) != len(keys) {
		t.Fatalf("routing-keys %v, want %v", rk, keys)
	}
	for i := range keys {
		if rk[i] != keys[i] {
			t.Fatalf("routing-keys %v, want %v", rk, keys)
		}
	}
	if _, ok := d["time"].(time.Time); !ok {
		t.Fatalf("x-death time is %T, want a timestamp", d["time"])
	}
}

// declareDLX declares a direct exchange "dlx" and a durable queue "dlq"
// bound to it with key.
func declareDLX(t *testing.T, ch *amqp091.Channel, key string) {
	t.Helper()
	if err := ch.ExchangeDeclare("dlx", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("dlq", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("dlq", key, "dlx", false, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAMQPDeadLetterRejected: basic.reject and basic.nack without requeue
// dead-letter to x-dead-letter-exchange with x-dead-letter-routing-key,
// recording x-death and the first and last death headers; requeue does
// not dead-letter. Durable and transient queues alike.
func TestAMQPDeadLetterRejected(t *testing.T) {
	ts, clk := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	declareDLX(t, ch, "dead")
	for _, durable := range []bool{true, false} {
		name := map[bool]string{false: "work-transient", true: "work-durable"}[durable]
		if _, err := ch.QueueDeclare(name, durable, false, false, false, amqp091.Table{
			"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "dead"}); err != nil {
			t.Fatal(err)
		}
		publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("one"), DeliveryMode: amqp091.Persistent,
			Headers: amqp091.Table{"app": "kept", "CC": []any{"cc-key"}}})
		publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("two")})
		m1, ok, err := ch.Get(name, false)
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		if err := m1.Reject(true); err != nil { // requeued: stays
			t.Fatal(err)
		}
		if n := queueCount(t, ch, name); n != 2 {
			t.Fatalf("%d messages after a requeue, want 2", n)
		}
		m1, _, _ = ch.Get(name, false)
		if err := m1.Reject(false); err != nil {
			t.Fatal(err)
		}
		m2, _, _ := ch.Get(name, false)
		if err := m2.Nack(false, false); err != nil {
			t.Fatal(err)
		}
		if n := queueCount(t, ch, name); n != 0 {
			t.Fatalf("%d messages left, want 0", n)
		}
		d := getMessage(t, ch, "dlq")
		if string(d.Body) != "one" || d.Exchange != "dlx" || d.RoutingKey != "dead" || d.DeliveryMode != amqp091.Persistent {
			t.Fatalf("dead letter %q from %q key %q mode %d", d.Body, d.Exchange, d.RoutingKey, d.DeliveryMode)
		}
		if d.Headers["app"] != "kept" {
			t.Fatalf("headers %v lost app", d.Headers)
		}
		if _, ok := d.Headers["CC"]; ok {
			t.Fatalf("CC kept with a dead-letter routing key: %v", d.Headers)
		}
		ds := deaths(t, d)
		if len(ds) != 1 {
			t.Fatalf("x-death %v, want one entry", ds)
		}
		wantDeath(t, ds[0], name, "rejected", "", []string{name, "cc-key"}, 1)
		if got := ds[0]["time"].(time.Time).Unix(); got != clk.now().Unix() {
			t.Fatalf("x-death time %d, want %d", got, clk.now().Unix())
		}
		for k, v := range map[string]string{"x-first-death-reason": "rejected", "x-first-death-queue": name, "x-first-death-exchange": "",
			"x-last-death-reason": "rejected", "x-last-death-queue": name, "x-last-death-exchange": ""} {
			if d.Headers[k] != v {
				t.Fatalf("%s = %v, want %q", k, d.Headers[k], v)
			}
		}
		if d2 := getMessage(t, ch, "dlq"); string(d2.Body) != "two" {
			t.Fatalf("second dead letter %q, want two", d2.Body)
		}
	}
}

// TestAMQPDeadLetterExpired: expired messages are dead-lettered with
// reason expired, their own routing key when the queue has no
// dead-letter routing key, and original-expiration in place of the
// expiration they lose.
func TestAMQPDeadLetterExpired(t *testing.T) {
	ts, clk := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	declareDLX(t, ch, "short")
	if _, err := ch.QueueDeclare("short", true, false, false, false, amqp091.Table{"x-dead-letter-exchange": "dlx"}); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, ch, "short", amqp091.Publishing{Body: []byte("e"), Expiration: "250", DeliveryMode: amqp091.Persistent})
	clk.advance(250)
	if n := queueCount(t, ch, "short"); n != 0 {
		t.Fatalf("%d messages, want 0", n)
	}
	d := getMessage(t, ch, "dlq")
	if d.Expiration != "" {
		t.Fatalf("dead letter keeps expiration %q", d.Expiration)
	}
	ds := deaths(t, d)
	wantDeath(t, ds[0], "short", "expired", "", []string{"short"}, 1)
	if ds[0]["original-expiration"] != "250" {
		t.Fatalf("original-expiration %v, want 250", ds[0]["original-expiration"])
	}
}

// TestAMQPDeadLetterCycle: rejection may dead-letter a message back to
// its own queue, x-death counting each time in one entry per queue and
// reason; expiry back into the queue it expired from is a cycle without a
// rejection, and the message is dropped.
func TestAMQPDeadLetterCycle(t *testing.T) {
	ts, clk := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	// Dead letters go to the default exchange with the message's own key:
	// back to the queue they came from.
	if _, err := ch.QueueDeclare("loop", false, false, false, false, amqp091.Table{
		"x-dead-letter-exchange": "", "x-message-ttl": int32(1000)}); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, ch, "loop", amqp091.Publishing{Body: []byte("r")})
	for i := int64(1); i <= 2; i++ {
		m, ok, err := ch.Get("loop", false)
		if err != nil || !ok {
			t.Fatalf("round %d: get %v %v", i, ok, err)
		}
		if i > 1 {
			ds := deaths(t, m)
			wantDeath(t, ds[0], "loop", "rejected", "", []string{"loop"}, i-1)
		}
		if err := m.Reject(false); err != nil {
			t.Fatal(err)
		}
		if n := queueCount(t, ch, "loop"); n != 1 {
			t.Fatalf("round %d: %d messages, want the rejected one back", i, n)
		}
	}
	clk.advance(1000)
	// Expiring now would send it back to the queue it expired from with
	// no rejection since: a cycle, so it is dropped.
	if n := queueCount(t, ch, "loop"); n != 0 {
		t.Fatalf("%d messages after expiry, want 0 (a cycle is dropped)", n)
	}
	publishConfirmed(t, ch, "loop", amqp091.Publishing{Body: []byte("x")})
	clk.advance(1000)
	if n := queueCount(t, ch, "loop"); n != 0 {
		t.Fatalf("%d messages after a fresh message expired, want 0", n)
	}
}
