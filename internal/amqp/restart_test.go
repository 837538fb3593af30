package amqp

import (
	"bytes"
	"fmt"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Integration tests of what survives a broker restart: durable exchanges,
// queues and bindings, and the persistent messages of durable queues that
// were not acknowledged.

// itGot is a message as a test checks it after a restart.
type itGot struct {
	body        string
	redelivered bool
}

// itDrainGot takes every ready message of queue with basic.get (no-ack).
func itDrainGot(t *testing.T, ch *amqp091.Channel, queue string) []itGot {
	t.Helper()
	var out []itGot
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %q: %v", queue, err)
		}
		if !ok {
			return out
		}
		out = append(out, itGot{string(d.Body), d.Redelivered})
	}
}

func itSameGot(t *testing.T, what string, got, want []itGot) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d messages %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: message %d is %+v, want %+v (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

// itConfirmMode puts ch in confirm mode and returns its confirmations.
func itConfirmMode(t *testing.T, ch *amqp091.Channel, capacity int) chan amqp091.Confirmation {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return ch.NotifyPublish(make(chan amqp091.Confirmation, capacity))
}

func TestRestartDurableModelAndMessages(t *testing.T) {
	t.Parallel()
	for _, closeFirst := range []bool{true, false} {
		name := "connection-open-at-restart"
		if closeFirst {
			name = "connection-closed-before-restart"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			itRestartScenario(t, closeFirst)
		})
	}
}

func itRestartScenario(t *testing.T, closeFirst bool) {
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if err := ch.ExchangeDeclare("dx", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("dfan", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("transient-x", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("dq", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("tq", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("exq", true, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	itBind(t, ch, "dq", "k", "dx", nil)
	itBind(t, ch, "tq", "k", "dx", nil)
	itBind(t, ch, "dq", "", "transient-x", nil)
	if err := ch.ExchangeBind("dx", "k", "dfan", false, nil); err != nil {
		t.Fatal(err)
	}

	// p* persistent, t* transient, all through the durable binding.
	order := []string{"p1", "t1", "p2", "p3", "t2", "p4", "p5", "p6", "t3", "p7", "p8"}
	confirms := itConfirmMode(t, ch, len(order))
	for _, b := range order {
		p := amqp091.Publishing{Body: []byte(b), MessageId: "id-" + b, Headers: amqp091.Table{"n": b, "nested": amqp091.Table{"x": int32(1)}}}
		if b[0] == 'p' {
			p.DeliveryMode = amqp091.Persistent
		}
		itPublish(t, ch, "dx", "k", false, p)
	}
	itConfirms(t, confirms, 1, len(order))
	if n := itMessages(t, ch, "tq"); n != len(order) {
		t.Fatalf("tq has %d messages, want %d", n, len(order))
	}

	// p1, t1, p2 acked; p3, t2, p4 delivered and not acked; p5 acked;
	// the rest never delivered.
	gch, _ := c.Channel()
	for i, want := range order[:7] {
		d, ok, err := gch.Get("dq", false)
		if err != nil || !ok || string(d.Body) != want {
			t.Fatalf("get %d: %q ok=%v err=%v, want %q", i, d.Body, ok, err, want)
		}
		switch want {
		case "p1", "t1", "p2", "p5":
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := itMessages(t, gch, "dq"); n != 4 { // also orders the acks
		t.Fatalf("dq has %d ready, want 4", n)
	}
	if n := itUnacked(t, ts, "dq"); n != 3 {
		t.Fatalf("dq has %d unacked, want 3", n)
	}
	if closeFirst {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}

	ts.restart()

	c2, ch2 := ts.channel(t)
	for _, x := range []string{"dx", "dfan"} {
		if !itExchangeExists(t, c2, x) {
			t.Fatalf("durable exchange %s gone after restart", x)
		}
	}
	if itExchangeExists(t, c2, "transient-x") {
		t.Fatal("transient exchange survived the restart")
	}
	if itQueueExists(t, c2, "tq") {
		t.Fatal("transient queue survived the restart")
	}
	if itQueueExists(t, c2, "exq") {
		t.Fatal("exclusive queue survived the restart")
	}
	q, err := ch2.QueueDeclarePassive("dq", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 5 || q.Consumers != 0 {
		t.Fatalf("dq after restart: %d messages, %d consumers; want 5, 0", q.Messages, q.Consumers)
	}
	// The queue is still durable: an equivalent declaration passes, another
	// does not.
	if _, err := ch2.QueueDeclare("dq", true, false, false, false, nil); err != nil {
		t.Fatalf("redeclaring dq durable: %v", err)
	}
	if err := ch2.ExchangeDeclare("dx", "direct", true, false, false, false, nil); err != nil {
		t.Fatalf("redeclaring dx durable: %v", err)
	}
	xch, _ := c2.Channel()
	_, err = xch.QueueDeclare("dq", false, false, false, false, nil)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'dq' in vhost '/': received 'false' but current is 'true'")

	// The persistent messages not acked, in order, with their properties;
	// the delivered ones marked redelivered.
	want := []itGot{{"p3", true}, {"p4", true}, {"p6", false}, {"p7", false}, {"p8", false}}
	var got []itGot
	for {
		d, ok, err := ch2.Get("dq", false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		b := string(d.Body)
		got = append(got, itGot{b, d.Redelivered})
		if d.DeliveryMode != amqp091.Persistent || d.MessageId != "id-"+b || d.Headers["n"] != b || d.Exchange != "dx" || d.RoutingKey != "k" {
			t.Fatalf("%s after restart: mode %d message-id %q headers %v exchange %q key %q", b, d.DeliveryMode, d.MessageId, d.Headers, d.Exchange, d.RoutingKey)
		}
		if nested, _ := d.Headers["nested"].(amqp091.Table); nested["x"] != int32(1) {
			t.Fatalf("%s after restart: nested header %v", b, d.Headers["nested"])
		}
	}
	itSameGot(t, "dq after restart", got, want)
	// Ack p3 and p7; the others go back when the channel closes.
	for tag, b := range map[uint64]string{1: "p3", 4: "p7"} {
		if err := ch2.Ack(tag, false); err != nil {
			t.Fatalf("ack %s: %v", b, err)
		}
	}
	if err := ch2.Close(); err != nil {
		t.Fatal(err)
	}

	// The durable bindings route: directly, and through the durable
	// exchange-to-exchange binding.
	pch, _ := c2.Channel()
	pconf := itConfirmMode(t, pch, 3)
	itPublish(t, pch, "dx", "k", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("post-direct")})
	// dx routes what dfan hands it by the message's own routing key.
	itPublish(t, pch, "dfan", "other", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("post-e2e-miss")})
	itPublish(t, pch, "dfan", "k", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("post-e2e")})
	itConfirms(t, pconf, 1, 3)

	ts.restart()

	_, ch3 := ts.channel(t)
	itSameGot(t, "dq after the second restart", itDrainGot(t, ch3, "dq"), []itGot{
		{"p4", true}, {"p6", true}, {"p8", true}, {"post-direct", false}, {"post-e2e", false},
	})

	// Everything acked (no-ack gets): a third restart finds the queue empty.
	ts.restart()
	_, ch4 := ts.channel(t)
	if n := itMessages(t, ch4, "dq"); n != 0 {
		t.Fatalf("dq has %d messages after everything was acked", n)
	}
}

func TestRestartAfterManyAcks(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("bulk", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	confirms := itConfirmMode(t, ch, n)
	body := func(i int) []byte {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, 1024)
		copy(b, fmt.Sprintf("%06d", i))
		return b
	}
	for i := range n {
		itPublish(t, ch, "", "bulk", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: body(i)})
	}
	itConfirms(t, confirms, 1, n)

	_, cch := ts.channel(t)
	if err := cch.Qos(500, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs := itConsume(t, cch, "bulk", "bulk", false)
	for i := range n {
		d := itRecv(t, msgs)
		if !bytes.Equal(d.Body, body(i)) {
			t.Fatalf("message %d: body starts %q", i, d.Body[:6])
		}
		if (i+1)%250 == 0 {
			if err := d.Ack(true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cch.Cancel("bulk", false); err != nil {
		t.Fatal(err)
	}
	if q := itMessages(t, cch, "bulk"); q != 0 {
		t.Fatalf("%d ready after consuming everything", q)
	}
	if u := itUnacked(t, ts, "bulk"); u != 0 {
		t.Fatalf("%d unacked after acking everything", u)
	}

	ts.restart()

	_, ch2 := ts.channel(t)
	if q := itMessages(t, ch2, "bulk"); q != 0 {
		t.Fatalf("%d messages came back after a restart, all were acked", q)
	}
	if _, ok, err := ch2.Get("bulk", true); err != nil || ok {
		t.Fatalf("get after restart: ok=%v err=%v", ok, err)
	}
	// New messages after the restart are stored and recovered correctly.
	conf2 := itConfirmMode(t, ch2, 2)
	itPublish(t, ch2, "", "bulk", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("after-1")})
	itPublish(t, ch2, "", "bulk", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("after-2")})
	itConfirms(t, conf2, 1, 2)
	d, ok, err := ch2.Get("bulk", false)
	if err != nil || !ok || string(d.Body) != "after-1" {
		t.Fatalf("get: %q ok=%v err=%v", d.Body, ok, err)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	itMessages(t, ch2, "bulk") // orders the ack

	ts.restart()

	_, ch3 := ts.channel(t)
	itSameGot(t, "after the second restart", itDrainGot(t, ch3, "bulk"), []itGot{{"after-2", false}})
}

func TestRestartScatteredAcks(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("scattered", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 300
	confirms := itConfirmMode(t, ch, n)
	for i := range n {
		itPublish(t, ch, "", "scattered", false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(fmt.Sprint(i))})
	}
	itConfirms(t, confirms, 1, n)
	// Consume everything; ack every even message, keep the odd ones.
	_, cch := ts.channel(t)
	msgs := itConsume(t, cch, "scattered", "s", false)
	for i := range n {
		d := itRecv(t, msgs)
		if string(d.Body) != fmt.Sprint(i) {
			t.Fatalf("delivery %d is %q", i, d.Body)
		}
		if i%2 == 0 {
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if u := itMessages(t, cch, "scattered"); u != 0 {
		t.Fatalf("%d ready", u)
	}
	// Restart with the consumer still connected.
	ts.restart()

	_, ch2 := ts.channel(t)
	var want []itGot
	for i := 1; i < n; i += 2 {
		want = append(want, itGot{fmt.Sprint(i), true})
	}
	// Take the first half and ack it; leave the rest.
	for i, w := range want[:len(want)/2] {
		d, ok, err := ch2.Get("scattered", false)
		if err != nil || !ok || (itGot{string(d.Body), d.Redelivered}) != w {
			t.Fatalf("get %d after restart: %q redelivered=%v ok=%v err=%v, want %+v", i, d.Body, d.Redelivered, ok, err, w)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	itMessages(t, ch2, "scattered") // orders the acks

	ts.restart()

	_, ch3 := ts.channel(t)
	itSameGot(t, "after the second restart", itDrainGot(t, ch3, "scattered"), want[len(want)/2:])
}

func TestRestartSettledMessagesStayGone(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if err := ch.ExchangeDeclare("fx", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"dq1", "dq2", "dq3", "dq4", "dq5"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	itBind(t, ch, "dq1", "", "fx", nil)
	itBind(t, ch, "dq2", "", "fx", nil)
	persistent := func(ch *amqp091.Channel, exchange, key, body string) {
		t.Helper()
		itPublish(t, ch, exchange, key, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(body)})
	}
	confirms := itConfirmMode(t, ch, 16)
	for _, b := range itNames("a", 1, 6) {
		persistent(ch, "fx", "", b) // to dq1 and dq2
	}
	for _, b := range itNames("p", 1, 3) {
		persistent(ch, "", "dq3", b)
	}
	persistent(ch, "", "dq4", "old-incarnation")
	itConfirms(t, confirms, 1, 10)

	// dq1: a1 acked, a2 dropped by nack, a3 rejected back to the queue.
	get := func(q, want string) amqp091.Delivery {
		t.Helper()
		d, ok, err := ch.Get(q, false)
		if err != nil || !ok || string(d.Body) != want {
			t.Fatalf("get %s: %q ok=%v err=%v, want %q", q, d.Body, ok, err, want)
		}
		return d
	}
	if err := get("dq1", "a1").Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := get("dq1", "a2").Nack(false, false); err != nil {
		t.Fatal(err)
	}
	if err := get("dq1", "a3").Reject(true); err != nil {
		t.Fatal(err)
	}
	// dq3: purged, then one more message.
	if n, err := ch.QueuePurge("dq3", false); err != nil || n != 3 {
		t.Fatalf("purge: %d %v", n, err)
	}
	// dq4: deleted and declared again; only the new incarnation's message
	// may come back.
	if n, err := ch.QueueDelete("dq4", false, false, false); err != nil || n != 1 {
		t.Fatalf("delete dq4: %d %v", n, err)
	}
	if _, err := ch.QueueDeclare("dq4", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	persistent(ch, "", "dq3", "p4")
	persistent(ch, "", "dq4", "new-incarnation")
	itConfirms(t, confirms, 11, 2)

	// dq5: one committed transaction, one rolled back.
	tch, _ := c.Channel()
	if err := tch.Tx(); err != nil {
		t.Fatal(err)
	}
	persistent(tch, "", "dq5", "committed")
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	persistent(tch, "", "dq5", "rolled-back")
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	persistent(tch, "", "dq5", "never-committed") // pending at restart
	itMessages(t, ch, "dq1")                      // orders the settlements

	ts.restart()

	_, ch2 := ts.channel(t)
	itSameGot(t, "dq1", itDrainGot(t, ch2, "dq1"), []itGot{{"a3", true}, {"a4", false}, {"a5", false}, {"a6", false}})
	var all []itGot
	for _, b := range itNames("a", 1, 6) {
		all = append(all, itGot{b, false})
	}
	itSameGot(t, "dq2", itDrainGot(t, ch2, "dq2"), all)
	itSameGot(t, "dq3", itDrainGot(t, ch2, "dq3"), []itGot{{"p4", false}})
	itSameGot(t, "dq4", itDrainGot(t, ch2, "dq4"), []itGot{{"new-incarnation", false}})
	itSameGot(t, "dq5", itDrainGot(t, ch2, "dq5"), []itGot{{"committed", false}})
}
