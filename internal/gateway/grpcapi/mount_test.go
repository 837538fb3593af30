package grpcapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1/wharfv1connect"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/storage"
)

// The gateway's handler mounts the gRPC services, behind its access log,
// on an HTTP/2 server: a record produced over gRPC streams back over gRPC.
func TestGatewayHandlerServesGRPC(t *testing.T) {
	b, err := broker.Open(broker.Options{DataDir: t.TempDir(), LogDefaults: storage.DefaultLogConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	svc := service.New(b, nil, service.Options{AutoCreateTopics: true})
	srv := httptest.NewUnstartedServer(gateway.NewHandler(gateway.Options{Service: svc, Users: auth.NewDefaultStore()}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	withGuest := connect.WithInterceptors(guest{})
	msg := wharfv1connect.NewMessagingServiceClient(srv.Client(), srv.URL, connect.WithGRPC(), withGuest)
	if _, err := msg.Produce(ctx, connect.NewRequest(&wharfv1.ProduceRequest{
		Topic: "t", Records: []*wharfv1.ProduceRecord{{Value: []byte("hello")}},
	})); err != nil {
		t.Fatal(err)
	}
	s, err := msg.SubscribeTopic(ctx, connect.NewRequest(&wharfv1.SubscribeTopicRequest{Topic: "t", Start: wharfv1.Start_START_EARLIEST}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Receive() || s.Msg().GetSubscribed() == nil {
		t.Fatalf("no subscribed event: %v", s.Err())
	}
	if !s.Receive() || string(s.Msg().GetRecord().GetValue()) != "hello" {
		t.Fatalf("record: %v, %v", s.Msg(), s.Err())
	}

	// Without credentials: refused.
	admin := wharfv1connect.NewAdminServiceClient(srv.Client(), srv.URL, connect.WithGRPC())
	_, err = admin.ListTopics(ctx, connect.NewRequest(&wharfv1.ListTopicsRequest{}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("got %v, want unauthenticated", err)
	}

	// Reflection lists both services and describes them, without
	// credentials, as grpcurl asks.
	refl := grpcreflect.NewClient(srv.Client(), srv.URL, connect.WithGRPC()).NewStream(ctx)
	names, err := refl.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	want := map[protoreflect.FullName]bool{wharfv1connect.MessagingServiceName: false, wharfv1connect.AdminServiceName: false}
	for _, n := range names {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("reflection lists %v, not %s", names, n)
		}
	}
	files, err := refl.FileContainingSymbol(wharfv1connect.MessagingServiceName)
	if err != nil || len(files) == 0 || files[0].GetPackage() != "wharf.v1" {
		t.Fatalf("FileContainingSymbol: %v, %v", files, err)
	}
	if _, err := refl.Close(); err != nil {
		t.Error(err)
	}

	// The standard health service says the services are serving.
	health := grpchealth.NewClient(srv.Client(), srv.URL, connect.WithGRPC())
	for _, svc := range []string{"", wharfv1connect.MessagingServiceName} {
		res, err := health.Check(ctx, &grpchealth.CheckRequest{Service: svc})
		if err != nil || res.Status != grpchealth.StatusServing {
			t.Fatalf("health of %q: %v, %v", svc, res, err)
		}
	}
	if _, err := health.Check(ctx, &grpchealth.CheckRequest{Service: "no.such.Service"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("health of an unknown service: %v, want not found", err)
	}
}

// guest adds the guest user's credentials to every call.
type guest struct{}

func (guest) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		setGuest(req.Header())
		return next(ctx, req)
	}
}

func (guest) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		setGuest(conn.RequestHeader())
		return conn
	}
}

func (guest) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func setGuest(h http.Header) {
	r := http.Request{Header: h}
	r.SetBasicAuth(auth.DefaultUser, auth.DefaultPassword)
}
