package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/broker"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1/wharfv1connect"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "t", 1)
	for _, c := range []struct {
		name       string
		user, pass string
		code       connect.Code // 0: allowed
	}{
		{"no credentials", "", "", connect.CodeUnauthenticated},
		{"wrong password", "alice", "nope", connect.CodeUnauthenticated},
		{"unknown user", "mallory", "x", connect.CodeUnauthenticated},
		{"alice", "alice", "wonderland", 0},
		{"guest from loopback", "guest", "guest", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			admin := wharfv1connect.NewAdminServiceClient(h2cClient(c.user, c.pass), e.url, connect.WithGRPC())
			msg := wharfv1connect.NewMessagingServiceClient(h2cClient(c.user, c.pass), e.url, connect.WithGRPC())
			_, unaryErr := admin.ListTopics(testCtx(t), connect.NewRequest(&wharfv1.ListTopicsRequest{}))

			// A server stream: the refusal comes before any event.
			var streamErr error
			s, err := msg.SubscribeTopic(testCtx(t), connect.NewRequest(&wharfv1.SubscribeTopicRequest{Topic: "t"}))
			if err != nil {
				streamErr = err
			} else if !s.Receive() {
				streamErr = s.Err()
			}
			s.Close()

			// A bidirectional stream.
			bidi := msg.SubscribeQueue(testCtx(t))
			_ = bidi.Send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{Subscribe: &wharfv1.QueueSubscription{Queue: "none"}}})
			_, bidiErr := bidi.Receive()

			if c.code == 0 {
				if unaryErr != nil || streamErr != nil {
					t.Fatalf("refused: %v, %v", unaryErr, streamErr)
				}
				wantCode(t, bidiErr, connect.CodeNotFound) // past authentication
				return
			}
			wantCode(t, unaryErr, c.code)
			wantCode(t, streamErr, c.code)
			wantCode(t, bidiErr, c.code)

			// Over the Connect protocol the refusal is an HTTP 401 with a
			// challenge (gRPC carries it in trailers, where HTTP forbids
			// WWW-Authenticate).
			_, err = wharfv1connect.NewAdminServiceClient(h1Client(c.user, c.pass), e.url).
				ListTopics(testCtx(t), connect.NewRequest(&wharfv1.ListTopicsRequest{}))
			wantCode(t, err, c.code)
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Meta().Get("WWW-Authenticate") != `Basic realm="wharf"` {
				t.Errorf("no WWW-Authenticate in %v", ce.Meta())
			}
		})
	}
}

// Every protocol connect-go serves reaches the same handlers: gRPC over
// h2c, gRPC-Web and Connect (binary and JSON) over HTTP/1.1 and HTTP/2.
func TestProtocols(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "t", 1)
	for _, c := range []struct {
		name   string
		client *http.Client
		opts   []connect.ClientOption
	}{
		{"grpc h2c", h2cClient("alice", "wonderland"), []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web http1", h1Client("alice", "wonderland"), []connect.ClientOption{connect.WithGRPCWeb()}},
		{"grpc-web h2c", h2cClient("alice", "wonderland"), []connect.ClientOption{connect.WithGRPCWeb()}},
		{"connect http1", h1Client("alice", "wonderland"), nil},
		{"connect json http1", h1Client("alice", "wonderland"), []connect.ClientOption{connect.WithProtoJSON()}},
		{"connect h2c", h2cClient("alice", "wonderland"), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			admin := wharfv1connect.NewAdminServiceClient(c.client, e.url, c.opts...)
			msg := wharfv1connect.NewMessagingServiceClient(c.client, e.url, c.opts...)
			list, err := admin.ListTopics(testCtx(t), connect.NewRequest(&wharfv1.ListTopicsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Msg.Topics) != 1 || list.Msg.Topics[0].Name != "t" {
				t.Fatalf("topics %v", list.Msg.Topics)
			}
			_, err = admin.DescribeTopic(testCtx(t), connect.NewRequest(&wharfv1.DescribeTopicRequest{Name: "nope"}))
			wantCode(t, err, connect.CodeNotFound)

			// A server stream flushes each event (behind a writer that
			// hides http.Flusher), whatever the protocol.
			s, err := msg.SubscribeTopic(testCtx(t), connect.NewRequest(&wharfv1.SubscribeTopicRequest{Topic: "t"}))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !s.Receive() || s.Msg().GetSubscribed() == nil {
				t.Fatalf("no subscribed event: %v", s.Err())
			}
			value := fmt.Sprintf("over %s", c.name)
			e.produce(t, "t", &wharfv1.ProduceRecord{Value: []byte(value)})
			if !s.Receive() || string(s.Msg().GetRecord().GetValue()) != value {
				t.Fatalf("record: %v, %v", s.Msg(), s.Err())
			}
		})
	}
}

// A shutdown of the HTTP server ends open streams with UNAVAILABLE, so
// that it does not wait for them; a queue stream's deliveries go back.
func TestShutdownEndsStreams(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "t", 1)
	e.declareQueue(t, "q")
	e.publish(t, "q", "m")
	ts := e.subscribeTopic(t, &wharfv1.SubscribeTopicRequest{Topic: "t"})
	qs := e.subscribeQueue(t, "q", 0)
	if d := qs.next(); string(d.Body) != "m" {
		t.Fatalf("delivery %v", d)
	}
	if err := e.srv.Shutdown(testCtx(t)); err != nil {
		t.Fatalf("shutdown did not drain: %v", err)
	}
	wantCode(t, ts.end(), connect.CodeUnavailable)
	wantCode(t, qs.end(), connect.CodeUnavailable)
	q, err := e.b.Queue(broker.DefaultVhost, "", "q")
	if err != nil {
		t.Fatal(err)
	}
	if ready, consumers := q.Counts(); ready != 1 || consumers != 0 || q.Unacked() != 0 {
		t.Fatalf("queue has %d ready, %d consumers, %d unacked; want 1, 0, 0", ready, consumers, q.Unacked())
	}
}

func TestMountWithoutServiceServesNothing(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux, Options{})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	admin := wharfv1connect.NewAdminServiceClient(srv.Client(), srv.URL)
	_, err := admin.ListTopics(context.Background(), connect.NewRequest(&wharfv1.ListTopicsRequest{}))
	wantCode(t, err, connect.CodeUnimplemented) // 404
}

func TestConnectCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want connect.Code
	}{
		{service.Errorf(service.CodeInvalid, "x"), connect.CodeInvalidArgument},
		{service.Errorf(service.CodeNotFound, "x"), connect.CodeNotFound},
		{service.Errorf(service.CodeForbidden, "x"), connect.CodePermissionDenied},
		{service.Errorf(service.CodeUnauthorized, "x"), connect.CodeUnauthenticated},
		{service.Errorf(service.CodeConflict, "x"), connect.CodeFailedPrecondition},
		{fmt.Errorf("creating: %w", broker.ErrTopicExists), connect.CodeAlreadyExists},
		{service.Errorf(service.CodeOutOfRange, "x"), connect.CodeOutOfRange},
		{service.Errorf(service.CodeTooLarge, "x"), connect.CodeResourceExhausted},
		{service.Errorf(service.CodeUnavailable, "x"), connect.CodeUnavailable},
		{service.Errorf(service.CodeInternal, "x"), connect.CodeInternal},
		{errors.New("boom"), connect.CodeInternal},
		{context.Canceled, connect.CodeUnavailable},
		{connect.NewError(connect.CodeAborted, errors.New("as is")), connect.CodeAborted},
	} {
		err := toConnect(c.err)
		if got := connect.CodeOf(err); got != c.want {
			t.Errorf("%v: %v, want %v", c.err, got, c.want)
		}
	}
	var ce *connect.Error
	if !errors.As(toConnect(service.Errorf(service.CodeNotFound, "no topic 'x'")), &ce) || ce.Message() != "no topic 'x'" {
		t.Fatalf("message %q, want the service error's message", ce.Message())
	}
}
