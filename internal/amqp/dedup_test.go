package amqp

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// dedupArgs are the arguments of a deduplicating queue or exchange
// remembering the last size ids.
func dedupArgs(size int32) amqp091.Table {
	return amqp091.Table{"x-message-deduplication": true, "x-deduplication-window-size": size}
}

// publishIDConfirmed publishes body with message_id id (none when empty)
// through exchange and returns the broker's confirm: true for basic.ack.
func publishIDConfirmed(t *testing.T, ch *amqp091.Channel, exchange, key, id, body string, persistent, mandatory bool) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	mode := uint8(amqp091.Transient)
	if persistent {
		mode = amqp091.Persistent
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, mandatory, false,
		amqp091.Publishing{MessageId: id, Body: []byte(body), DeliveryMode: mode, ContentType: "text/plain", CorrelationId: "c"})
	if err != nil {
		t.Fatalf("publish %q: %v", body, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		t.Fatalf("waiting for the confirm of %q: %v", body, err)
	}
	return ok
}

// mustAck publishes and fails the test unless the broker acks.
func mustAck(t *testing.T, ch *amqp091.Channel, exchange, key, id, body string, persistent bool) {
	t.Helper()
	if !publishIDConfirmed(t, ch, exchange, key, id, body, persistent, false) {
		t.Fatalf("publish of %q (id %q) was nacked", body, id)
	}
}

// wantQueue drains a queue with basic.get and checks its bodies.
func wantQueue(t *testing.T, ch *amqp091.Channel, queue string, want ...string) {
	t.Helper()
	wantBodies(t, "queue "+queue, drainBodies(t, ch, queue), want...)
}

// TestAMQPDedupQueue: a queue with x-message-deduplication acks a
// duplicate message_id and does not enqueue it; once the id left the
// window (by count) it is enqueued again; a message without a message_id
// is never a duplicate; another queue the same publish reaches is
// unaffected.
func TestAMQPDedupQueue(t *testing.T) {
	ts := startServer(t, Options{})
	ch := confirmedChannel(t, ts)
	if _, err := ch.QueueDeclare("dq", true, false, false, false, dedupArgs(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("plain", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("fan", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"dq", "plain"} {
		if err := ch.QueueBind(q, "", "fan", false, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustAck(t, ch, "fan", "", "a", "a1", true)
	mustAck(t, ch, "fan", "", "a", "a2", true) // duplicate: acked, not enqueued in dq
	mustAck(t, ch, "fan", "", "b", "b1", false)
	mustAck(t, ch, "fan", "", "c", "c1", true) // window of 2: a leaves
	mustAck(t, ch, "fan", "", "a", "a3", true)
	mustAck(t, ch, "fan", "", "c", "c2", true)
	mustAck(t, ch, "fan", "", "", "n1", true)
	mustAck(t, ch, "fan", "", "", "n2", true)
	wantQueue(t, ch, "dq", "a1", "b1", "c1", "a3", "n1", "n2")
	wantQueue(t, ch, "plain", "a1", "a2", "b1", "c1", "a3", "c2", "n1", "n2")
}

// TestAMQPDedupTimeWindow: with x-deduplication-window-ms an id is a
// duplicate until that long after it was first accepted (the broker's
// clock is moved by hand).
func TestAMQPDedupTimeWindow(t *testing.T) {
	ts, clk := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	args := amqp091.Table{"x-message-deduplication": true, "x-deduplication-window-ms": int32(1000)}
	if _, err := ch.QueueDeclare("tq", false, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	mustAck(t, ch, "", "tq", "x", "x1", false)
	clk.advance(999)
	mustAck(t, ch, "", "tq", "x", "x2", false)
	clk.advance(1)
	mustAck(t, ch, "", "tq", "x", "x3", false)
	wantQueue(t, ch, "tq", "x1", "x3")
}

// TestAMQPDedupExchange: a deduplicating exchange acks a duplicate and
// routes it nowhere, without a basic.return even when it is mandatory.
func TestAMQPDedupExchange(t *testing.T) {
	ts := startServer(t, Options{})
	ch := confirmedChannel(t, ts)
	returns := ch.NotifyReturn(make(chan amqp091.Return, 4))
	if err := ch.ExchangeDeclare("dx", "direct", true, false, false, false, dedupArgs(100)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"q1", "q2"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q, "k", "dx", false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, body := range []string{"e1", "e2", "e3"} {
		if !publishIDConfirmed(t, ch, "dx", "k", "e", body, true, true) {
			t.Fatalf("%s nacked", body)
		}
	}
	// An unroutable message's id is remembered too: its duplicate is not
	// returned (the first was).
	if !publishIDConfirmed(t, ch, "dx", "nowhere", "u", "u1", false, true) || !publishIDConfirmed(t, ch, "dx", "nowhere", "u", "u2", false, true) {
		t.Fatal("unroutable publish nacked")
	}
	// The return is sent before the ack, so it has arrived by now.
	var got []string
	for len(returns) > 0 {
		r := <-returns
		got = append(got, string(r.Body))
	}
	if !slices.Equal(got, []string{"u1"}) {
		t.Fatalf("returned %q, want only u1", got)
	}
	wantQueue(t, ch, "q1", "e1")
	wantQueue(t, ch, "q2", "e1")
}

// TestAMQPDedupTransaction: in a transaction the window decides at
// tx.commit; a duplicate within one transaction is dropped.
func TestAMQPDedupTransaction(t *testing.T) {
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	if err := ch.ExchangeDeclare("tx-dx", "fanout", false, false, false, false, dedupArgs(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("tx-q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("tx-q", "", "tx-dx", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"t1", "t2"} {
		if err := ch.PublishWithContext(t.Context(), "tx-dx", "", false, false, amqp091.Publishing{MessageId: "t", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	wantQueue(t, ch, "tx-q", "t1")
}

// TestAMQPDedupArguments: invalid deduplication arguments are 406 with
// RabbitMQ-style reasons, on queues and exchanges; redeclaring with other
// values is 406 inequivalent.
func TestAMQPDedupArguments(t *testing.T) {
	ts := startServer(t, Options{})
	conn := ts.dial(t)
	for _, c := range []struct {
		exchange bool
		args     amqp091.Table
		text     string
	}{
		{false, amqp091.Table{"x-message-deduplication": "yes"}, "invalid arg 'x-message-deduplication' for queue 'bad' in vhost '/': {unacceptable_type,longstr}"},
		{false, amqp091.Table{"x-message-deduplication": true, "x-deduplication-window-size": int32(-1)}, "invalid arg 'x-deduplication-window-size' for queue 'bad' in vhost '/': {value_negative,-1}"},
		{false, amqp091.Table{"x-deduplication-window-size": int32(5)}, "invalid arg 'x-deduplication-window-size' for queue 'bad' in vhost '/': window_but_no_deduplication"},
		{true, amqp091.Table{"x-message-deduplication": true, "x-deduplication-window-ms": int32(0)}, "invalid arg 'x-deduplication-window-ms' for exchange 'bad' in vhost '/': {value_zero,0}"},
		{true, amqp091.Table{"x-message-deduplication": int32(1)}, "invalid arg 'x-message-deduplication' for exchange 'bad' in vhost '/': {unacceptable_type,signedint}"},
	} {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if c.exchange {
			err = ch.ExchangeDeclare("bad", "direct", false, false, false, false, c.args)
		} else {
			_, err = ch.QueueDeclare("bad", false, false, false, false, c.args)
		}
		if amqpErrorCode(err) != 406 || !strings.Contains(err.Error(), c.text) {
			t.Fatalf("declare with %v: %v, want 406 %q", c.args, err, c.text)
		}
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("dq", false, false, false, false, dedupArgs(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("dq", false, false, false, false, dedupArgs(5)); err != nil {
		t.Fatalf("equivalent redeclaration: %v", err)
	}
	_, err = ch.QueueDeclare("dq", false, false, false, false, dedupArgs(6))
	if amqpErrorCode(err) != 406 || !strings.Contains(err.Error(), "inequivalent arg 'x-deduplication-window-size'") {
		t.Fatalf("inequivalent redeclaration: %v", err)
	}
	if ch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("dx", "topic", false, false, false, false, dedupArgs(5)); err != nil {
		t.Fatal(err)
	}
	err = ch.ExchangeDeclare("dx", "topic", false, false, false, false, nil)
	if amqpErrorCode(err) != 406 || !strings.Contains(err.Error(), "inequivalent arg 'x-message-deduplication'") {
		t.Fatalf("inequivalent exchange redeclaration: %v", err)
	}
}

// TestAMQPDedupAfterRestart: a durable queue and a durable exchange still
// drop duplicates of confirmed persistent messages after the broker
// restarts; a transient message's id is forgotten with the message.
func TestAMQPDedupAfterRestart(t *testing.T) {
	ts := startServer(t, Options{})
	ch := confirmedChannel(t, ts)
	if _, err := ch.QueueDeclare("rq", true, false, false, false, dedupArgs(100)); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("rx", "fanout", true, false, false, false, dedupArgs(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("rxq", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("rxq", "", "rx", false, nil); err != nil {
		t.Fatal(err)
	}
	mustAck(t, ch, "", "rq", "p", "p1", true)
	mustAck(t, ch, "", "rq", "t", "t1", false)
	mustAck(t, ch, "rx", "", "p", "xp1", true)
	mustAck(t, ch, "rx", "", "t", "xt1", false)

	ts.restart()
	ch = confirmedChannel(t, ts)
	mustAck(t, ch, "", "rq", "p", "p2", true)
	mustAck(t, ch, "", "rq", "t", "t2", true)
	mustAck(t, ch, "rx", "", "p", "xp2", true)
	mustAck(t, ch, "rx", "", "t", "xt2", true)
	wantQueue(t, ch, "rq", "p1", "t2")
	wantQueue(t, ch, "rxq", "xp1", "xt2")
}
