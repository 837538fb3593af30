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
