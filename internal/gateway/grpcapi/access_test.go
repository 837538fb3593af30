package grpcapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1/wharfv1connect"
)

// TestGRPCPermissions: a user without tags is held to its expressions on
// every call; refused calls are PERMISSION_DENIED and change nothing.
func TestGRPCPermissions(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.admin.CreateTopic(ctx, connect.NewRequest(&wharfv1.CreateTopicRequest{Name: "secret", Partitions: 1})); err != nil {
		t.Fatal(err)
	}
	msg := wharfv1connect.NewMessagingServiceClient(h2cClient("app", "app-pw"), e.url, connect.WithGRPC())
	admin := wharfv1connect.NewAdminServiceClient(h2cClient("app", "app-pw"), e.url, connect.WithGRPC())
	deniedErr := func(what string, err error, want string) {
		t.Helper()
		if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want PERMISSION_DENIED naming %q", what, err, want)
		}
	}

	if _, err := admin.CreateTopic(ctx, connect.NewRequest(&wharfv1.CreateTopicRequest{Name: "app-t", Partitions: 1})); err != nil {
		t.Fatalf("app creating app-t: %v", err)
	}
	if _, err := msg.Produce(ctx, connect.NewRequest(&wharfv1.ProduceRequest{Topic: "app-t", Records: []*wharfv1.ProduceRecord{{Value: []byte("v")}}})); err != nil {
		t.Fatalf("app producing to app-t: %v", err)
	}
	_, err := msg.Produce(ctx, connect.NewRequest(&wharfv1.ProduceRequest{Topic: "secret", Records: []*wharfv1.ProduceRecord{{Value: []byte("x")}}}))
	deniedErr("produce", err, "topic 'secret'")
	_, err = admin.DeleteTopic(ctx, connect.NewRequest(&wharfv1.DeleteTopicRequest{Name: "secret"}))
	deniedErr("delete topic", err, "topic 'secret'")
	_, err = admin.ListTopics(ctx, connect.NewRequest(&wharfv1.ListTopicsRequest{}))
	deniedErr("list topics", err, "monitoring")
	_, err = msg.Publish(ctx, connect.NewRequest(&wharfv1.PublishRequest{Exchange: "", RoutingKey: "q", Body: []byte("x")}))
	deniedErr("publish", err, "exchange 'amq.default'")
	_, err = admin.DeclareQueue(ctx, connect.NewRequest(&wharfv1.DeclareQueueRequest{Name: "vault"}))
	deniedErr("declare queue", err, "queue 'vault'")

	stream, err := msg.SubscribeTopic(ctx, connect.NewRequest(&wharfv1.SubscribeTopicRequest{Topic: "secret"}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	deniedErr("subscribe topic", err, "topic 'secret'")

	bidi := msg.SubscribeQueue(ctx)
	if err := bidi.Send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{Subscribe: &wharfv1.QueueSubscription{Queue: "vault"}}}); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("send: %v", err)
	}
	_, err = bidi.Receive()
	deniedErr("subscribe queue", err, "queue 'vault'")

	if _, ok := e.b.Topic("secret"); !ok {
		t.Fatal("a refused delete removed the topic")
	}
	if _, ok := e.b.LookupQueue("/", "vault"); ok {
		t.Fatal("a refused declare made the queue")
	}
}
