package amqp

import (
	"context"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

func TestSmokePublishConsume(t *testing.T) {
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"a", "b", "c"} {
		if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "b", "c"} {
		m := <-msgs
		if string(m.Body) != want {
			t.Fatalf("got %q, want %q", m.Body, want)
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
}
