package amqp

import (
	"fmt"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// drainBodies gets every message of a queue with auto-ack.
func drainBodies(t *testing.T, ch *amqp091.Channel, queue string) []string {
	t.Helper()
	var out []string
	for {
		if b := getBody(t, ch, queue); b != "" {
			out = append(out, b)
			continue
		}
		return out
	}
}

func wantBodies(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: %q, want %q", what, got, want)
	}
}

// TestAMQPMaxLengthDropHead: over x-max-length or x-max-length-bytes the
// oldest ready messages are dropped and dead-lettered with reason maxlen;
// unacknowledged messages do not count.
func TestAMQPMaxLengthDropHead(t *testing.T) {
	ts, _ := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	declareDLX(t, ch, "full")
	for _, durable := range []bool{true, false} {
		name := fmt.Sprintf("len-%v", durable)
		if _, err := ch.QueueDeclare(name, durable, false, false, false, amqp091.Table{
			"x-max-length": int32(2), "x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "full"}); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"1", "2", "3"} {
			if !publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte(b), DeliveryMode: amqp091.Persistent}) {
				t.Fatalf("%s: publish %s nacked under drop-head", name, b)
			}
		}
		m, ok, err := ch.Get(name, false) // "2" goes out unacked: it no longer counts
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("4"), DeliveryMode: amqp091.Persistent})
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
		wantBodies(t, name, drainBodies(t, ch, name), "3", "4")
		d := getMessage(t, ch, "dlq")
		if string(d.Body) != "1" {
			t.Fatalf("dead letter %q, want 1", d.Body)
		}
		wantDeath(t, deaths(t, d)[0], name, "maxlen", "", []string{name}, 1)
		wantBodies(t, "dlq", drainBodies(t, ch, "dlq"))
	}
	if _, err := ch.QueueDeclare("bytes", false, false, false, false, amqp091.Table{"x-max-length-bytes": int64(10)}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"aaaa", "bbbb", "cccc"} { // 12 bytes: "aaaa" goes
		publishConfirmed(t, ch, "bytes", amqp091.Publishing{Body: []byte(b)})
	}
	wantBodies(t, "bytes", drainBodies(t, ch, "bytes"), "bbbb", "cccc")
}

// TestAMQPMaxLengthRejectPublish: with x-overflow reject-publish a publish
// that would go over the limit is refused with basic.nack and dropped,
// and with reject-publish-dlx also dead-lettered; the queue keeps what it
// had and takes messages again once there is room.
func TestAMQPMaxLengthRejectPublish(t *testing.T) {
	ts, _ := startClockServer(t, Options{})
	ch := confirmedChannel(t, ts)
	declareDLX(t, ch, "refused")
	for _, overflow := range []string{"reject-publish", "reject-publish-dlx"} {
		for _, durable := range []bool{true, false} {
			name := fmt.Sprintf("%s-%v", overflow, durable)
			if _, err := ch.QueueDeclare(name, durable, false, false, false, amqp091.Table{
				"x-max-length": int32(1), "x-overflow": overflow,
				"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "refused"}); err != nil {
				t.Fatal(err)
			}
			if !publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("kept"), DeliveryMode: amqp091.Persistent}) {
				t.Fatalf("%s: first publish nacked", name)
			}
			if publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("refused"), DeliveryMode: amqp091.Persistent}) {
				t.Fatalf("%s: publish over the limit acked, want nacked", name)
			}
			wantBodies(t, name, drainBodies(t, ch, name), "kept")
			if !publishConfirmed(t, ch, name, amqp091.Publishing{Body: []byte("room")}) {
				t.Fatalf("%s: publish with room nacked", name)
			}
			wantBodies(t, name, drainBodies(t, ch, name), "room")
			dead := drainBodies(t, ch, "dlq")
			if overflow == "reject-publish" {
				wantBodies(t, name+" dead letters", dead)
			} else {
				wantBodies(t, name+" dead letters", dead, "refused")
			}
		}
	}
}
