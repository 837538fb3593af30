package grpcapi

import (
	"context"
	"errors"
	"io"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
)

// queueStream is a queue subscription.
type queueStream struct {
	t      *testing.T
	s      *connect.BidiStreamForClient[wharfv1.SubscribeQueueRequest, wharfv1.SubscribeQueueResponse]
	cancel context.CancelFunc
}

func (e *env) subscribeQueue(t *testing.T, queue string, prefetch uint32) *queueStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	qs := &queueStream{t: t, s: e.msg.SubscribeQueue(ctx), cancel: cancel}
	qs.send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{
		Subscribe: &wharfv1.QueueSubscription{Queue: queue, Prefetch: prefetch},
	}})
	res, err := qs.s.Receive()
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if res.GetSubscribed().GetConsumerTag() == "" {
		t.Fatalf("first event is %v, want subscribed", res)
	}
	return qs
}

func (qs *queueStream) send(req *wharfv1.SubscribeQueueRequest) {
	qs.t.Helper()
	if err := qs.s.Send(req); err != nil {
		qs.t.Fatalf("send: %v", err)
	}
}

func (qs *queueStream) ack(tag uint64, multiple bool) {
	qs.t.Helper()
	qs.send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Ack{Ack: &wharfv1.Ack{DeliveryTag: tag, Multiple: multiple}}})
}

func (qs *queueStream) nack(tag uint64, requeue bool) {
	qs.t.Helper()
	qs.send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Nack{Nack: &wharfv1.Nack{DeliveryTag: tag, Requeue: requeue}}})
}

func (qs *queueStream) next() *wharfv1.Delivery {
	qs.t.Helper()
	res, err := qs.s.Receive()
	if err != nil {
		qs.t.Fatalf("receive: %v", err)
	}
	d := res.GetDelivery()
	if d == nil {
		qs.t.Fatalf("event is %v, want a delivery", res)
	}
	return d
}

// close half-closes the stream and waits for the server to end it; by
// then the server has settled what the client sent and requeued the rest.
func (qs *queueStream) close() error {
	qs.t.Helper()
	if err := qs.s.CloseRequest(); err != nil {
		qs.t.Fatalf("close request: %v", err)
	}
	return qs.end()
}

// end waits for the server to end the stream; nil if it ended cleanly.
func (qs *queueStream) end() error {
	qs.t.Helper()
	for {
		res, err := qs.s.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		qs.t.Fatalf("unexpected event %v", res)
	}
}

// queueState returns a queue's ready, unacked and consumer counts.
func (e *env) queueState(t *testing.T, name string) (ready, unacked, consumers int64) {
	t.Helper()
	res, err := e.admin.ListQueues(testCtx(t), connect.NewRequest(&wharfv1.ListQueuesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range res.Msg.Queues {
		if q.Name == name {
			return q.GetMessages(), q.GetUnacked(), q.GetConsumers()
		}
	}
	t.Fatalf("no queue %s in %v", name, res.Msg.Queues)
	return
}

func TestPublishThenSubscribeQueue(t *testing.T) {
	e := newEnv(t)
	e.declareQueue(t, "jobs")
	headers, err := structpb.NewStruct(map[string]any{
		"x-tenant": "acme", "n": 7.0, "ratio": 0.5, "ok": true, "none": nil,
		"nested": map[string]any{"a": "b"}, "list": []any{"x", 1.0},
	})
	if err != nil {
		t.Fatal(err)
	}
	props := &wharfv1.Properties{
		ContentType: "application/json", ContentEncoding: "utf-8", Headers: headers, DeliveryMode: 2, Priority: 3,
		CorrelationId: "c-1", ReplyTo: "replies", Expiration: "60000", MessageId: "m-1", Timestamp: 1764806400,
		Type: "order", UserId: "guest", AppId: "shop",
	}
	res, err := e.msg.Publish(testCtx(t), connect.NewRequest(&wharfv1.PublishRequest{
		RoutingKey: "jobs", Properties: props, Body: []byte(`{"id":1}`), Mandatory: true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.Routed != 1 {
		t.Fatalf("routed %d, want 1", res.Msg.Routed)
	}
	e.publish(t, "jobs", "two", "three")

	qs := e.subscribeQueue(t, "jobs", 2)
	d1 := qs.next()
	if d1.DeliveryTag != 1 || d1.Queue != "jobs" || d1.Exchange != "" || d1.RoutingKey != "jobs" || d1.Redelivered || string(d1.Body) != `{"id":1}` {
		t.Fatalf("first delivery %v", d1)
	}
	if !proto.Equal(d1.Properties, props) {
		t.Fatalf("properties\n got %v\nwant %v", d1.Properties, props)
	}
	d2 := qs.next()
	if d2.DeliveryTag != 2 || string(d2.Body) != "two" {
		t.Fatalf("second delivery %v", d2)
	}
	// Prefetch 2: the third waits until one is settled.
	if ready, unacked, consumers := e.queueState(t, "jobs"); ready != 1 || unacked != 2 || consumers != 1 {
		t.Fatalf("queue has %d ready, %d unacked, %d consumers; want 1, 2, 1", ready, unacked, consumers)
	}
	qs.ack(1, false)
	if d := qs.next(); d.DeliveryTag != 3 || string(d.Body) != "three" || d.Redelivered {
		t.Fatalf("third delivery %v", d)
	}
	qs.nack(2, true)
	if d := qs.next(); d.DeliveryTag != 4 || string(d.Body) != "two" || !d.Redelivered {
		t.Fatalf("requeued delivery %v, want 'two' redelivered", d)
	}
	qs.ack(4, true) // acks 3 and 4
	if err := qs.close(); err != nil {
		t.Fatalf("end of stream: %v", err)
	}
	if ready, unacked, consumers := e.queueState(t, "jobs"); ready != 0 || unacked != 0 || consumers != 0 {
		t.Fatalf("queue has %d ready, %d unacked, %d consumers; want none", ready, unacked, consumers)
	}
}

func TestSubscribeQueueRequeuesUnackedWhenCancelled(t *testing.T) {
	e := newEnv(t)
	e.declareQueue(t, "work")
	e.publish(t, "work", "a", "b", "c")
	qs := e.subscribeQueue(t, "work", 0)
	for _, want := range []string{"a", "b", "c"} {
		if d := qs.next(); string(d.Body) != want {
			t.Fatalf("delivery %q, want %q", d.Body, want)
		}
	}
	// The client abandons the stream: cancelling its context is not
	// enough for Go's HTTP/2 transport while the request body is open;
	// closing the response resets the stream.
	qs.cancel()
	if err := qs.s.CloseResponse(); err != nil {
		t.Fatal(err)
	}

	// A new subscription gets the unacknowledged messages back, in order,
	// redelivered, once the server has ended the first.
	qs2 := e.subscribeQueue(t, "work", 10)
	for _, want := range []string{"a", "b", "c"} {
		d := qs2.next()
		if string(d.Body) != want || !d.Redelivered {
			t.Fatalf("delivery %q redelivered=%v, want %q redelivered", d.Body, d.Redelivered, want)
		}
	}
	if err := qs2.close(); err != nil {
		t.Fatal(err)
	}
	if ready, unacked, _ := e.queueState(t, "work"); ready != 3 || unacked != 0 {
		t.Fatalf("queue has %d ready, %d unacked; want 3, 0", ready, unacked)
	}
}

func TestSubscribeQueueNackDrops(t *testing.T) {
	e := newEnv(t)
	e.declareQueue(t, "q")
	e.publish(t, "q", "x", "y")
	qs := e.subscribeQueue(t, "q", 0)
	qs.next()
	qs.next()
	qs.nack(1, false)
	qs.send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Nack{Nack: &wharfv1.Nack{DeliveryTag: 2, Multiple: true}}})
	if err := qs.close(); err != nil {
		t.Fatal(err)
	}
	if ready, unacked, _ := e.queueState(t, "q"); ready != 0 || unacked != 0 {
		t.Fatalf("queue has %d ready, %d unacked; want none", ready, unacked)
	}
}

func TestSubscribeQueueErrors(t *testing.T) {
	e := newEnv(t)
	e.declareQueue(t, "q")
	e.publish(t, "q", "m")

	t.Run("unknown tag", func(t *testing.T) {
		qs := e.subscribeQueue(t, "q", 0)
		qs.next()
		qs.ack(99, false)
		wantCode(t, qs.end(), connect.CodeInvalidArgument)
		// The delivery went back to the queue.
		qs2 := e.subscribeQueue(t, "q", 0)
		if d := qs2.next(); string(d.Body) != "m" || !d.Redelivered {
			t.Fatalf("delivery %v", d)
		}
		if err := qs2.close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("subscribe twice", func(t *testing.T) {
		e.declareQueue(t, "empty")
		qs := e.subscribeQueue(t, "empty", 0)
		qs.send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{Subscribe: &wharfv1.QueueSubscription{Queue: "empty"}}})
		wantCode(t, qs.end(), connect.CodeInvalidArgument)
	})
	for _, c := range []struct {
		name string
		req  *wharfv1.SubscribeQueueRequest
		code connect.Code
	}{
		{"ack first", &wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Ack{Ack: &wharfv1.Ack{DeliveryTag: 1}}}, connect.CodeInvalidArgument},
		{"unknown queue", &wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{Subscribe: &wharfv1.QueueSubscription{Queue: "nope"}}}, connect.CodeNotFound},
		{"unknown vhost", &wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{Subscribe: &wharfv1.QueueSubscription{Vhost: "nope", Queue: "q"}}}, connect.CodeNotFound},
		{"prefetch too large", &wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{Subscribe: &wharfv1.QueueSubscription{Queue: "q", Prefetch: 70000}}}, connect.CodeInvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := e.msg.SubscribeQueue(testCtx(t))
			if err := s.Send(c.req); err != nil {
				t.Fatal(err)
			}
			_, err := s.Receive()
			wantCode(t, err, c.code)
		})
	}
}

func TestSubscribeQueueEndsWhenQueueDeleted(t *testing.T) {
	e := newEnv(t)
	e.declareQueue(t, "doomed")
	qs := e.subscribeQueue(t, "doomed", 0)
	if _, err := e.admin.DeleteQueue(testCtx(t), connect.NewRequest(&wharfv1.DeleteQueueRequest{Name: "doomed"})); err != nil {
		t.Fatal(err)
	}
	wantCode(t, qs.end(), connect.CodeNotFound)
}

func TestPublishErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name string
		req  *wharfv1.PublishRequest
		code connect.Code
	}{
		{"unroutable mandatory", &wharfv1.PublishRequest{RoutingKey: "nowhere", Mandatory: true}, connect.CodeNotFound},
		{"unknown exchange", &wharfv1.PublishRequest{Exchange: "nope"}, connect.CodeNotFound},
		{"unknown vhost", &wharfv1.PublishRequest{Vhost: "nope"}, connect.CodeNotFound},
		{"delivery mode", &wharfv1.PublishRequest{Properties: &wharfv1.Properties{DeliveryMode: 256}}, connect.CodeInvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.msg.Publish(testCtx(t), connect.NewRequest(c.req))
			wantCode(t, err, c.code)
		})
	}
	// Without mandatory, an unroutable message is dropped quietly.
	res, err := e.msg.Publish(testCtx(t), connect.NewRequest(&wharfv1.PublishRequest{RoutingKey: "nowhere"}))
	if err != nil || res.Msg.Routed != 0 {
		t.Fatalf("got %v, %v; want routed 0", res, err)
	}
}
