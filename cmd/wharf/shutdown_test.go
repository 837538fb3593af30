//go:build linux

package main

// Graceful shutdown of `wharf serve` on SIGTERM, with real clients over
// real sockets against the server in a child process.

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/wharfmq/wharf/internal/storage"
)

const (
	shutdownTopic = "shutdown"
	shutdownQueue = "shutdown"
	// pipelinedProduces is how many acks=all produce requests the raw
	// Kafka client writes before the signal, without reading. They stay
	// below the socket buffers so that all of them reach the server's
	// kernel, and above the server's in-flight limit per connection (64)
	// so that some are still unread when the signal arrives.
	pipelinedProduces = 200
	queuedMessages    = 20 // published (and confirmed) to the queue before the signal
	// pipelinedPublishes is how many persistent publishes the confirm-mode
	// publisher sends right before the signal, without waiting for their
	// confirms.
	pipelinedPublishes = 200
	unackedMessages    = 5 // of them, delivered to a consumer that never acks
)

// TestSIGTERMShutsDownGracefully sends SIGTERM to a server with Kafka, AMQP
// and WebSocket clients in the middle of their work, under each fsync
// policy, and checks the shutdown and the next start.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, policy := range []string{"always", "interval", "never"} {
		t.Run(policy, func(t *testing.T) { testSIGTERM(t, policy) })
	}
}

func testSIGTERM(t *testing.T, policy string) {
	dir := t.TempDir()
	flags := []string{"--fsync", policy, "--fsync-interval", "1h", "--shutdown-timeout", "30s"}
	p := startWharf(t, dir, flags...)
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", p.log.String())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Kafka: a topic, and a raw connection that pipelines acks=all
	// produces and reads nothing until the signal has been sent.
	adm, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, shutdownTopic); err != nil {
		t.Fatal(err)
	}
	adm.Close()
	kc, err := net.Dial("tcp", p.kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()

	// AMQP: a durable queue with persistent messages; a consumer holding
	// some of them unacknowledged; a confirm-mode publisher.
	pub, pubConn := amqpDial(t, p.amqpA)
	pubCh, err := pub.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubCh.QueueDeclare(shutdownQueue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := pubCh.Confirm(false); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for i := range queuedMessages {
		body := fmt.Sprintf("queued-%d", i)
		publishConfirmed(t, ctx, pubCh, body)
		bodies = append(bodies, body)
	}
	cons, _ := amqpDial(t, p.amqpA)
	consCh, err := cons.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := consCh.Qos(unackedMessages, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := consCh.Consume(shutdownQueue, "holder", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range unackedMessages {
		select {
		case <-deliveries:
		case <-ctx.Done():
			t.Fatal("consumer got too few deliveries")
		}
	}
	pubClosed := pub.NotifyClose(make(chan *amqp091.Error, 1))
	consClosed := cons.NotifyClose(make(chan *amqp091.Error, 1))

	// WebSocket: a logged-in session.
	ws := wsDial(t, ctx, p.httpAddr)

	// HTTP: a request whose headers never finish keeps the HTTP listener
	// draining, so the server is still running while the checks below
	// connect to its ports.
	holder, err := net.Dial("tcp", p.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.Write([]byte("GET /readyz HTTP/1.1\r\nHost: wharf\r\n")); err != nil {
		t.Fatal(err)
	}

	// Just before the signal: the produces and a publish, sent and in
	// the server's kernel (the client's send queue is empty: every byte
	// was acknowledged by the server's TCP stack).
	var reqs []byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("shutdown-test"))
	for i := range pipelinedProduces {
		// AppendRequest writes the size at the start of its dst: one
		// request per call.
		reqs = append(reqs, f.AppendRequest(nil, produceRequest(i), int32(i))...)
	}
	if _, err := kc.Write(reqs); err != nil {
		t.Fatal(err)
	}
	var lastConfirms []*amqp091.DeferredConfirmation
	for i := range pipelinedPublishes {
		body := fmt.Sprintf("published-just-before-the-signal-%d", i)
		dc, err := pubCh.PublishWithDeferredConfirmWithContext(ctx, "", shutdownQueue, false, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		lastConfirms = append(lastConfirms, dc)
		bodies = append(bodies, body)
	}
	waitSent(t, kc)
	waitSent(t, *pubConn)

	p.signal(syscall.SIGTERM)

	// Every produce is answered, whole, in order, and then the connection
	// ends cleanly between two responses.
	for i := range pipelinedProduces {
		resp := readProduceResponse(t, kc, int32(i))
		for _, tp := range resp.Topics {
			for _, pp := range tp.Partitions {
				if pp.ErrorCode != 0 || pp.BaseOffset != int64(i) {
					t.Fatalf("produce %d: error code %d at offset %d, want 0 at %d", i, pp.ErrorCode, pp.BaseOffset, i)
				}
			}
		}
	}
	if n, err := kc.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("Kafka connection after the last response: %d bytes, %v; want a clean EOF", n, err)
	}
	refused(t, "kafka", p.kafka)

	// Every publish sent before the signal is confirmed; both AMQP
	// connections are closed with 320 CONNECTION_FORCED.
	for i, dc := range lastConfirms {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("publish %d sent before the signal: confirmed %v, %v; want an ack", i, ok, err)
		}
	}
	for name, ch := range map[string]chan *amqp091.Error{"publisher": pubClosed, "consumer": consClosed} {
		select {
		case e := <-ch:
			if e == nil || e.Code != amqp091.ConnectionForced || !e.Server {
				t.Fatalf("%s connection closed with %+v, want 320 CONNECTION_FORCED from the server", name, e)
			}
		case <-ctx.Done():
			t.Fatalf("%s connection not closed", name)
		}
	}
	refused(t, "amqp", p.amqpA)

	// The WebSocket session gets a close frame: 1001 going away.
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("websocket read after the signal: %v, want a close frame with 1001", err)
	}
	refused(t, "http", p.httpAddr)

	holder.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0:\n%s", code, p.log.String())
	}
	log := p.log.String()
	for _, want := range []string{"signal received, shutting down", "listeners stopped", "broker closed"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	for _, bad := range []string{"did not drain in time", "did not close in time", "did not finish in time", "level=ERROR"} {
		if strings.Contains(log, bad) {
			t.Errorf("log has %q: the shutdown was not clean:\n%s", bad, log)
		}
	}

	// The next start reads no segment (everything was fsynced and the
	// indexes written), and finds every acknowledged record and every
	// message that was not acknowledged by a consumer.
	p = startWharf(t, dir, flags...)
	if !strings.Contains(p.log.String(), `msg="clean start"`) {
		t.Errorf("the start after SIGTERM is not a clean start:\n%s", p.log.String())
	}
	if n := countRecords(t, ctx, p.kafka); n != pipelinedProduces {
		t.Errorf("%d records after the restart, want the %d acknowledged", n, pipelinedProduces)
	}
	got, redelivered := drainQueue(t, p.amqpA)
	if !slices.Equal(got, bodies) {
		t.Errorf("queue after the restart holds %q, want %q", got, bodies)
	}
	if !slices.Equal(redelivered, bodies[:unackedMessages]) {
		t.Errorf("redelivered after the restart: %q, want the %d that were delivered and not acked", redelivered, unackedMessages)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, p.log.String())
	}
}

// TestSecondSIGTERMForcesExit sends a second SIGTERM while the first
// shutdown is still draining: the process exits at once with status 1.
func TestSecondSIGTERMForcesExit(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	p := startWharf(t, t.TempDir(), "--shutdown-timeout", "10m")
	// Headers that never finish keep the HTTP listener draining.
	holdHTTP(t, p.httpAddr)
	p.signal(syscall.SIGTERM)
	p.waitLog("signal received, shutting down")
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 1 {
		t.Fatalf("exit status %d after a second SIGTERM, want 1:\n%s", code, p.log.String())
	}
	if !strings.Contains(p.log.String(), "second signal received") {
		t.Errorf("log lacks the forced exit:\n%s", p.log.String())
	}
}

// TestSIGTERMShutdownTimeout: a client that holds the shutdown up does so
// only until the shutdown timeout; the process then closes what is left
// and exits 0.
func TestSIGTERMShutdownTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	p := startWharf(t, t.TempDir(), "--shutdown-timeout", "1s")
	holdHTTP(t, p.httpAddr)
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, p.log.String())
	}
	// The holder would have kept the listener busy for the server's read
	// header timeout (10s); the shutdown timeout cut it short.
	if !strings.Contains(p.log.String(), "http listener did not drain in time") {
		t.Errorf("log does not show the timeout closing the held connection:\n%s", p.log.String())
	}
	if !strings.Contains(p.log.String(), "broker closed") {
		t.Errorf("broker not closed after the timeout:\n%s", p.log.String())
	}
}

// TestSIGTERMWithAClientThatKeepsSending: a Kafka client streams acks=0
// produces without pause. The shutdown reads what had arrived when it
// began, not what keeps coming, so it ends long before its timeout (5
// minutes here, longer than the test waits).
func TestSIGTERMWithAClientThatKeepsSending(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	p := startWharf(t, t.TempDir(), "--shutdown-timeout", "5m")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, shutdownTopic); err != nil {
		t.Fatal(err)
	}
	adm.Close()
	kc, err := net.Dial("tcp", p.kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("shutdown-test"))
	req := produceRequest(0)
	req.Acks = 0
	one := f.AppendRequest(nil, req, 0)
	burst := slices.Repeat(one, 64)
	sent := make(chan int64, 1)
	go func() {
		var n int64
		defer func() { sent <- n }()
		for {
			if _, err := kc.Write(burst); err != nil {
				return // the server closed the connection
			}
			n += int64(len(burst))
		}
	}()
	p.waitLog("metadata changed") // the topic exists; the stream is flowing
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, p.log.String())
	}
	t.Logf("the client had written %d bytes when the server closed its connection", <-sent)
	for _, bad := range []string{"did not finish in time", "did not drain in time", "did not close in time"} {
		if strings.Contains(p.log.String(), bad) {
			t.Errorf("log has %q: the shutdown drained until its timeout:\n%s", bad, p.log.String())
		}
	}
}

// amqpDial connects as guest and returns the connection and where its
// socket will be recorded once dialled.
func amqpDial(t *testing.T, addr string) (*amqp091.Connection, *net.Conn) {
	t.Helper()
	var sock net.Conn
	var mu sync.Mutex
	c, err := amqp091.DialConfig("amqp://guest:guest@"+addr+"/", amqp091.Config{
		Dial: func(network, a string) (net.Conn, error) {
			nc, err := net.DialTimeout(network, a, 30*time.Second)
			mu.Lock()
			sock = nc
			mu.Unlock()
			return nc, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	mu.Lock()
	defer mu.Unlock()
	return c, &sock
}

func publishConfirmed(t *testing.T, ctx context.Context, ch *amqp091.Channel, body string) {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", shutdownQueue, false, false,
		amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish %q: confirmed %v, %v", body, ok, err)
	}
}

// waitSent waits until every byte written to c has been acknowledged by
// the peer's TCP stack: it is in the server's kernel, sent before what
// follows.
func waitSent(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		var ierr error
		if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
			t.Fatal(err)
		}
		if ierr != nil {
			t.Fatal(ierr)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still unacknowledged by the server after a minute", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// produceRequest is an acks=all Produce v8 of one small record.
func produceRequest(i int) *kmsg.ProduceRequest {
	batch := storage.AppendBatch(nil, storage.BatchSpec{
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "record-%d", i)}},
	})
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(8)
	req.Acks = -1
	req.TimeoutMillis = 60000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = shutdownTopic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 0
	pp.Records = batch
	tp.Partitions = append(tp.Partitions, pp)
	req.Topics = append(req.Topics, tp)
	return req
}

// readProduceResponse reads one whole Produce v8 response and checks its
// correlation id.
func readProduceResponse(t *testing.T, c net.Conn, corr int32) *kmsg.ProduceResponse {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("response %d: reading its size: %v", corr, err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("response %d: half-written (%v)", corr, err)
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corr {
		t.Fatalf("response for correlation id %d, want %d", got, corr)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(8)
	if err := resp.ReadFrom(buf[4:]); err != nil {
		t.Fatalf("response %d: %v", corr, err)
	}
	return resp
}

// countRecords consumes the shutdown topic from the start.
func countRecords(t *testing.T, ctx context.Context, addr string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(shutdownTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, shutdownTopic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(shutdownTopic, 0)
	n := 0
	for int64(n) < end.Offset {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		n += fs.NumRecords()
	}
	return n
}

// drainQueue gets every message of the shutdown queue, acknowledging
// them, and returns their bodies and those marked redelivered.
func drainQueue(t *testing.T, addr string) (bodies, redelivered []string) {
	t.Helper()
	c, _ := amqpDial(t, addr)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for {
		d, ok, err := ch.Get(shutdownQueue, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return bodies, redelivered
		}
		bodies = append(bodies, string(d.Body))
		if d.Redelivered {
			redelivered = append(redelivered, string(d.Body))
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
}

// wsDial opens a WebSocket session as guest and reads its welcome.
func wsDial(t *testing.T, ctx context.Context, httpAddr string) *websocket.Conn {
	t.Helper()
	h := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("guest:guest"))}}
	c, _, err := websocket.Dial(ctx, "ws://"+httpAddr+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	_, data, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(data), `"welcome"`) {
		t.Fatalf("first websocket frame %q, %v; want the welcome", data, err)
	}
	return c
}

// holdHTTP opens a connection to the HTTP listener that keeps it draining
// on shutdown: a request whose headers never end, on a connection the
// server treats as new (net/http waits for new connections, and closes
// idle ones at once). The pause lets the server accept it: a connection
// still in the accept queue when the listener closes is just dropped.
func holdHTTP(t *testing.T, addr string) {
	t.Helper()
	holder, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close() })
	if _, err := holder.Write([]byte("GET /readyz HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
}
