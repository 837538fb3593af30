package amqp

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Integration tests of single active consumer queues
// (x-single-active-consumer): one consumer receives at a time, the others
// take over in registration order.

// sacNext waits for the next delivery on ds.
func sacNext(t *testing.T, who string, ds <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatalf("%s: deliveries closed", who)
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no delivery within 10s", who)
		return amqp091.Delivery{}
	}
}

func sacPublish(t *testing.T, ch *amqp091.Channel, queue string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := ch.Publish("", queue, false, false, amqp091.Publishing{Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSingleActiveConsumerTakeover(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, pub := ts.channel(t)
	if _, err := pub.QueueDeclare("sac", false, false, false, false, amqp091.Table{"x-single-active-consumer": true}); err != nil {
		t.Fatal(err)
	}
	// Three consumers on three connections, registered in order; each
	// gets consume-ok.
	var chs [3]*amqp091.Channel
	var ds [3]<-chan amqp091.Delivery
	for i := range chs {
		_, chs[i] = ts.channel(t)
		if i == 1 {
			if err := chs[i].Qos(1, 0, false); err != nil {
				t.Fatal(err)
			}
		}
		d, err := chs[i].Consume("sac", fmt.Sprintf("c%d", i), false, false, false, false, nil)
		if err != nil {
			t.Fatalf("consume c%d: %v", i, err)
		}
		ds[i] = d
	}
	if q, err := pub.QueueDeclarePassive("sac", false, false, false, false, nil); err != nil || q.Consumers != 3 {
		t.Fatalf("declare: %+v, %v; want 3 consumers", q, err)
	}

	sacPublish(t, pub, "sac", "m0", "m1", "m2", "m3")
	for i := range 4 {
		d := sacNext(t, "c0", ds[0])
		if string(d.Body) != fmt.Sprintf("m%d", i) || d.Redelivered {
			t.Fatalf("c0 got %q (redelivered %v), want m%d", d.Body, d.Redelivered, i)
		}
		if i == 0 {
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	// All four went to the active consumer: the waiting ones got none.
	if len(ds[1]) != 0 || len(ds[2]) != 0 {
		t.Fatalf("waiting consumers got deliveries: %d and %d", len(ds[1]), len(ds[2]))
	}

	// The active consumer's channel closes: its unacked messages are
	// redelivered to the next registered consumer.
	if err := chs[0].Close(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 4; i++ {
		d := sacNext(t, "c1", ds[1])
		if string(d.Body) != fmt.Sprintf("m%d", i) || !d.Redelivered {
			t.Fatalf("c1 got %q (redelivered %v), want m%d redelivered", d.Body, d.Redelivered, i)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	sacPublish(t, pub, "sac", "m4")
	if d := sacNext(t, "c1", ds[1]); string(d.Body) != "m4" {
		t.Fatalf("c1 got %q, want m4", d.Body)
	}
	// c1 holds m4 unacked at its prefetch of 1, so m5 stays ready (c2
	// does not get it) until the active consumer is cancelled: then the
	// last one takes over and gets it at once.
	sacPublish(t, pub, "sac", "m5")
	if q, err := pub.QueueDeclarePassive("sac", false, false, false, false, nil); err != nil || q.Messages != 1 {
		t.Fatalf("declare: %+v, %v; want m5 ready", q, err)
	}
	if len(ds[2]) != 0 {
		t.Fatalf("c2 got %d deliveries while c1 was active", len(ds[2]))
	}
	if err := chs[1].Cancel("c1", false); err != nil {
		t.Fatal(err)
	}
	if d := sacNext(t, "c2", ds[2]); string(d.Body) != "m5" || d.Redelivered {
		t.Fatalf("c2 got %q (redelivered %v), want m5", d.Body, d.Redelivered)
	}
}

// TestSingleActiveConsumerPriority: a quorum queue's active consumer is
// the one with the highest x-priority. A consumer of higher priority than
// the active one takes over once the active one has no unacknowledged
// deliveries: meanwhile new messages wait. When the active consumer
// goes, the highest priority left takes over. A classic queue ignores
// priorities: the first registered consumer stays active.
func TestSingleActiveConsumerPriority(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	pub := confirmedChannel(t, ts)
	for _, q := range []struct {
		name string
		args amqp091.Table
	}{
		{"qsac", amqp091.Table{"x-single-active-consumer": true, "x-queue-type": "quorum"}},
		{"csac", amqp091.Table{"x-single-active-consumer": true}},
	} {
		if _, err := pub.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			t.Fatal(err)
		}
	}
	chans := map[string]*amqp091.Channel{}
	consume := func(queue, tag string, priority int32) <-chan amqp091.Delivery {
		_, ch := ts.channel(t)
		d, err := ch.Consume(queue, tag, false, false, false, false, amqp091.Table{"x-priority": priority})
		if err != nil {
			t.Fatalf("consume %s: %v", tag, err)
		}
		chans[tag] = ch
		return d
	}
	send := func(queue, body string) {
		if !publishConfirmed(t, pub, queue, amqp091.Publishing{Body: []byte(body)}) {
			t.Fatal("publish nacked")
		}
	}
	ready := func(queue string) int { return queueCount(t, pub, queue) }

	low := consume("qsac", "low", 1)
	mid := consume("qsac", "mid", 5)
	// mid registered second with a higher priority; low had nothing
	// unacknowledged, so mid is active at once.
	send("qsac", "m0")
	d0 := sacNext(t, "mid", mid)
	if string(d0.Body) != "m0" {
		t.Fatalf("mid got %q, want m0", d0.Body)
	}
	// high registers while mid holds m0: m1 waits for mid to settle it.
	high := consume("qsac", "high", 10)
	send("qsac", "m1")
	if n := ready("qsac"); n != 1 {
		t.Fatalf("qsac has %d ready, want m1 waiting for the switch", n)
	}
	if err := d0.Ack(false); err != nil {
		t.Fatal(err)
	}
	if d := sacNext(t, "high", high); string(d.Body) != "m1" {
		t.Fatalf("high got %q, want m1", d.Body)
	} else if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if len(low) != 0 || len(mid) != 0 {
		t.Fatalf("inactive consumers got deliveries: low %d, mid %d", len(low), len(mid))
	}
	// Cancelling the active consumer hands the queue to the highest
	// priority left.
	if err := chans["high"].Cancel("high", false); err != nil {
		t.Fatal(err)
	}
	send("qsac", "m2")
	if d := sacNext(t, "mid", mid); string(d.Body) != "m2" {
		t.Fatalf("mid got %q, want m2", d.Body)
	}
	if len(low) != 0 {
		t.Fatalf("low got %d deliveries", len(low))
	}

	// The classic queue: the first registered stays active.
	first := consume("csac", "first", 0)
	second := consume("csac", "second", 10)
	send("csac", "c0")
	if d := sacNext(t, "first", first); string(d.Body) != "c0" {
		t.Fatalf("first got %q, want c0", d.Body)
	}
	if len(second) != 0 {
		t.Fatalf("the classic queue delivered %d to a later consumer of higher priority", len(second))
	}
}
