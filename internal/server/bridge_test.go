package server

// Tests of Kafka-to-exchange bridge rules (config bridges:), over real
// sockets against a running server.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/config"
)

// bridgeWait bounds every wait of these tests; outcomes come much sooner.
const bridgeWait = 2 * time.Minute

func bridgeCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bridgeWait)
	t.Cleanup(cancel)
	return ctx
}

// declareBridgeTarget declares a durable direct exchange and, bound to it
// with key, a durable queue of each kind named in queues (name → type).
func declareBridgeTarget(t *testing.T, ch *amqp091.Channel, exchange, key string, queues map[string]string) {
	t.Helper()
	if err := ch.ExchangeDeclare(exchange, "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for q, typ := range queues {
		if _, err := ch.QueueDeclare(q, true, false, false, false, amqp091.Table{"x-queue-type": typ}); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q, key, exchange, false, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// consumeN reads n deliveries from a queue, acknowledging each.
func consumeN(t *testing.T, ctx context.Context, ch *amqp091.Channel, queue string, n int) []amqp091.Delivery {
	t.Helper()
	ds, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []amqp091.Delivery
	for len(out) < n {
		select {
		case d, ok := <-ds:
			if !ok {
				t.Fatalf("%s: deliveries closed after %d of %d", queue, len(out), n)
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d deliveries before the deadline", queue, len(out), n)
		}
	}
	return out
}

// produceSync produces records and fails the test on any error.
func produceSync(t *testing.T, ctx context.Context, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// bridgeMetric reads a bridge metric of a rule, -1 if it is missing.
func bridgeMetric(t *testing.T, httpAddr, name, rule string) float64 {
	t.Helper()
	return metricValue(t, httpAddr, fmt.Sprintf("%s{rule=%q}", name, rule))
}

func bridgeConfig(dir string, rules ...config.BridgeConfig) config.Config {
	cfg := faultConfig(dir)
	cfg.Bridges = rules
	return cfg
}

// TestBridgeToClassicAndQuorumQueues: records produced over Kafka reach a
// classic and a quorum queue bound to the rule's exchange, in order, with
// their keys as routing keys and the provenance headers; an unroutable
// record is dropped and counted.
func TestBridgeToClassicAndQuorumQueues(t *testing.T) {
	ctx := bridgeCtx(t)
	s := startTestServer(t, bridgeConfig(t.TempDir(),
		config.BridgeConfig{Name: "orders", Topic: "orders", Exchange: "orders.x", Start: "earliest"}), Options{})
	ch := amqpChannel(t, amqpDial(t, s.amqpAddr))
	declareBridgeTarget(t, ch, "orders.x", "eu", map[string]string{"orders-classic": "classic", "orders-quorum": "quorum"})

	cl := kafkaClient(t, s.kafkaAddr, kgo.AllowAutoTopicCreation(), kgo.ProducerBatchCompression(kgo.GzipCompression()))
	const n = 50
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte("eu"), Value: []byte(strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v" + strconv.Itoa(i))}}})
	}
	produceSync(t, ctx, cl, recs...)
	produceSync(t, ctx, cl, &kgo.Record{Topic: "orders", Key: []byte("nowhere"), Value: []byte("lost")})

	for _, q := range []string{"orders-classic", "orders-quorum"} {
		ds := consumeN(t, ctx, ch, q, n)
		for i, d := range ds {
			if string(d.Body) != strconv.Itoa(i) || d.RoutingKey != "eu" || d.Exchange != "orders.x" {
				t.Errorf("%s delivery %d: body %q key %q exchange %q", q, i, d.Body, d.RoutingKey, d.Exchange)
			}
			if d.DeliveryMode != 2 || d.Headers["h"] != "v"+strconv.Itoa(i) {
				t.Errorf("%s delivery %d: delivery mode %d, headers %v", q, i, d.DeliveryMode, d.Headers)
			}
			if d.Headers[broker.HeaderKafkaTopic] != "orders" || d.Headers[broker.HeaderKafkaPartition] != int32(0) || d.Headers[broker.HeaderKafkaOffset] != int64(i) {
				t.Errorf("%s delivery %d: provenance headers %v", q, i, d.Headers)
			}
		}
	}
	waitUntil(t, "the unroutable record is counted", func() bool {
		return bridgeMetric(t, s.httpAddr, "wharf_bridge_unroutable_total", "orders") == 1
	})
	if got := bridgeMetric(t, s.httpAddr, "wharf_bridge_records_total", "orders"); got != n+1 {
		t.Errorf("wharf_bridge_records_total = %v, want %d", got, n+1)
	}
	waitUntil(t, "the lag reaches zero", func() bool {
		return bridgeMetric(t, s.httpAddr, "wharf_bridge_lag_records", "orders") == 0
	})

	// The REST face lists the rule with the same counters.
	status, raw := restRaw(t, http.MethodGet, "http://"+s.httpAddr+"/api/v1/bridges", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/bridges: %d %s", status, raw)
	}
	sameJSON(t, "bridges", json.RawMessage(raw), fmt.Sprintf(`{"bridges":[{"name":"orders","topic":"orders","vhost":"/","exchange":"orders.x",
		"start":"earliest","bridged":%d,"unroutable":1,"looped":0,"rejected":0,"lag":0}]}`, n+1))
}

// TestBridgeFixedRoutingKey: a rule's routing_key replaces every record's
// key, and a null key is bridged too.
func TestBridgeFixedRoutingKey(t *testing.T) {
	ctx := bridgeCtx(t)
	s := startTestServer(t, bridgeConfig(t.TempDir(),
		config.BridgeConfig{Name: "fixed", Topic: "fixed-in", Exchange: "fixed.x", RoutingKey: "all", Start: "earliest"}), Options{})
	ch := amqpChannel(t, amqpDial(t, s.amqpAddr))
	declareBridgeTarget(t, ch, "fixed.x", "all", map[string]string{"fixed-q": "classic"})
	cl := kafkaClient(t, s.kafkaAddr, kgo.AllowAutoTopicCreation())
	produceSync(t, ctx, cl, &kgo.Record{Topic: "fixed-in", Key: []byte("other"), Value: []byte("a")},
		&kgo.Record{Topic: "fixed-in", Value: []byte("b")})
	ds := consumeN(t, ctx, ch, "fixed-q", 2)
	for i, want := range []string{"a", "b"} {
		if string(ds[i].Body) != want || ds[i].RoutingKey != "all" {
			t.Errorf("delivery %d: body %q routing key %q, want %q and all", i, ds[i].Body, ds[i].RoutingKey, want)
		}
	}
}

// TestBridgeWaitsForTopicAndExchange: a rule whose topic and exchange do not
// exist waits, saying so, and bridges once both are created. With start
// latest, records produced before the rule ran are not bridged.
func TestBridgeWaitsForTopicAndExchange(t *testing.T) {
	ctx := bridgeCtx(t)
	s := startTestServer(t, bridgeConfig(t.TempDir(),
		config.BridgeConfig{Name: "late", Topic: "late-in", Exchange: "late.x"}), Options{})

	cl := kafkaClient(t, s.kafkaAddr, kgo.AllowAutoTopicCreation())
	produceSync(t, ctx, cl, &kgo.Record{Topic: "late-in", Key: []byte("k"), Value: []byte("before")})
	s.waitLog(t, "bridge waiting for its exchange to exist", "rule", "late")

	ch := amqpChannel(t, amqpDial(t, s.amqpAddr))
	declareBridgeTarget(t, ch, "late.x", "k", map[string]string{"late-q": "classic"})
	s.waitLog(t, "bridge running", "rule", "late")
	waitUntil(t, "the rule reads the topic", func() bool {
		return bridgeMetric(t, s.httpAddr, "wharf_bridge_lag_records", "late") == 0
	})
	produceSync(t, ctx, cl, &kgo.Record{Topic: "late-in", Key: []byte("k"), Value: []byte("after")})
	ds := consumeN(t, ctx, ch, "late-q", 1)
	if string(ds[0].Body) != "after" {
		t.Errorf("first bridged record %q, want after (start latest)", ds[0].Body)
	}
}

// TestBridgeSkipsItsOwnExchange: a record written to the topic from the
// rule's exchange (x-amqp-exchange names it) is skipped and counted; one
// from another exchange is bridged.
func TestBridgeSkipsItsOwnExchange(t *testing.T) {
	ctx := bridgeCtx(t)
	s := startTestServer(t, bridgeConfig(t.TempDir(),
		config.BridgeConfig{Name: "loop", Topic: "loop-in", Exchange: "loop.x", Start: "earliest"}), Options{})
	ch := amqpChannel(t, amqpDial(t, s.amqpAddr))
	declareBridgeTarget(t, ch, "loop.x", "k", map[string]string{"loop-q": "classic"})
	cl := kafkaClient(t, s.kafkaAddr, kgo.AllowAutoTopicCreation())
	record := func(exchange, body string) *kgo.Record {
		rec, err := broker.RecordFromMessage(&broker.Message{Exchange: exchange, RoutingKey: "k", Body: []byte(body), Properties: []byte{0x10, 0, 2}, Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		kr := &kgo.Record{Topic: "loop-in", Key: rec.Key, Value: rec.Value}
		for _, h := range rec.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		return kr
	}
	produceSync(t, ctx, cl, record("loop.x", "own"), record("elsewhere", "foreign"))
	ds := consumeN(t, ctx, ch, "loop-q", 1)
	if string(ds[0].Body) != "foreign" || ds[0].Exchange != "loop.x" {
		t.Errorf("delivery: body %q exchange %q, want foreign through loop.x", ds[0].Body, ds[0].Exchange)
	}
	waitUntil(t, "the looped record is counted", func() bool {
		return bridgeMetric(t, s.httpAddr, "wharf_bridge_looped_total", "loop") == 1
	})
	if got := bridgeMetric(t, s.httpAddr, "wharf_bridge_records_total", "loop"); got != 1 {
		t.Errorf("wharf_bridge_records_total = %v, want 1", got)
	}
}

// TestBridgeResumesAfterRestart: records produced while the server runs,
// across a shutdown in the middle of bridging them, all reach the queue once
// the server is back; duplicates are allowed, and counted.
func TestBridgeResumesAfterRestart(t *testing.T) {
	ctx := bridgeCtx(t)
	dir := t.TempDir()
	rule := config.BridgeConfig{Name: "resume", Topic: "resume-in", Exchange: "resume.x", Start: "earliest"}
	const n = 3000
	s := startTestServer(t, bridgeConfig(dir, rule), Options{})
	ch := amqpChannel(t, amqpDial(t, s.amqpAddr))
	declareBridgeTarget(t, ch, "resume.x", "k", map[string]string{"resume-q": "classic"})
	cl := kafkaClient(t, s.kafkaAddr, kgo.AllowAutoTopicCreation())
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "resume-in", Key: []byte("k"), Value: []byte(strconv.Itoa(i))})
	}
	produceSync(t, ctx, cl, recs...)
	cl.Close()
	s.stop()

	s = startTestServer(t, bridgeConfig(dir, rule), Options{})
	ch = amqpChannel(t, amqpDial(t, s.amqpAddr))
	seen := map[string]int{}
	dup := 0
	ds, err := ch.ConsumeWithContext(ctx, "resume-q", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for len(seen) < n {
		select {
		case d := <-ds:
			if seen[string(d.Body)]++; seen[string(d.Body)] > 1 {
				dup++
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d records after the restart", len(seen), n)
		}
	}
	t.Logf("%d records bridged across a restart, %d duplicates", n, dup)
	for i := range n {
		if seen[strconv.Itoa(i)] == 0 {
			t.Errorf("record %d lost", i)
		}
	}
}

// TestBridgeWaitsDuringDiskAlarm: while the disk alarm is set the rule does
// not publish (it says so and retries); once the alarm clears, the record
// that waited is delivered.
func TestBridgeWaitsDuringDiskAlarm(t *testing.T) {
	ctx := bridgeCtx(t)
	var f alarmFakes
	f.free.Store(2 * testDiskLimit)
	cfg := bridgeConfig(t.TempDir(), config.BridgeConfig{Name: "alarm", Topic: "alarm-in", Exchange: "alarm.x", Start: "earliest"})
	cfg.Alarms = config.AlarmsConfig{DiskFreeLimitBytes: testDiskLimit, MemoryHighWatermarkBytes: -1, CheckInterval: 10 * time.Millisecond}
	s := startTestServer(t, cfg, Options{DiskFree: func(string) (uint64, error) { return f.free.Load(), nil }})

	// The record is in the topic before the exchange exists, so the rule
	// has not published it when the alarm is set.
	cl := kafkaClient(t, s.kafkaAddr, kgo.AllowAutoTopicCreation())
	produceSync(t, ctx, cl, &kgo.Record{Topic: "alarm-in", Key: []byte("k"), Value: []byte("waited")})
	f.free.Store(testDiskLimit / 2)
	waitUntil(t, "the disk alarm", func() bool { return metricsHave(t, s.httpAddr, `wharf_alarm{resource="disk"} 1`) })
	ch := amqpChannel(t, amqpDial(t, s.amqpAddr))
	declareBridgeTarget(t, ch, "alarm.x", "k", map[string]string{"alarm-q": "classic"})
	e := s.waitLog(t, "bridge cannot publish; retrying", "rule", "alarm")
	if !strings.Contains(e.attrs["err"], "disk") {
		t.Errorf("the rule's publish failed with %q, want the disk alarm", e.attrs["err"])
	}
	if q, err := ch.QueueDeclarePassive("alarm-q", true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Fatalf("queue during the alarm: %+v %v, want empty", q, err)
	}

	f.free.Store(2 * testDiskLimit)
	if d := consumeN(t, ctx, ch, "alarm-q", 1)[0]; string(d.Body) != "waited" {
		t.Errorf("delivery %q, want waited", d.Body)
	}
}
