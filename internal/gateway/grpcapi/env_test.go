package grpcapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1/wharfv1connect"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/storage"
)

// testWait bounds every wait of a test.
const testWait = 20 * time.Second

// env is a broker with the gRPC face on a real HTTP server that speaks
// HTTP/1.1 and h2c, as the HTTP listener does, behind a wrapper that hides
// http.Flusher as the gateway's access log does.
type env struct {
	b     *broker.Broker
	svc   *service.Service
	srv   *http.Server
	url   string
	msg   wharfv1connect.MessagingServiceClient // guest over h2c, gRPC
	admin wharfv1connect.AdminServiceClient     // guest over h2c, gRPC
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b, err := broker.Open(broker.Options{DataDir: t.TempDir(), LogDefaults: storage.DefaultLogConfig()})
	if err != nil {
		t.Fatal(err)
	}
	users := auth.NewDefaultStore()
	if err := users.Put("alice", "wonderland", false); err != nil {
		t.Fatal(err)
	}
	if err := users.Put("app", "app-pw", false); err != nil {
		t.Fatal(err)
	}
	if err := users.SetPermission("app", "/", auth.Permission{Configure: "^app-", Write: "^app-", Read: "^app-"}); err != nil {
		t.Fatal(err)
	}
	if err := users.SetPermission("alice", "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	if err := users.SetTags("alice", []string{auth.TagMonitoring}); err != nil {
		t.Fatal(err)
	}
	svc := service.New(b, nil, service.Options{AutoCreateTopics: true, DefaultPartitions: 1, Users: users})
	mux := http.NewServeMux()
	Mount(mux, Options{Service: svc, Users: users})
	srv := &http.Server{Handler: hideFlusher(mux), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
		if err := b.Close(); err != nil {
			t.Errorf("closing broker: %v", err)
		}
	})
	e := &env{b: b, svc: svc, srv: srv, url: "http://" + ln.Addr().String()}
	e.msg = wharfv1connect.NewMessagingServiceClient(h2cClient("guest", "guest"), e.url, connect.WithGRPC())
	e.admin = wharfv1connect.NewAdminServiceClient(h2cClient("guest", "guest"), e.url, connect.WithGRPC())
	return e
}

// hideFlusher wraps the ResponseWriter in one that does not implement
// http.Flusher but unwraps, like the gateway's access log.
func hideFlusher(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(plainWriter{w}, r)
	})
}

type plainWriter struct{ w http.ResponseWriter }

func (p plainWriter) Header() http.Header         { return p.w.Header() }
func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p plainWriter) WriteHeader(code int)        { p.w.WriteHeader(code) }
func (p plainWriter) Unwrap() http.ResponseWriter { return p.w }

// basicAuth adds HTTP Basic credentials to every request.
type basicAuth struct {
	rt         http.RoundTripper
	user, pass string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.user != "" {
		r = r.Clone(r.Context())
		r.SetBasicAuth(b.user, b.pass)
	}
	return b.rt.RoundTrip(r)
}

// h2cClient speaks HTTP/2 without TLS; user "" sends no credentials.
func h2cClient(user, pass string) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: basicAuth{rt: tr, user: user, pass: pass}}
}

// h1Client speaks HTTP/1.1.
func h1Client(user, pass string) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	return &http.Client{Transport: basicAuth{rt: tr, user: user, pass: pass}}
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is a connect error with code.
func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", code)
	}
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("got %v (%v), want %v", got, err, code)
	}
}

func (e *env) createTopic(t *testing.T, name string, partitions int32) {
	t.Helper()
	if _, err := e.admin.CreateTopic(testCtx(t), connect.NewRequest(&wharfv1.CreateTopicRequest{Name: name, Partitions: partitions})); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

func (e *env) declareQueue(t *testing.T, name string) {
	t.Helper()
	if _, err := e.admin.DeclareQueue(testCtx(t), connect.NewRequest(&wharfv1.DeclareQueueRequest{Name: name, Durable: true})); err != nil {
		t.Fatalf("declare queue %s: %v", name, err)
	}
}

// publish sends persistent messages to a queue through the default
// exchange.
func (e *env) publish(t *testing.T, queue string, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
		res, err := e.msg.Publish(testCtx(t), connect.NewRequest(&wharfv1.PublishRequest{
			RoutingKey: queue, Body: []byte(body), Mandatory: true,
			Properties: &wharfv1.Properties{DeliveryMode: 2},
		}))
		if err != nil {
			t.Fatalf("publish %q: %v", body, err)
		}
		if res.Msg.Routed != 1 {
			t.Fatalf("publish %q routed to %d queues, want 1", body, res.Msg.Routed)
		}
	}
}
