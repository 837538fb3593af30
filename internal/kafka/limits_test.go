package kafka

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/logbuf"
	"github.com/wharfmq/wharf/internal/storage"
)

// startLimitedServer starts a Kafka listener whose broker has the given
// options (limits) and whose log goes to the returned buffer.
func startLimitedServer(t *testing.T, brokerOpts func(*broker.Options), mutate func(*Options)) (*testServer, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
	dir := t.TempDir()
	bo := broker.Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig(), Logger: logs.Logger()}
	if brokerOpts != nil {
		brokerOpts(&bo)
	}
	b, err := broker.Open(bo)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{AutoCreateTopics: true, DefaultPartitions: 1, Logger: logs.Logger()}
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
	return ts, logs
}

// incompressible returns n random bytes: franz-go compresses batches by
// default, and sizes are checked on the batch as sent.
func incompressible(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// served reports whether the connection answers an ApiVersions request.
func served(c *rawConn) bool {
	c.t.Helper()
	c.corr++
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	frame := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint32(frame, uint32(c.corr))
	frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
	frame = req.AppendTo(frame)
	if _, err := c.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return false
	}
	_, err := io.ReadFull(c.nc, make([]byte, binary.BigEndian.Uint32(size[:])))
	return err == nil
}

// TestMaxConnections: connections beyond the listener's maximum are closed
// as soon as they are accepted; those already open keep being served; a
// closed connection frees its slot for a new one; the refusals write one
// log line, then are counted, not logged, within the interval.
func TestMaxConnections(t *testing.T) {
	ts, logs := startLimitedServer(t, nil, func(o *Options) { o.MaxConnections = 2 })
	c1, c2 := dialRaw(t, ts), dialRaw(t, ts)
	if !served(c1) || !served(c2) {
		t.Fatal("the first two connections were not served")
	}
	for range 5 {
		if c := dialRaw(t, ts); served(c) {
			t.Fatal("a connection beyond the maximum of 2 was served")
		}
	}
	if !served(c1) || !served(c2) {
		t.Fatal("the open connections stopped being served after the refusals")
	}
	if n := logs.Count("connection refused", "limits.kafka_max_connections"); n != 1 {
		t.Fatalf("%d log lines for 5 refusals within the interval, want 1", n)
	}

	c1.nc.Close()
	eventually(t, "the closed connection's slot to free", 30*time.Second, func() bool { return ts.srv.Connections() < 2 })
	cl := ts.client()
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatalf("a franz-go client after a slot freed: %v", err)
	}
	if !served(c2) {
		t.Fatal("the remaining connection stopped being served")
	}
}

// TestMaxRequestBytes: a request larger than MaxRequestBytes closes its
// connection, as Kafka's socket.request.max.bytes does, with one log line;
// the client's next, smaller request on a new connection succeeds, and the
// other connections see nothing.
func TestMaxRequestBytes(t *testing.T) {
	ts, logs := startLimitedServer(t, nil, func(o *Options) { o.MaxRequestBytes = 64 << 10 })
	adm := kadm.NewClient(ts.client())
	ctx := testCtx(t)
	big := "1048576"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &big}, "big"); err != nil {
		t.Fatal(err)
	}
	other := dialRaw(t, ts)
	if !served(other) {
		t.Fatal("the bystander connection was not served")
	}

	// A raw request whose size prefix is over the limit: closed unread.
	raw := dialRaw(t, ts)
	if _, err := raw.nc.Write(binary.BigEndian.AppendUint32(nil, 1<<20)); err != nil {
		t.Fatal(err)
	}
	raw.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := raw.nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection answered a request over the maximum size")
	}

	// franz-go, allowed to send batches far above the server's limit.
	cl := ts.client(kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.ProducerLinger(0), kgo.DisableIdempotentWrite())
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "big", Value: incompressible(200 << 10)}).FirstErr()
	if err == nil {
		t.Fatal("a 200 KiB produce passed a 64 KiB request limit")
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "big", Value: []byte("small")}).FirstErr(); err != nil {
		t.Fatalf("a small produce after the refused one: %v", err)
	}
	if !served(other) {
		t.Fatal("the bystander connection stopped being served")
	}
	if n := logs.Count("request refused", "kafka_max_request_bytes"); n != 1 {
		t.Fatalf("%d log lines for the oversized requests within the interval, want 1", n)
	}
}

// TestMessageTooLarge: a record batch over the topic's max.message.bytes is
// refused with MESSAGE_TOO_LARGE and nothing is stored; smaller ones, and
// larger ones once the config is raised, are accepted.
func TestMessageTooLarge(t *testing.T) {
	ts, logs := startLimitedServer(t, nil, nil)
	adm := kadm.NewClient(ts.client())
	ctx := testCtx(t)
	small := "2048"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &small}, "capped"); err != nil {
		t.Fatal(err)
	}
	cl := ts.client(kgo.ProducerLinger(0))
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "capped", Value: incompressible(4096)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a 4 KiB record into max.message.bytes=2048: %v, want MESSAGE_TOO_LARGE", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "capped", Value: []byte("fits")}).FirstErr(); err != nil {
		t.Fatalf("a small record: %v", err)
	}
	if got := endOffset(t, ts, "capped", 0); got != 1 {
		t.Fatalf("end offset %d, want 1: the refused batch was stored", got)
	}
	if n := logs.Count("produce refused", "max.message.bytes"); n != 1 {
		t.Fatalf("%d log lines for the refused produce, want 1", n)
	}
	raised := "8192"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &raised}}, "capped"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "capped", Value: incompressible(4096)}).FirstErr(); err != nil {
		t.Fatalf("a 4 KiB record after raising max.message.bytes to 8192: %v", err)
	}
}

// TestTopicLimit: CreateTopics beyond the broker's topic limit gets
// POLICY_VIOLATION with a message naming the limit, validate-only
// creation too; a produce that would auto-create a topic fails with the
// same code; deleting a topic makes room.
func TestTopicLimit(t *testing.T) {
	ts, logs := startLimitedServer(t, func(o *broker.Options) { o.MaxTopics = 2 }, nil)
	adm := kadm.NewClient(ts.client())
	ctx := testCtx(t)
	resp, err := adm.CreateTopics(ctx, 1, 1, nil, "t1", "t2", "t3")
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, r := range resp.Sorted() {
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, kerr.PolicyViolation):
			refused = append(refused, r.Topic)
			if !strings.Contains(r.ErrMessage, "topic limit (2) is reached") {
				t.Errorf("refusal message %q does not name the limit", r.ErrMessage)
			}
		default:
			t.Errorf("topic %s: %v", r.Topic, r.Err)
		}
	}
	if len(refused) != 1 {
		t.Fatalf("refused %v, want exactly one of three topics with a limit of 2", refused)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = true
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t9", 1, 1
	req.Topics = append(req.Topics, rt)
	vresp, err := req.RequestWith(ctx, ts.client())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "validate-only creation at the limit", vresp.Topics[0].ErrorCode, kerr.PolicyViolation)

	cl := ts.client(kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(20*time.Second))
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("v")}).FirstErr()
	if !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("produce auto-creating a topic beyond the limit: %v, want POLICY_VIOLATION", err)
	}
	if n := logs.Count("topic refused", "limits.max_topics"); n != 1 {
		t.Fatalf("%d log lines for the refusals within the interval, want 1", n)
	}
	if _, err := adm.DeleteTopics(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce auto-creating a topic after a delete: %v", err)
	}
}
