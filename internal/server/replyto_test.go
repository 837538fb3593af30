package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestDirectReplyFromREST answers an AMQP direct reply-to request through
// the REST gateway: the responder takes the request with a REST get and
// publishes the reply to the default exchange with the request's reply_to
// as routing key; the AMQP requester's reply consumer gets it. Once the
// requester has gone, a mandatory reply is refused as unroutable and a
// plain one reaches nothing.
func TestDirectReplyFromREST(t *testing.T) {
	t.Parallel()
	httpAddr, _, amqpAddr := runningServer(t)
	api := "http://" + httpAddr + "/api/v1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ac, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("rpc-rest", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	replies, err := ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(ctx, "", "rpc-rest", false, false, amqp091.Publishing{
		ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: "c1", Body: []byte("question")}); err != nil {
		t.Fatal(err)
	}

	var replyTo string
	deadline := time.Now().Add(10 * time.Second)
	for replyTo == "" {
		st, body := restCall(t, "POST", api+"/vhosts/%2F/queues/rpc-rest/get", map[string]any{"count": 1, "ackmode": "ack_requeue_false"})
		if st != 200 {
			t.Fatalf("get: %d %v", st, body)
		}
		if ms, _ := body["messages"].([]any); len(ms) == 1 {
			props, _ := ms[0].(map[string]any)["properties"].(map[string]any)
			replyTo, _ = props["reply_to"].(string)
			if !strings.HasPrefix(replyTo, "amq.rabbitmq.reply-to.") {
				t.Fatalf("request properties %v: want a generated reply_to", props)
			}
		} else if time.Now().After(deadline) {
			t.Fatal("the request did not reach its queue")
		}
	}

	reply := map[string]any{"routing_key": replyTo, "mandatory": true, "body": "answer", "properties": map[string]any{"correlation_id": "c1"}}
	if st, body := restCall(t, "POST", api+"/vhosts/%2F/exchanges/amq.default/publish", reply); st != 200 || body["routed"] != float64(1) {
		t.Fatalf("reply publish: %d %v", st, body)
	}
	select {
	case d := <-replies:
		if string(d.Body) != "answer" || d.CorrelationId != "c1" || d.RoutingKey != replyTo {
			t.Fatalf("reply: body %q correlation %q key %q", d.Body, d.CorrelationId, d.RoutingKey)
		}
	case <-ctx.Done():
		t.Fatal("no reply")
	}

	if err := ac.Close(); err != nil {
		t.Fatal(err)
	}
	// The requester is gone once its name no longer declares.
	gone := func() bool {
		c, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = pch.QueueDeclarePassive(replyTo, false, false, false, false, nil)
		return err != nil
	}
	deadline = time.Now().Add(10 * time.Second)
	for !gone() {
		if time.Now().After(deadline) {
			t.Fatal("the closed requester's reply name still declares")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, body := restCall(t, "POST", api+"/vhosts/%2F/exchanges/amq.default/publish", reply); st != 404 || !strings.HasPrefix(fmt.Sprint(body["message"]), "NO_ROUTE") {
		t.Fatalf("mandatory reply to a gone requester: %d %v", st, body)
	}
	delete(reply, "mandatory")
	if st, body := restCall(t, "POST", api+"/vhosts/%2F/exchanges/amq.default/publish", reply); st != 200 || body["routed"] != float64(0) {
		t.Fatalf("reply to a gone requester: %d %v", st, body)
	}
}
