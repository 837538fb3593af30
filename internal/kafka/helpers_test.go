package kafka

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/storage"
)

// testServer is a broker with a Kafka listener on a loopback port.
type testServer struct {
	t    testing.TB
	dir  string
	b    *broker.Broker
	srv  *Server
	addr string
	done chan error
}

func startServer(t testing.TB, mutate func(*Options)) *testServer {
	t.Helper()
	return startServerIn(t, t.TempDir(), mutate)
}

func startServerIn(t testing.TB, dir string, mutate func(*Options)) *testServer {
	t.Helper()
	return startServerWith(t, dir, storage.DefaultLogConfig(), mutate)
}

// startServerWith starts a server on dir whose broker has the given log
// defaults, as the broker's startup flags set them.
func startServerWith(t testing.TB, dir string, defaults storage.LogConfig, mutate func(*Options)) *testServer {
	t.Helper()
	b, err := broker.Open(broker.Options{DataDir: dir, LogDefaults: defaults})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{AutoCreateTopics: true, DefaultPartitions: 1}
	if mutate != nil {
		mutate(&opts)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, dir: dir, b: b, srv: NewServer(b, opts), addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(ln) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down and closes the broker; it may be called early.
func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("shutdown: %v", err)
	}
	if err := <-ts.done; err != nil {
		ts.t.Errorf("serve: %v", err)
	}
	if err := ts.b.Close(); err != nil {
		ts.t.Errorf("broker close: %v", err)
	}
	ts.srv = nil
}

func (ts *testServer) client(opts ...kgo.Opt) *kgo.Client {
	ts.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ts.addr)}, opts...)...)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(cl.Close)
	return cl
}

func (ts *testServer) admin() *kadm.Client { return kadm.NewClient(ts.client()) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
