package amqp

import (
	"fmt"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Integration tests of priority queues (x-max-priority): highest priority
// first, FIFO within a priority, across requeues and restarts.

// prioMsg is a message to publish: its body and priority (-1: none).
type prioMsg struct {
	body string
	prio int
}

// prioMix is published to a queue with x-max-priority 5: 9 counts as 5,
// no priority as 0. Delivered, it comes out as prioOrder.
var prioMix = []prioMsg{{"a", -1}, {"b", 3}, {"c", 9}, {"d", 5}, {"e", 3}, {"f", -1}, {"g", 1}, {"h", 0}}

var prioOrder = []string{"c", "d", "b", "e", "g", "a", "f", "h"}

// prioPublish publishes msgs and waits for their confirmations.
func prioPublish(t *testing.T, ch *amqp091.Channel, confirms chan amqp091.Confirmation, queue string, persistent bool, msgs ...prioMsg) {
	t.Helper()
	for _, m := range msgs {
		p := amqp091.Publishing{Body: []byte(m.body)}
		if m.prio >= 0 {
			p.Priority = uint8(m.prio)
		}
		if persistent {
			p.DeliveryMode = amqp091.Persistent
		}
		if err := ch.Publish("", queue, false, false, p); err != nil {
			t.Fatal(err)
		}
	}
	for range msgs {
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish %d nacked", c.DeliveryTag)
		}
	}
}

func prioDeclare(t *testing.T, ch *amqp091.Channel, name string, durable bool) {
	t.Helper()
	if _, err := ch.QueueDeclare(name, durable, false, false, false, amqp091.Table{"x-max-priority": int32(5)}); err != nil {
		t.Fatal(err)
	}
}

func TestPriorityQueueOrderAndRequeue(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	confirms := itConfirmMode(t, ch, 16)
	prioDeclare(t, ch, "pq", false)
	prioPublish(t, ch, confirms, "pq", false, prioMix...)

	// A consumer attached after the mix is published gets it highest
	// priority first.
	_, cch := ts.channel(t)
	ds, err := cch.Consume("pq", "c", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var last amqp091.Delivery
	for i, want := range prioOrder {
		last = sacNext(t, "consumer", ds)
		if string(last.Body) != want || last.Redelivered {
			t.Fatalf("delivery %d is %q (redelivered %v), want %q", i, last.Body, last.Redelivered, want)
		}
	}
	if err := cch.Cancel("c", false); err != nil {
		t.Fatal(err)
	}

	// Two more arrive while all are out; then all are requeued. Each goes
	// back to its priority, ahead of the newcomers of that priority.
	prioPublish(t, ch, confirms, "pq", false, prioMsg{"i", 4}, prioMsg{"j", -1}, prioMsg{"k", 5})
	if err := last.Nack(true, true); err != nil {
		t.Fatal(err)
	}
	// The nack went on the consumer's channel: a synchronous method on
	// that channel returns once it has been handled.
	if _, err := cch.QueueDeclarePassive("pq", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		d, ok, err := ch.Get("pq", true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%s/%v", d.Body, d.Redelivered))
	}
	want := []string{"c/true", "d/true", "k/false", "i/false", "b/true", "e/true", "g/true", "a/true", "f/true", "h/true", "j/false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after requeue got %v, want %v", got, want)
	}
}

func TestPriorityQueueRestart(t *testing.T) {
	t.Parallel()
	for _, mem := range []int64{0, 1} { // 1 byte: every stored message is paged out
		t.Run(fmt.Sprintf("memory %d", mem), func(t *testing.T) {
			ts := &testServer{t: t, dir: t.TempDir(), queueMemory: mem}
			ts.start()
			t.Cleanup(ts.stop)
			_, ch := ts.channel(t)
			confirms := itConfirmMode(t, ch, 16)
			prioDeclare(t, ch, "dpq", true)
			prioPublish(t, ch, confirms, "dpq", true, prioMix...)
			// One delivered and requeued before the restart keeps its
			// priority too.
			d, ok, err := ch.Get("dpq", false)
			if err != nil || !ok || string(d.Body) != "c" {
				t.Fatalf("get: %q, %v, %v; want c", d.Body, ok, err)
			}
			if err := d.Nack(false, true); err != nil {
				t.Fatal(err)
			}
			ts.restart()

			_, ch = ts.channel(t)
			// The order is checked, and that c is flagged redelivered. The
			// flag of the others is not: the queue's delivery mark is an
			// offset, so those stored before c (a and b) may be flagged
			// too, which the redelivered flag allows (it means "may have
			// been delivered").
			got := itDrainGot(t, ch, "dpq")
			var bodies []string
			for _, g := range got {
				bodies = append(bodies, g.body)
			}
			if fmt.Sprint(bodies) != fmt.Sprint(prioOrder) {
				t.Fatalf("after restart got %v, want %v", bodies, prioOrder)
			}
			if !got[0].redelivered {
				t.Fatalf("c, delivered before the restart, is not flagged redelivered: %v", got)
			}
		})
	}
}
