package server

// Disk faults end to end: a server runs on a fault-injecting filesystem
// (storage/faultfs) and real clients produce and publish while writes fail
// with ENOSPC or EIO, or fsyncs fail. Each test checks the error each
// protocol answers, that service resumes once the fault clears without a
// restart, that a consumer is never served what was not acknowledged, and
// that everything acknowledged is there after a restart on the same data.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/storage/faultfs"
)

// diskFaults are the faults every test runs under. They last until
// cleared.
var diskFaults = []struct {
	name  string
	arm   func(*faultfs.FS)
	write bool // the fault fails writes (not only fsyncs)
}{
	{"ENOSPC on write", func(fs *faultfs.FS) { fs.FailWrites(syscall.ENOSPC, -1, 7) }, true},
	{"EIO on write", func(fs *faultfs.FS) { fs.FailWrites(syscall.EIO, -1, 0) }, true},
	{"fsync failure", func(fs *faultfs.FS) { fs.FailSyncs(syscall.EIO, -1) }, false},
}

// segmentsUnder selects the log segments below dir/sub (the topics' or
// the queues' logs), leaving the broker's own logs alone.
func segmentsUnder(dir string, subs ...string) func(string) bool {
	return func(path string) bool {
		for _, sub := range subs {
			if strings.HasPrefix(path, filepath.Join(dir, sub)+string(filepath.Separator)) {
				return faultfs.IsSegment(path)
			}
		}
		return false
	}
}

// failures is how many operations the fault has failed so far.
func failures(fs *faultfs.FS) int {
	c := fs.Counts()
	return c.FailedWrites + c.FailedSyncs + c.FailedDirs
}

// seenRecords collects what a consumer was served, by offset.
type seenRecords struct {
	mu   sync.Mutex
	recs map[int64]string
	errs []string
}

func (s *seenRecords) add(offset int64, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.recs[offset]; ok && prev != value {
		s.errs = append(s.errs, fmt.Sprintf("offset %d served as %q and as %q", offset, prev, value))
	}
	s.recs[offset] = value
}

func (s *seenRecords) snapshot() (map[int64]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.recs), slices.Clone(s.errs)
}

func TestKafkaDiskFaults(t *testing.T) {
	for _, tc := range diskFaults {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dir := t.TempDir()
			fs := faultfs.New(nil)
			fs.SetMatch(segmentsUnder(dir, "topics"))
			srv := startTestServer(t, faultConfig(dir), Options{FS: fs})
			const topic = "faults"
			if _, err := kadm.NewClient(kafkaClient(t, srv.kafkaAddr)).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				t.Fatal(err)
			}

			// A consumer reads from the start the whole time.
			seen := &seenRecords{recs: map[int64]string{}}
			consumer := kafkaClient(t, srv.kafkaAddr, kgo.FetchMaxWait(200*time.Millisecond), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
			cctx, stopConsumer := context.WithCancel(ctx)
			consumed := make(chan struct{})
			go func() {
				defer close(consumed)
				for cctx.Err() == nil {
					consumer.PollFetches(cctx).EachRecord(func(r *kgo.Record) { seen.add(r.Offset, string(r.Value)) })
				}
			}()
			defer func() { stopConsumer(); <-consumed }()

			// An idempotent acks=all producer that retries, and one that
			// does not retry, so the error reaches it.
			retrying := kafkaClient(t, srv.kafkaAddr, kgo.DefaultProduceTopic(topic), kgo.MetadataMinAge(100*time.Millisecond))
			strict := kafkaClient(t, srv.kafkaAddr, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(0))
			acked := map[string]int64{}
			produce := func(cl *kgo.Client, v string) error {
				r, err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).First()
				if err == nil {
					acked[v] = r.Offset
				}
				return err
			}
			for i := range 20 {
				if err := produce(retrying, fmt.Sprint("before-", i)); err != nil {
					t.Fatal(err)
				}
			}

			tc.arm(fs)
			if err := produce(strict, "refused"); !errors.Is(err, kerr.KafkaStorageError) {
				t.Fatalf("produce under the fault: %v, want KAFKA_STORAGE_ERROR", err)
			}
			// The retrying producer's record waits out the fault: it is
			// refused at least once, then stored once the fault clears.
			before := failures(fs)
			during := newPromised()
			retrying.Produce(ctx, &kgo.Record{Value: []byte("during")}, during.done)
			waitUntil(t, "the retrying producer hits the fault", func() bool { return failures(fs) > before })
			fs.Clear()
			r, err := during.wait(t, ctx)
			if err != nil {
				t.Fatalf("retried produce after the fault cleared: %v", err)
			}
			acked["during"] = r.Offset
			// Service resumed without a restart.
			if err := produce(strict, "after"); err != nil {
				t.Fatalf("produce after the fault cleared: %v", err)
			}

			want := map[int64]string{}
			for v, o := range acked {
				want[o] = v
			}
			if len(want) != len(acked) {
				t.Fatalf("two acknowledged records share an offset: %v", acked)
			}
			waitUntil(t, "the consumer has every acknowledged record", func() bool {
				got, _ := seen.snapshot()
				return len(got) >= len(want)
			})
			stopConsumer()
			<-consumed
			got, errs := seen.snapshot()
			if len(errs) > 0 {
				t.Fatalf("the consumer was served different records at one offset: %v", errs)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("the consumer was served %v\nwant exactly the acknowledged records %v", got, want)
			}

			// Everything acknowledged is there after a restart, and
			// nothing else.
			srv.stop()
			srv = startTestServer(t, faultConfig(dir), Options{})
			if back := readTopic(t, ctx, srv.kafkaAddr, topic); !maps.Equal(back, want) {
				t.Fatalf("after a restart the topic holds %v\nwant %v", back, want)
			}
		})
	}
}

// amqpDial connects as guest; the connection closes with the test.
func amqpDial(t *testing.T, addr string) *amqp091.Connection {
	t.Helper()
	c, err := amqp091.Dial("amqp://guest:guest@" + addr + "/")
	if err != nil {
		t.Fatalf("amqp dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func amqpChannel(t *testing.T, c *amqp091.Connection) *amqp091.Channel {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// confirmedPublish publishes a persistent message on a confirm-mode channel
// and returns whether the broker acked it.
func confirmedPublish(t *testing.T, ctx context.Context, ch *amqp091.Channel, queue, body string) bool {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
		amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(body)})
	if err != nil {
		t.Fatalf("publish %q: %v", body, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		t.Fatalf("confirm of %q: %v", body, err)
	}
	return ok
}

// drainQueue takes every message of a queue with basic.get and no-ack.
func drainQueue(t *testing.T, ch *amqp091.Channel, queue string) []string {
	t.Helper()
	var out []string
	for {
		m, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("basic.get: %v", err)
		}
		if !ok {
			return out
		}
		out = append(out, string(m.Body))
	}
}

func TestAMQPDiskFaults(t *testing.T) {
	for _, tc := range diskFaults {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dir := t.TempDir()
			fs := faultfs.New(nil)
			fs.SetMatch(segmentsUnder(dir, "queues"))
			srv := startTestServer(t, faultConfig(dir), Options{FS: fs})
			const queue = "jobs"

			// A consumer on its own connection takes everything and
			// acknowledges nothing, so all of it comes back after the
			// restart.
			cch := amqpChannel(t, amqpDial(t, srv.amqpAddr))
			if _, err := cch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
				t.Fatal(err)
			}
			if err := cch.Qos(1000, 0, false); err != nil {
				t.Fatal(err)
			}
			deliveries, err := cch.Consume(queue, "", false, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			var seenMu sync.Mutex
			var seen []string
			go func() {
				for d := range deliveries {
					seenMu.Lock()
					seen = append(seen, string(d.Body))
					seenMu.Unlock()
				}
			}()
			seenNow := func() []string {
				seenMu.Lock()
				defer seenMu.Unlock()
				return slices.Clone(seen)
			}

			pub := amqpChannel(t, amqpDial(t, srv.amqpAddr))
			if err := pub.Confirm(false); err != nil {
				t.Fatal(err)
			}
			var acked []string
			for i := range 10 {
				v := fmt.Sprint("before-", i)
				if !confirmedPublish(t, ctx, pub, queue, v) {
					t.Fatalf("%s nacked without a fault", v)
				}
				acked = append(acked, v)
			}

			tc.arm(fs)
			if confirmedPublish(t, ctx, pub, queue, "refused") {
				t.Fatal("a publish under the fault was acked")
			}
			if tc.write {
				// A publisher without confirms learns of a failed
				// write from 541 INTERNAL_ERROR on its connection.
				c := amqpDial(t, srv.amqpAddr)
				closed := c.NotifyClose(make(chan *amqp091.Error, 1))
				ch := amqpChannel(t, c)
				if err := ch.PublishWithContext(ctx, "", queue, false, false,
					amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("unconfirmed")}); err != nil {
					t.Fatal(err)
				}
				select {
				case e := <-closed:
					if e == nil || e.Code != amqp091.InternalError {
						t.Fatalf("unconfirmed publish under a failing write: connection closed with %v, want 541", e)
					}
				case <-ctx.Done():
					t.Fatal("an unconfirmed publish under a failing write did not close the connection")
				}
			}
			fs.Clear()
			if !confirmedPublish(t, ctx, pub, queue, "after") {
				t.Fatal("publish after the fault cleared was nacked")
			}
			acked = append(acked, "after")

			waitUntil(t, "the consumer has every acknowledged message", func() bool { return len(seenNow()) >= len(acked) })
			if got := seenNow(); !slices.Equal(got, acked) {
				t.Fatalf("the consumer got %q, want exactly the acknowledged %q", got, acked)
			}

			srv.stop()
			srv = startTestServer(t, faultConfig(dir), Options{})
			if back := drainQueue(t, amqpChannel(t, amqpDial(t, srv.amqpAddr)), queue); !slices.Equal(back, acked) {
				t.Fatalf("after a restart the queue holds %q, want %q", back, acked)
			}
		})
	}
}

// wsReply sends a request over WebSocket and returns the reply with its id,
// skipping anything else.
func wsReply(t *testing.T, ctx context.Context, c *websocket.Conn, req map[string]any) map[string]any {
	t.Helper()
	wsWrite(t, ctx, c, req)
	for {
		m := wsRead(t, ctx, c)
		if m["id"] == req["id"] {
			return m
		}
	}
}

func TestGatewayDiskFaults(t *testing.T) {
	for _, tc := range diskFaults {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dir := t.TempDir()
			fs := faultfs.New(nil)
			fs.SetMatch(segmentsUnder(dir, "topics", "queues"))
			srv := startTestServer(t, faultConfig(dir), Options{FS: fs})
			const topic, queue = "web", "webq"
			api := "http://" + srv.httpAddr + "/api/v1"
			if _, err := amqpChannel(t, amqpDial(t, srv.amqpAddr)).QueueDeclare(queue, true, false, false, false, nil); err != nil {
				t.Fatal(err)
			}
			ws := wsDial(t, ctx, srv.httpAddr)

			var records, messages []string // acknowledged
			restProduce := func(v string) (int, map[string]any) {
				return restCall(t, "POST", api+"/topics/"+topic+"/records", map[string]any{"records": []map[string]any{{"value": v}}})
			}
			restPublish := func(v string) (int, map[string]any) {
				return restCall(t, "POST", api+"/vhosts/%2F/exchanges/amq.default/publish",
					map[string]any{"routing_key": queue, "body": v, "properties": map[string]any{"delivery_mode": 2}})
			}
			wsProduce := func(id, v string) map[string]any {
				return wsReply(t, ctx, ws, map[string]any{"type": "produce", "id": id, "topic": topic, "value": v})
			}
			wsPublish := func(id, v string) map[string]any {
				return wsReply(t, ctx, ws, map[string]any{"type": "publish", "id": id, "exchange": "", "routing_key": queue,
					"body": v, "properties": map[string]any{"delivery_mode": 2}})
			}
			ok := func(what string, status int, body map[string]any) {
				t.Helper()
				if status != 200 {
					t.Fatalf("%s: %d %v", what, status, body)
				}
			}
			wsOK := func(what string, m map[string]any) {
				t.Helper()
				if m["type"] != "ok" {
					t.Fatalf("%s: %v", what, m)
				}
			}
			st, body := restProduce("rest-before")
			ok("rest produce", st, body)
			wsOK("ws produce", wsProduce("p1", "ws-before"))
			records = append(records, "rest-before", "ws-before")
			st, body = restPublish("rest-before")
			ok("rest publish", st, body)
			wsOK("ws publish", wsPublish("q1", "ws-before"))
			messages = append(messages, "rest-before", "ws-before")

			tc.arm(fs)
			// Every face answers an error that says the service is
			// unavailable (a retry can succeed), and nothing is stored.
			if st, body := restProduce("refused"); st != 503 || body["code"] != "unavailable" {
				t.Fatalf("rest produce under the fault: %d %v, want 503 unavailable", st, body)
			}
			if st, body := restPublish("refused"); st != 503 || body["code"] != "unavailable" {
				t.Fatalf("rest publish under the fault: %d %v, want 503 unavailable", st, body)
			}
			if m := wsProduce("p2", "refused"); m["type"] != "error" || m["code"] != "unavailable" {
				t.Fatalf("ws produce under the fault: %v, want an unavailable error", m)
			}
			if m := wsPublish("q2", "refused"); m["type"] != "error" || m["code"] != "unavailable" {
				t.Fatalf("ws publish under the fault: %v, want an unavailable error", m)
			}

			fs.Clear()
			st, body = restProduce("rest-after")
			ok("rest produce after the fault", st, body)
			wsOK("ws produce after the fault", wsProduce("p3", "ws-after"))
			records = append(records, "rest-after", "ws-after")
			st, body = restPublish("rest-after")
			ok("rest publish after the fault", st, body)
			wsOK("ws publish after the fault", wsPublish("q3", "ws-after"))
			messages = append(messages, "rest-after", "ws-after")

			ws.Close(websocket.StatusNormalClosure, "")
			srv.stop()
			srv = startTestServer(t, faultConfig(dir), Options{})
			back := readTopic(t, ctx, srv.kafkaAddr, topic)
			var got []string
			for _, o := range slices.Sorted(maps.Keys(back)) {
				got = append(got, back[o])
			}
			if !slices.Equal(got, records) {
				t.Fatalf("after a restart the topic holds %q, want %q", got, records)
			}
			if back := drainQueue(t, amqpChannel(t, amqpDial(t, srv.amqpAddr)), queue); !slices.Equal(back, messages) {
				t.Fatalf("after a restart the queue holds %q, want %q", back, messages)
			}
		})
	}
}
