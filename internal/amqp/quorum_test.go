package amqp

import (
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// deliveryCount is a delivery's x-delivery-count header; -1 when absent.
func deliveryCount(t *testing.T, m amqp091.Delivery) int64 {
	t.Helper()
	v, ok := m.Headers["x-delivery-count"]
	if !ok {
		return -1
	}
	n, ok := v.(int64)
	if !ok {
		t.Fatalf("x-delivery-count is %T %v, want a long", v, v)
	}
	return n
}

// nextDelivery waits for a consumer's next delivery.
func nextDelivery(t *testing.T, msgs <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("the consumer ended")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
	}
	return amqp091.Delivery{}
}

// getAck is basic.get with manual acknowledgement, failing when the queue
// is empty.
func getAck(t *testing.T, ch *amqp091.Channel, queue string) amqp091.Delivery {
	t.Helper()
	m, ok, err := ch.Get(queue, false)
	if err != nil {
		t.Fatalf("basic.get %s: %v", queue, err)
	}
	if !ok {
		t.Fatalf("basic.get %s: empty", queue)
	}
	return m
}

// TestAMQPQuorumDeliveryLimit: a quorum queue counts the returns of a
// message (nack and reject with requeue, its channel closing with it
// unacked), delivers it with x-delivery-count, and dead-letters it with
// reason delivery_limit once the count exceeds x-delivery-limit.
func TestAMQPQuorumDeliveryLimit(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.dial(t)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	declareDLX(t, ch, "dead")
	if _, err := ch.QueueDeclare("qq", true, false, false, false, amqp091.Table{
		"x-queue-type": "quorum", "x-delivery-limit": int32(2),
		"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "dead",
	}); err != nil {
		t.Fatal(err)
	}
	if !publishConfirmed(t, ch, "qq", amqp091.Publishing{Body: []byte("poison"), DeliveryMode: amqp091.Persistent, Headers: amqp091.Table{"app": "x"}}) {
		t.Fatal("publish nacked")
	}

	cch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := cch.Consume("qq", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := nextDelivery(t, msgs)
	if n := deliveryCount(t, m); n != -1 || m.Redelivered {
		t.Fatalf("first delivery: x-delivery-count %d redelivered %v, want none and false", n, m.Redelivered)
	}
	if err := m.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	m = nextDelivery(t, msgs)
	if n := deliveryCount(t, m); n != 1 || !m.Redelivered || m.Headers["app"] != "x" {
		t.Fatalf("after a nack: x-delivery-count %d redelivered %v headers %v, want 1, true and the message's own", n, m.Redelivered, m.Headers)
	}
	if err := m.Reject(true); err != nil {
		t.Fatal(err)
	}
	m = nextDelivery(t, msgs)
	if n := deliveryCount(t, m); n != 2 {
		t.Fatalf("after a reject: x-delivery-count %d, want 2", n)
	}
	// The third return (its channel closing) exceeds the limit of 2.
	if err := cch.Close(); err != nil {
		t.Fatal(err)
	}
	d := waitMessage(t, ch, "dlq")
	if string(d.Body) != "poison" {
		t.Fatalf("dead letter %q", d.Body)
	}
	ds := deaths(t, d)
	if len(ds) != 1 {
		t.Fatalf("x-death %v, want one entry", ds)
	}
	wantDeath(t, ds[0], "qq", "delivery_limit", "", []string{"qq"}, 1)
	if d.Headers["x-first-death-reason"] != "delivery_limit" {
		t.Fatalf("x-first-death-reason %v", d.Headers["x-first-death-reason"])
	}
	if n := queueCount(t, ch, "qq"); n != 0 {
		t.Fatalf("qq holds %d messages, want 0", n)
	}
}

// waitMessage gets a message from queue with auto-ack, polling until one
// arrives (dead letters are republished asynchronously).
func waitMessage(t *testing.T, ch *amqp091.Channel, queue string) amqp091.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("basic.get %s: %v", queue, err)
		}
		if ok {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message in %s within 10s", queue)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAMQPQuorumDefaultDeliveryLimit: a quorum queue declared without
// x-delivery-limit has RabbitMQ 4's limit of 20 (the 21st return drops a
// message when there is no dead-letter exchange); a negative limit means
// none; a classic queue neither counts nor limits.
func TestAMQPQuorumDefaultDeliveryLimit(t *testing.T) {
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	for _, q := range []struct {
		name string
		args amqp091.Table
	}{
		{"qq-default", amqp091.Table{"x-queue-type": "quorum"}},
		{"qq-unlimited", amqp091.Table{"x-queue-type": "quorum", "x-delivery-limit": int32(-1)}},
		{"classic", nil},
	} {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			t.Fatal(err)
		}
		if err := ch.Publish("", q.name, false, false, amqp091.Publishing{Body: []byte(q.name)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		for _, name := range []string{"qq-default", "qq-unlimited", "classic"} {
			m := getAck(t, ch, name)
			want := int64(i)
			if i == 0 || name == "classic" {
				want = -1
			}
			if n := deliveryCount(t, m); n != want {
				t.Fatalf("%s delivery %d: x-delivery-count %d, want %d", name, i, n, want)
			}
			if err := m.Nack(false, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"qq-default", "qq-unlimited"} {
		m := getAck(t, ch, name)
		if n := deliveryCount(t, m); n != 20 {
			t.Fatalf("%s: x-delivery-count %d, want 20", name, n)
		}
		if err := m.Nack(false, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := queueCount(t, ch, "qq-default"); n != 0 {
		t.Fatalf("qq-default holds %d messages after 21 returns, want 0", n)
	}
	if m := getAck(t, ch, "qq-unlimited"); deliveryCount(t, m) != 21 {
		t.Fatalf("qq-unlimited: x-delivery-count %d, want 21", deliveryCount(t, m))
	}
	if n := queueCount(t, ch, "classic"); n != 1 {
		t.Fatalf("classic holds %d messages, want 1", n)
	}
}

// TestAMQPQuorumDeliveryCountRestart: a durable quorum queue's delivery
// counts survive a restart of the broker.
func TestAMQPQuorumDeliveryCountRestart(t *testing.T) {
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("qq", true, false, false, false, amqp091.Table{"x-queue-type": "quorum", "x-delivery-limit": int64(3)}); err != nil {
		t.Fatal(err)
	}
	if !publishConfirmed(t, ch, "qq", amqp091.Publishing{Body: []byte("m"), DeliveryMode: amqp091.Persistent}) {
		t.Fatal("publish nacked")
	}
	for range 2 {
		if err := getAck(t, ch, "qq").Nack(false, true); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	ts.restart()
	_, ch = ts.channel(t)
	m := getAck(t, ch, "qq")
	if n := deliveryCount(t, m); n != 2 || !m.Redelivered {
		t.Fatalf("after a restart: x-delivery-count %d redelivered %v, want 2 and true", n, m.Redelivered)
	}
	if err := m.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	if err := getAck(t, ch, "qq").Nack(false, true); err != nil { // the 4th return exceeds the limit
		t.Fatal(err)
	}
	if n := queueCount(t, ch, "qq"); n != 0 {
		t.Fatalf("qq holds %d messages, want 0", n)
	}
}

// TestAMQPQuorumDeclareRules: a quorum queue is durable, not exclusive,
// not auto-delete and not server-named, refused over the wire with 406
// and RabbitMQ's texts; x-delivery-limit is compared on redeclaration.
func TestAMQPQuorumDeclareRules(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.dial(t)
	quorum := amqp091.Table{"x-queue-type": "quorum"}
	for _, tc := range []struct {
		name                         string
		queue                        string
		durable, autoDelete, exclusv bool
		text                         string
	}{
		{"non-durable", "q1", false, false, false, "invalid property 'non-durable' for queue 'q1' in vhost '/'"},
		{"exclusive", "q2", true, false, true, "invalid property 'exclusive-owner' for queue 'q2' in vhost '/'"},
		{"auto-delete", "q3", true, true, false, "invalid property 'auto-delete' for queue 'q3' in vhost '/'"},
		{"server-named", "", true, false, false, "Cannot declare a server-named queue for type rabbit_quorum_queue"},
	} {
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.QueueDeclare(tc.queue, tc.durable, tc.autoDelete, tc.exclusv, false, quorum)
		if amqpErrorCode(err) != amqp091.PreconditionFailed || !strings.Contains(err.Error(), "PRECONDITION_FAILED - "+tc.text+"\"") {
			t.Fatalf("%s: %v, want 406 %q", tc.name, err, tc.text)
		}
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("qq", true, false, false, false, amqp091.Table{"x-queue-type": "quorum", "x-delivery-limit": int32(5)}); err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclare("qq", true, false, false, false, amqp091.Table{"x-queue-type": "quorum", "x-delivery-limit": int32(6)})
	if amqpErrorCode(err) != amqp091.PreconditionFailed || !strings.Contains(err.Error(), "inequivalent arg 'x-delivery-limit'") {
		t.Fatalf("redeclaring with another limit: %v, want 406 inequivalent arg", err)
	}
}
