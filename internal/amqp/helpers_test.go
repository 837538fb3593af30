package amqp

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/wharfmq/wharf/internal/broker"
)

// testServer is a real broker and AMQP server on a loopback port.
type testServer struct {
	t       *testing.T
	dir     string
	addr    string
	url     string
	b       *broker.Broker
	srv     *Server
	opts    Options
	serveCh chan error
	// now is the broker's clock; nil means time.Now.
	now func() time.Time
	// queueMemory is the broker's QueueMemoryBytes (0: no paging).
	queueMemory int64
}

// startServer opens a broker in a fresh directory and serves AMQP on it.
// Options zero values are the server's defaults. It stops at test end.
func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	ts := &testServer{t: t, dir: t.TempDir(), opts: opts}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

func testLogger() *slog.Logger {
	if os.Getenv("WHARF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func (ts *testServer) start() {
	t := ts.t
	t.Helper()
	b, err := broker.Open(broker.Options{DataDir: ts.dir, Logger: testLogger(), Now: ts.now, QueueMemoryBytes: ts.queueMemory})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	opts := ts.opts
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	ts.b, ts.srv = b, NewServer(b, opts)
	ts.addr = ln.Addr().String()
	ts.url = "amqp://guest:guest@" + ts.addr + "/"
	ts.serveCh = make(chan error, 1)
	go func() { ts.serveCh <- ts.srv.Serve(ln) }()
}

// stop shuts the server down and closes the broker; calling it twice is
// harmless.
func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)
	if err := <-ts.serveCh; err != nil {
		ts.t.Errorf("Serve: %v", err)
	}
	if err := ts.b.Close(); err != nil {
		ts.t.Errorf("closing broker: %v", err)
	}
	ts.srv, ts.b = nil, nil
}

// restart stops the server and opens the same data directory again, on a
// new port.
func (ts *testServer) restart() {
	ts.t.Helper()
	ts.stop()
	ts.start()
}

// dial connects an amqp091-go client as guest; it is closed at test end.
func (ts *testServer) dial(t *testing.T) *amqp091.Connection {
	t.Helper()
	c, err := amqp091.Dial(ts.url)
	if err != nil {
		t.Fatalf("dial %s: %v", ts.url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// channel opens a channel on a new connection.
func (ts *testServer) channel(t *testing.T) (*amqp091.Connection, *amqp091.Channel) {
	t.Helper()
	c := ts.dial(t)
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return c, ch
}

// amqpErrorCode returns the reply code of an *amqp091.Error, or 0.
func amqpErrorCode(err error) int {
	if e, ok := err.(*amqp091.Error); ok {
		return e.Code
	}
	return 0
}

// waitClose waits for a channel or connection close notification.
func waitClose(t *testing.T, c chan *amqp091.Error) *amqp091.Error {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no close notification within 10s")
		return nil
	}
}
