package amqp

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// queueExists reports whether a queue exists (passive queue.declare on a
// channel of its own, since a 404 closes it).
func queueExists(t *testing.T, ts *testServer, name string) bool {
	t.Helper()
	_, ch := ts.channel(t)
	_, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	if err == nil {
		return true
	}
	if amqpErrorCode(err) != amqp091.NotFound {
		t.Fatalf("passive declare %s: %v", name, err)
	}
	return false
}

// sweep runs the broker's queue expiry now, as its one-second sweep does.
func sweep(t *testing.T, ts *testServer) {
	t.Helper()
	if err := ts.b.ExpireQueues(t.Context()); err != nil {
		t.Fatalf("expiring queues: %v", err)
	}
}

// TestAMQPQueueExpires: a queue unused for its x-expires period is
// deleted with its messages; redeclaring, basic.get and consumers renew
// the lease, and the last consumer's cancel starts a new one.
func TestAMQPQueueExpires(t *testing.T) {
	ts, clk := startClockServer(t, Options{})
	_, ch := ts.channel(t)
	args := amqp091.Table{"x-expires": int32(1000)}
	for _, durable := range []bool{true, false} {
		if _, err := ch.QueueDeclare("lease", durable, false, false, false, args); err != nil {
			t.Fatal(err)
		}
		if err := ch.Publish("", "lease", false, false, amqp091.Publishing{Body: []byte("m"), DeliveryMode: amqp091.Persistent}); err != nil {
			t.Fatal(err)
		}
		clk.advance(999)
		sweep(t, ts)
		if !queueExists(t, ts, "lease") {
			t.Fatal("expired before its period")
		}
		// Redeclaring renews the lease.
		if _, err := ch.QueueDeclare("lease", durable, false, false, false, args); err != nil {
			t.Fatal(err)
		}
		clk.advance(999)
		sweep(t, ts)
		if !queueExists(t, ts, "lease") {
			t.Fatal("expired although redeclared")
		}
		// So does basic.get, even on an empty queue.
		getBody(t, ch, "lease")
		clk.advance(999)
		sweep(t, ts)
		if !queueExists(t, ts, "lease") {
			t.Fatal("expired although basic.get used it")
		}
		clk.advance(1)
		sweep(t, ts)
		if queueExists(t, ts, "lease") {
			t.Fatal("still there after its period unused")
		}
	}

	// A consumer keeps the queue in use however long; its cancel starts
	// the lease.
	if _, err := ch.QueueDeclare("consumed", false, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	_, cch := ts.channel(t)
	if _, err := cch.Consume("consumed", "c", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	clk.advance(10_000)
	sweep(t, ts)
	if !queueExists(t, ts, "consumed") {
		t.Fatal("a queue with a consumer expired")
	}
	if err := cch.Cancel("c", false); err != nil {
		t.Fatal(err)
	}
	clk.advance(999)
	sweep(t, ts)
	if !queueExists(t, ts, "consumed") {
		t.Fatal("expired before its period after the cancel")
	}
	clk.advance(1)
	sweep(t, ts)
	if queueExists(t, ts, "consumed") {
		t.Fatal("still there after its period without consumers")
	}
}

// TestAMQPQueueExpiresRestart: a durable queue's lease starts again when
// the broker restarts; it is still deleted once unused for the period.
func TestAMQPQueueExpiresRestart(t *testing.T) {
	ts, clk := startClockServer(t, Options{})
	_, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("durable-lease", true, false, false, false, amqp091.Table{"x-expires": int64(1000)}); err != nil {
		t.Fatal(err)
	}
	clk.advance(500)
	ts.restart()
	clk.advance(999)
	sweep(t, ts)
	if !queueExists(t, ts, "durable-lease") {
		t.Fatal("expired within the period after the restart")
	}
	clk.advance(1)
	sweep(t, ts)
	if queueExists(t, ts, "durable-lease") {
		t.Fatal("still there after its period")
	}
	ts.restart()
	if queueExists(t, ts, "durable-lease") {
		t.Fatal("an expired queue came back after a restart")
	}
}
