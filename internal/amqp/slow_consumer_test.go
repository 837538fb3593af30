package amqp

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// freezableConn is a client socket whose reads can be stopped: the client
// library keeps running (and writing heartbeats) but never reads what the
// server sends again.
type freezableConn struct {
	net.Conn
	frozen atomic.Bool
	closed chan struct{}
	once   sync.Once
}

func (c *freezableConn) Read(b []byte) (int, error) {
	if c.frozen.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.Conn.Read(b)
}

func (c *freezableConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// dialFrozen dials with a 64 KiB receive buffer, set before connecting, so
// that the kernel holds little of what the server sends to a client that
// does not read.
func dialFrozen(conn **freezableConn) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
			})
			return errors.Join(err, serr)
		}}
		nc, err := d.Dial(network, addr)
		if err != nil {
			return nil, err
		}
		*conn = &freezableConn{Conn: nc, closed: make(chan struct{})}
		return *conn, nil
	}
}

// kernelSendBuffer is the most a TCP socket's send buffer may grow to
// (the third field of tcp_wmem), or 8 MiB when it cannot be read.
func kernelSendBuffer() int64 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			if n, err := strconv.ParseInt(f[2], 10, 64); err == nil {
				return n
			}
		}
	}
	return 8 << 20
}

// TestStuckConsumerBoundsBufferingAndBlocksNobody has a consumer with no
// prefetch limit stop reading its socket while a publisher keeps
// publishing to a fanout that reaches its queue and another consumer's.
// The server stops delivering to the stuck connection once its outbox
// holds outboxHigh bytes, so what it buffers for it stays bounded, and the
// rest stays in the queue; the publisher is not slowed (every publish is
// confirmed), the other consumer gets everything, a new consumer of the
// stuck one's queue gets what was left there, and once the stuck client
// goes its deliveries come back marked redelivered.
func TestStuckConsumerBoundsBufferingAndBlocksNobody(t *testing.T) {
	ts := startServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const total, size = 400, 64 << 10 // 25 MiB through each queue

	admin, err := amqp091.Dial(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ach, err := admin.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ach.ExchangeDeclare("fan", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"slow", "fast"} {
		if _, err := ach.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ach.QueueBind(q, "", "fan", false, nil); err != nil {
			t.Fatal(err)
		}
	}

	// The stuck consumer: prefetch 0 (no limit), then it reads nothing.
	var frozen *freezableConn
	stuck, err := amqp091.DialConfig(ts.url, amqp091.Config{Dial: dialFrozen(&frozen)})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	sch, err := stuck.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sch.Consume("slow", "stuck", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	frozen.frozen.Store(true)
	var stuckConn *conn
	ts.srv.mu.Lock()
	for c := range ts.srv.conns {
		if c.nc.RemoteAddr().String() == frozen.LocalAddr().String() {
			stuckConn = c
		}
	}
	ts.srv.mu.Unlock()
	if stuckConn == nil {
		t.Fatal("the stuck client's connection is not on the server")
	}

	// The other consumer, on its own connection.
	fast, err := amqp091.Dial(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	fch, err := fast.Channel()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := fch.Consume("fast", "fast", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fastGot atomic.Int64
	go func() {
		for range fd {
			fastGot.Add(1)
		}
	}()

	// Publish everything with confirms, sampling the stuck connection's
	// outbox all along.
	var peak atomic.Int64
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if p := stuckConn.out.pending.Load(); p > peak.Load() {
				peak.Store(p)
			}
			select {
			case <-sampling:
				return
			default:
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	pub, err := amqp091.Dial(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pch, err := pub.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	var confirms []*amqp091.DeferredConfirmation
	for i := range total {
		body := make([]byte, size)
		binary.BigEndian.PutUint64(body, uint64(i))
		dc, err := pch.PublishWithDeferredConfirmWithContext(ctx, "fan", "", false, false, amqp091.Publishing{Body: body})
		if err != nil {
			t.Fatal(err)
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %d not confirmed (%v): the stuck consumer held up the publisher", i, err)
		}
	}
	for fastGot.Load() < total {
		select {
		case <-ctx.Done():
			t.Fatalf("the other consumer got %d of %d", fastGot.Load(), total)
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(sampling)
	<-sampled

	q, err := ts.b.Queue("/", "", "slow")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := q.Counts()
	unacked := q.Unacked()
	pending := stuckConn.out.pending.Load()
	frame := int64(size + 1024) // a delivery: method, header and body frames
	kernel := kernelSendBuffer() + 2*(64<<10)
	t.Logf("stuck consumer: %d delivered (%.1f MiB), %d still ready in its queue; outbox %.2f MiB now, %.2f MiB at most (bound %.2f MiB); kernel buffers at most %.1f MiB",
		unacked, float64(int64(unacked)*size)/(1<<20), ready, float64(pending)/(1<<20), float64(peak.Load())/(1<<20),
		float64(outboxHigh+frame)/(1<<20), float64(kernel)/(1<<20))
	if ready+unacked != total {
		t.Errorf("ready %d + unacked %d != %d published", ready, unacked, total)
	}
	if p := peak.Load(); p > outboxHigh+frame {
		t.Errorf("the stuck connection's outbox reached %d bytes; bound %d", p, outboxHigh+frame)
	}
	if pending <= outboxHigh || pending > outboxHigh+frame {
		t.Errorf("the stuck connection's outbox holds %d bytes; want just over %d (the server stops at the bound)", pending, outboxHigh)
	}
	if delivered := int64(unacked) * size; delivered > outboxHigh+frame+kernel {
		t.Errorf("%d bytes delivered to a client that reads nothing; at most %d fit in the outbox and the kernel", delivered, outboxHigh+frame+kernel)
	}

	// A new consumer of the stuck one's queue gets what was left there;
	// once the stuck client is gone, what it had been sent comes back,
	// redelivered.
	next, err := amqp091.Dial(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	nch, err := next.Channel()
	if err != nil {
		t.Fatal(err)
	}
	nd, err := nch.Consume("slow", "next", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	redelivered := 0
	receive := func(n int) {
		t.Helper()
		for range n {
			select {
			case d := <-nd:
				i := binary.BigEndian.Uint64(d.Body)
				if seen[i] {
					t.Fatalf("message %d delivered twice", i)
				}
				seen[i] = true
				if d.Redelivered {
					redelivered++
				}
			case <-ctx.Done():
				t.Fatalf("the new consumer got %d messages", len(seen))
			}
		}
	}
	receive(ready)
	if redelivered != 0 {
		t.Errorf("%d of the messages left in the queue came marked redelivered", redelivered)
	}
	frozen.Close()
	receive(unacked)
	if redelivered != unacked || len(seen) != total {
		t.Errorf("after the stuck client left: %d redelivered of %d it held, %d distinct of %d", redelivered, unacked, len(seen), total)
	}
	waitUntil(t, "the stuck connection to go", func() bool { return ts.srv.BufferedBytes() < 64<<10 })
}

// waitUntil polls cond until it holds, failing the test after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
