package amqp

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// startTimeoutServer starts a server whose consumer timeout default is
// timeout, checked often, on a manual clock shared with the broker.
func startTimeoutServer(t *testing.T, timeout time.Duration) (*testServer, *manualClock) {
	t.Helper()
	clk := newManualClock()
	ts := &testServer{t: t, dir: t.TempDir(), now: clk.now,
		opts: Options{Now: clk.now, ConsumerTimeout: timeout, ConsumerTimeoutCheck: 5 * time.Millisecond}}
	ts.start()
	t.Cleanup(ts.stop)
	return ts, clk
}

func timeoutText(channel, ms string) string {
	return "PRECONDITION_FAILED - delivery acknowledgement on channel " + channel + " timed out. Timeout value used: " + ms +
		" ms. This timeout value can be configured, see consumers doc guide to learn more"
}

// TestAMQPConsumerTimeout: a delivery to a consumer left unacknowledged
// past the server's consumer timeout closes its channel with 406 and
// RabbitMQ's text; the unacknowledged message is requeued and redelivered,
// an acknowledged one is not, and the connection stays open.
func TestAMQPConsumerTimeout(t *testing.T) {
	ts, clk := startTimeoutServer(t, 30*time.Minute)
	c := ts.dial(t)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("work", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"m0", "m1"} {
		if !publishConfirmed(t, ch, "work", amqp091.Publishing{Body: []byte(b)}) {
			t.Fatal("publish nacked")
		}
	}
	msgs, err := ch.Consume("work", "slow", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := nextDelivery(t, msgs); string(m.Body) != "m0" {
		t.Fatalf("got %q, want m0", m.Body)
	} else if err := m.Ack(false); err != nil {
		t.Fatal(err)
	}
	if m := nextDelivery(t, msgs); string(m.Body) != "m1" {
		t.Fatalf("got %q, want m1", m.Body)
	}
	// A reply on the channel: the server has handled the ack before it.
	queueCount(t, ch, "work")
	clk.advance(30*60*1000 + 1)
	e := waitClose(t, closed)
	if e.Code != amqp091.PreconditionFailed || e.Reason != timeoutText("1", "1800000") {
		t.Fatalf("channel closed with %d %q, want 406 %q", e.Code, e.Reason, timeoutText("1", "1800000"))
	}
	ch2, err := c.Channel()
	if err != nil {
		t.Fatalf("the connection did not stay open: %v", err)
	}
	m := waitMessage(t, ch2, "work")
	if string(m.Body) != "m1" || !m.Redelivered {
		t.Fatalf("got %q redelivered %v, want m1 redelivered", m.Body, m.Redelivered)
	}
	if n := queueCount(t, ch2, "work"); n != 0 {
		t.Fatalf("work holds %d messages, want 0", n)
	}
}

// TestAMQPConsumerTimeoutQueueArgument: a queue's x-consumer-timeout
// overrides the server's default, for basic.get deliveries too; the
// requeue counts as a return in a quorum queue.
func TestAMQPConsumerTimeoutQueueArgument(t *testing.T) {
	ts, clk := startTimeoutServer(t, 30*time.Minute)
	c := ts.dial(t)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("qt", true, false, false, false, amqp091.Table{"x-queue-type": "quorum", "x-consumer-timeout": int32(5000)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if !publishConfirmed(t, ch, "qt", amqp091.Publishing{Body: []byte("m")}) {
		t.Fatal("publish nacked")
	}
	gch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := gch.NotifyClose(make(chan *amqp091.Error, 1))
	getAck(t, gch, "qt")
	clk.advance(5001)
	e := waitClose(t, closed)
	if e.Code != amqp091.PreconditionFailed || e.Reason != timeoutText("2", "5000") {
		t.Fatalf("channel closed with %d %q, want 406 %q", e.Code, e.Reason, timeoutText("2", "5000"))
	}
	m := waitMessage(t, ch, "qt")
	if !m.Redelivered || deliveryCount(t, m) != 1 {
		t.Fatalf("redelivered %v x-delivery-count %d, want true and 1", m.Redelivered, deliveryCount(t, m))
	}
}

// TestAMQPConsumerTimeoutConsumerArgument: a consumer's x-consumer-timeout
// argument takes precedence over its queue's and the server's.
func TestAMQPConsumerTimeoutConsumerArgument(t *testing.T) {
	ts, clk := startTimeoutServer(t, 30*time.Minute)
	c := ts.dial(t)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("qc", true, false, false, false, amqp091.Table{"x-queue-type": "quorum", "x-consumer-timeout": int32(60000)}); err != nil {
		t.Fatal(err)
	}
	if !publishConfirmed(t, ch, "qc", amqp091.Publishing{Body: []byte("m")}) {
		t.Fatal("publish nacked")
	}
	cch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := cch.NotifyClose(make(chan *amqp091.Error, 1))
	msgs, err := cch.Consume("qc", "quick", false, false, false, false, amqp091.Table{"x-consumer-timeout": int64(2000)})
	if err != nil {
		t.Fatal(err)
	}
	nextDelivery(t, msgs)
	clk.advance(2001)
	e := waitClose(t, closed)
	if e.Code != amqp091.PreconditionFailed || e.Reason != timeoutText("2", "2000") {
		t.Fatalf("channel closed with %d %q, want 406 %q", e.Code, e.Reason, timeoutText("2", "2000"))
	}
	if m := waitMessage(t, ch, "qc"); !m.Redelivered {
		t.Fatal("the timed-out message is not flagged redelivered")
	}
}
