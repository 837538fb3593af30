//go:build unix

package server

// The storm test throws garbage and connection floods at every port of a
// server running in its own process, all at once, while real clients keep
// producing and publishing; then it checks that the server is healthy: it
// reports ready, real clients of every protocol work, what was written
// before the storm and what was acknowledged during it is intact, the
// connections that never said anything were closed by the server itself,
// and the process's goroutines, file descriptors and memory came back
// down. The child runs with few file descriptors, so the flood exhausts
// them and the listeners have to survive EMFILE.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/storage"
)

const (
	// stormNofile is the child's file descriptor limit; stormIdle
	// connections per port, held open at once, exceed it.
	stormNofile = 256
	stormIdle   = 100
	// stormDrop connections per port are opened at once and dropped, in
	// every flood round.
	stormDrop = 300
	// stormBefore records and messages are written before the storm.
	stormBefore = 300
	// stormIOTimeout bounds every read and write of a garbage case. While
	// the flood holds every file descriptor, a connection waits in the
	// accept queue until the server frees some.
	stormIOTimeout = 45 * time.Second
)

// stormAddrs are the child's listeners.
type stormAddrs struct{ kafka, amqp, http string }

func TestGarbageAndFloodsLeaveServerHealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	stormFor := 8 * time.Second
	if longTests() {
		stormFor = time.Minute
	}
	addrs := stormAddrs{kafka: freeLoopbackAddr(t), amqp: freeLoopbackAddr(t), http: freeLoopbackAddr(t)}
	child := startConfiguredChild(t, addrs.http,
		"WHARF_DATA_DIR="+t.TempDir(),
		"WHARF_KAFKA_LISTEN="+addrs.kafka,
		"WHARF_AMQP_LISTEN="+addrs.amqp,
		"WHARF_KAFKA_CONNECTIONS_MAX_IDLE=3s",
		"WHARF_LOG_LEVEL=warn",
		childNofileEnv+"="+strconv.Itoa(stormNofile))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	writeBeforeStorm(t, ctx, addrs)
	base := waitQuiet(t, addrs.http, nil)
	t.Logf("before the storm: %d goroutines, %d open files, heap in use %.1f MiB, resident %.1f MiB",
		int(base.goroutines), int(base.fds), base.heap/(1<<20), base.rss/(1<<20))

	// Real clients keep writing through the storm, on connections opened
	// before it. The storm stops early if the server dies.
	stormCtx, stopStorm := context.WithTimeout(ctx, stormFor)
	defer stopStorm()
	go func() {
		select {
		case <-child.done:
			stopStorm()
		case <-stormCtx.Done():
		}
	}()
	var wg sync.WaitGroup
	kafkaAcked := map[string]bool{}
	amqpConfirmed := map[string]bool{}
	kafkaDuring, amqpDuring := newKafkaWriter(t, addrs), newAMQPWriter(t, addrs)
	wg.Add(2)
	go func() { defer wg.Done(); kafkaDuring.run(stormCtx, kafkaAcked) }()
	go func() { defer wg.Done(); amqpDuring.run(stormCtx, amqpConfirmed) }()

	// Garbage on every port, several workers each: every case twice, then
	// cases at random until the storm is over.
	var errsMu sync.Mutex
	var errs []error
	cases := stormCases(addrs)
	counts := make([]int, len(cases))
	var countsMu sync.Mutex
	mandatory := make(chan int, 2*len(cases))
	for range 2 {
		for k := range cases {
			mandatory <- k
		}
	}
	close(mandatory)
	for w := range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for {
				k, ok := <-mandatory
				if !ok || isDone(child.done) {
					if stormCtx.Err() != nil {
						return
					}
					k = rng.IntN(len(cases))
				}
				if err := cases[k].run(rng); err != nil {
					errsMu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", cases[k].name, err))
					errsMu.Unlock()
				}
				countsMu.Lock()
				counts[k]++
				countsMu.Unlock()
			}
		}()
	}

	// Floods: connections opened at once and dropped, in rounds; halfway,
	// connections opened and left idle, more than the child has file
	// descriptors.
	var idle []net.Conn
	var idleMu sync.Mutex
	rounds := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for halfway := time.Now().Add(stormFor / 2); time.Now().Before(halfway) && stormCtx.Err() == nil; rounds++ {
			flood(t, addrs, stormDrop, true)
		}
		conns := flood(t, addrs, stormIdle, false)
		idleMu.Lock()
		idle = append(idle, conns...)
		idleMu.Unlock()
		for ; stormCtx.Err() == nil; rounds++ {
			flood(t, addrs, stormDrop, true)
		}
	}()

	// The server's memory through the storm.
	var peakRSS float64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for stormCtx.Err() == nil {
			if m, err := scrape(addrs.http, 2*time.Second); err == nil {
				peakRSS = max(peakRSS, m.rss)
			}
			select {
			case <-stormCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	if isDone(child.done) {
		t.Fatalf("the server died in the storm: %v\n%s", child.err, child.out.String())
	}
	for i, err := range errs {
		if i == 20 {
			t.Errorf("... and %d more", len(errs)-i)
			break
		}
		t.Error(err)
	}
	for i, c := range cases {
		t.Logf("%5d × %s", counts[i], c.name)
	}
	t.Logf("%5d × %d connections opened at once and dropped, on each of the 3 ports", rounds, stormDrop)

	// Every connection left idle is closed by the server: AMQP's handshake
	// timeout, HTTP's header timeout, Kafka's idle timeout.
	idleMu.Lock()
	t.Logf("waiting for the server to close %d idle connections", len(idle))
	idleDeadline := time.Now().Add(2 * time.Minute)
	for _, nc := range idle {
		nc.SetReadDeadline(idleDeadline)
		if _, err := io.Copy(io.Discard, nc); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("idle connection to %s not closed by the server: %v", nc.RemoteAddr(), err)
		}
		nc.Close()
	}
	idleMu.Unlock()
	if !strings.Contains(child.out.String(), "accept failed; retrying with backoff") {
		t.Errorf("the flood never exhausted the server's %d file descriptors: the test did not test that", stormNofile)
	}

	// Healthy: ready, and every protocol's real clients work and find what
	// was written before and during the storm.
	if code, body := get(t, "http://"+addrs.http+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the storm: %d %s", code, body)
	}
	kafkaDuring.close()
	amqpDuring.close()
	checkAfterStorm(t, ctx, addrs, kafkaAcked, amqpConfirmed)

	after := waitQuiet(t, addrs.http, &base)
	t.Logf("after the storm: %d goroutines, %d open files, heap in use %.1f MiB, resident %.1f MiB (peak during the storm %.1f MiB)",
		int(after.goroutines), int(after.fds), after.heap/(1<<20), after.rss/(1<<20), peakRSS/(1<<20))
	if peakRSS > 2<<30 {
		t.Errorf("resident memory reached %.0f MiB during the storm", peakRSS/(1<<20))
	}
	child.stop()
	if testing.Verbose() {
		t.Logf("server log:\n%s", child.out.String())
	}
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ---- the server's health as /metrics tells it ----

type processStats struct {
	goroutines, fds, heap, rss, conns, buffered float64
}

// scrape reads the child's /metrics.
func scrape(httpAddr string, timeout time.Duration) (processStats, error) {
	cl := http.Client{Timeout: timeout}
	resp, err := cl.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return processStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return processStats{}, fmt.Errorf("/metrics: %s", resp.Status)
	}
	var s processStats
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case name == "go_goroutines":
			s.goroutines = v
		case name == "process_open_fds":
			s.fds = v
		case name == "go_memstats_heap_inuse_bytes":
			s.heap = v
		case name == "process_resident_memory_bytes":
			s.rss = v
		case strings.HasPrefix(name, "wharf_connections{"):
			s.conns += v
		case strings.HasPrefix(name, "wharf_outbound_buffered_bytes{"):
			s.buffered += v
		}
	}
	return s, sc.Err()
}

// waitQuiet waits until the child has no client connection (but the
// scrape's own) and holds nothing for clients to read and, given a
// baseline, until its goroutines, file
// descriptors and heap are back near it. Generous bounds, no timing.
func waitQuiet(t *testing.T, httpAddr string, base *processStats) processStats {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var s processStats
	var err error
	for {
		s, err = scrape(httpAddr, 10*time.Second)
		ok := err == nil && s.conns == 0 && s.buffered == 0
		if ok && base != nil {
			ok = s.goroutines <= base.goroutines+15 &&
				s.fds <= base.fds+10 &&
				s.heap <= 2*base.heap+64<<20
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			if base != nil {
				t.Fatalf("the server did not come back down: now %+v (err %v), before the storm %+v", s, err, *base)
			}
			t.Fatalf("the server did not go quiet: %+v (err %v)", s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- data written before, during and after the storm ----

func stormValue(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }

// writeBeforeStorm creates the topics and queues and writes stormBefore
// records and persistent messages.
func writeBeforeStorm(t *testing.T, ctx context.Context, addrs stormAddrs) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for topic, parts := range map[string]int32{"before": 3, "during": 1, "garbage": 1, "after": 1} {
		if _, err := adm.CreateTopic(ctx, parts, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	rs := make([]*kgo.Record, stormBefore)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: "before", Key: []byte(strconv.Itoa(i % 7)), Value: []byte(stormValue("before", i))}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ac, err := amqp091.Dial("amqp://guest:guest@" + addrs.amqp + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"before", "during"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range stormBefore {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "before", true, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(stormValue("before", i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %d not confirmed: %v", i, err)
		}
	}
}

// kafkaWriter produces during the storm on a connection opened before it.
type kafkaWriter struct{ cl *kgo.Client }

func newKafkaWriter(t *testing.T, addrs stormAddrs) *kafkaWriter {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs.kafka), kgo.DefaultProduceTopic("during"))
	if err != nil {
		t.Fatal(err)
	}
	// Connect now, before the flood.
	if err := cl.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &kafkaWriter{cl: cl}
}

func (w *kafkaWriter) run(ctx context.Context, acked map[string]bool) {
	for i := 0; ctx.Err() == nil; i++ {
		v := stormValue("during", i)
		pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := w.cl.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err == nil {
			acked[v] = true
		}
		cancel()
	}
}

func (w *kafkaWriter) close() { w.cl.Close() }

// amqpWriter publishes persistent messages with confirms during the storm.
type amqpWriter struct {
	c  *amqp091.Connection
	ch *amqp091.Channel
}

func newAMQPWriter(t *testing.T, addrs stormAddrs) *amqpWriter {
	t.Helper()
	c, err := amqp091.Dial("amqp://guest:guest@" + addrs.amqp + "/")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return &amqpWriter{c: c, ch: ch}
}

func (w *amqpWriter) run(ctx context.Context, confirmed map[string]bool) {
	for i := 0; ctx.Err() == nil; i++ {
		v := stormValue("during", i)
		pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		dc, err := w.ch.PublishWithDeferredConfirmWithContext(pctx, "", "during", true, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(v)})
		if err == nil {
			if ok, err := dc.WaitContext(pctx); ok && err == nil {
				confirmed[v] = true
			}
		}
		cancel()
	}
}

func (w *amqpWriter) close() { w.c.Close() }

// checkAfterStorm reads everything back with new clients of every
// protocol and writes and reads something new with each.
func checkAfterStorm(t *testing.T, ctx context.Context, addrs stormAddrs, kafkaAcked, amqpConfirmed map[string]bool) {
	t.Helper()
	t.Logf("during the storm: %d records acknowledged, %d messages confirmed", len(kafkaAcked), len(amqpConfirmed))
	if len(kafkaAcked) == 0 || len(amqpConfirmed) == 0 {
		t.Errorf("real clients got nothing through during the storm")
	}

	// Kafka: the records from before, in order per partition, and every
	// record acknowledged during the storm.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs.kafka), kgo.ConsumeTopics("before", "during", "after"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("after"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("kafka produce after the storm: %v", err)
	}
	byTopic := map[string][]string{}
	perPartition := map[int32][]int{}
	for len(byTopic["before"]) < stormBefore || len(byTopic["after"]) < 1 || !allSeen(byTopic["during"], kafkaAcked) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kafka fetch after the storm: %v (have %d before, %d during)", err, len(byTopic["before"]), len(byTopic["during"]))
		}
		fs.EachRecord(func(r *kgo.Record) {
			byTopic[r.Topic] = append(byTopic[r.Topic], string(r.Value))
			if r.Topic == "before" {
				n, _ := strconv.Atoi(strings.TrimPrefix(string(r.Value), "before-"))
				perPartition[r.Partition] = append(perPartition[r.Partition], n)
			}
		})
	}
	got := append([]string(nil), byTopic["before"]...)
	sort.Strings(got)
	for i, v := range got {
		if v != stormValue("before", i) {
			t.Fatalf("kafka records from before the storm: %d is %q", i, v)
		}
	}
	for p, ns := range perPartition {
		if !sort.IntsAreSorted(ns) {
			t.Errorf("partition %d out of order: %v", p, ns)
		}
	}

	// AMQP: the messages from before, in order, then every confirmed one.
	ac, err := amqp091.Dial("amqp://guest:guest@" + addrs.amqp + "/")
	if err != nil {
		t.Fatalf("amqp dial after the storm: %v", err)
	}
	defer ac.Close()
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for i := range stormBefore {
		m, ok, err := ch.Get("before", true)
		if err != nil || !ok || string(m.Body) != stormValue("before", i) {
			t.Fatalf("amqp message %d from before the storm: %q, %v, %v", i, m.Body, ok, err)
		}
	}
	seen := map[string]int{}
	for {
		m, ok, err := ch.Get("during", true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		seen[string(m.Body)]++
	}
	for v := range amqpConfirmed {
		if seen[v] != 1 {
			t.Errorf("confirmed message %s found %d times", v, seen[v])
		}
	}
	if err := ch.PublishWithContext(ctx, "", "before", false, false, amqp091.Publishing{Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	for {
		m, ok, err := ch.Get("before", true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if string(m.Body) != "after" {
				t.Fatalf("amqp got %q, want the message published after the storm", m.Body)
			}
			break
		}
	}

	// WebSocket: a subscription reads the topic, a produce is acknowledged.
	ws := wsDial(t, ctx, addrs.http)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "s", "topic": "after", "from": "earliest"})
	if m := wsRead(t, ctx, ws); m["type"] != "ok" {
		t.Fatalf("websocket subscribe after the storm: %v", m)
	}
	if m := wsRead(t, ctx, ws); m["type"] != "record" || m["value"] != "after" {
		t.Fatalf("websocket record after the storm: %v", m)
	}
	wsWrite(t, ctx, ws, map[string]any{"type": "produce", "id": "p", "topic": "after", "value": "ws"})
	for {
		m := wsRead(t, ctx, ws)
		if m["type"] == "record" && m["value"] == "ws" {
			break
		}
		if m["type"] == "error" {
			t.Fatalf("websocket produce after the storm: %v", m)
		}
	}
	ws.CloseNow()
}

func allSeen(got []string, want map[string]bool) bool {
	n := 0
	for _, v := range got {
		if want[v] {
			n++
		}
	}
	return n >= len(want)
}

// ---- floods ----

// flood opens n connections to every port at once. With drop, it closes
// them at once and returns nothing; otherwise it returns them open and
// silent.
func flood(t *testing.T, addrs stormAddrs, n int, drop bool) []net.Conn {
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	for _, addr := range []string{addrs.kafka, addrs.amqp, addrs.http} {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nc, err := net.DialTimeout("tcp", addr, stormIOTimeout)
				if err != nil {
					return // a full accept queue refuses; that is the flood's point
				}
				if drop {
					nc.Close()
					return
				}
				mu.Lock()
				conns = append(conns, nc)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return conns
}

// ---- garbage ----

type stormCase struct {
	name string
	run  func(rng *mrand.Rand) error
}

func randomBytes(rng *mrand.Rand, min, max int) []byte {
	b := make([]byte, min+rng.IntN(max-min+1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func stormDial(addr string) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, stormIOTimeout)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(stormIOTimeout))
	return nc, nil
}

// closedWithout reads until the server closes nc and reports an error if
// it sent anything other than want first.
func closedWithout(nc net.Conn, want []byte) error {
	got, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("not closed by the server: %w (read %q)", err, trunc(got))
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("server sent %q before closing, want %q", trunc(got), want)
	}
	return nil
}

// endsSoon reads until the server closes nc, whatever it sends.
func endsSoon(nc net.Conn) error {
	_, err := io.Copy(io.Discard, nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("not closed by the server: %w", err)
	}
	return nil
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func stormCases(addrs stormAddrs) []stormCase {
	var cases []stormCase
	cases = append(cases, kafkaStormCases(addrs.kafka)...)
	cases = append(cases, amqpStormCases(addrs.amqp)...)
	cases = append(cases, httpStormCases(addrs.http)...)
	return cases
}

// kafkaFrame encodes a request with a size prefix and header v1 (v2 for
// flexible versions).
func kafkaFrame(req kmsg.Request, version int16, corr int32) []byte {
	req.SetVersion(version)
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 5)
	b = append(b, "storm"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// kafkaResponse reads one response to req (non-flexible versions only).
func kafkaResponse(nc net.Conn, req kmsg.Request, corr int32) (kmsg.Response, error) {
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return nil, fmt.Errorf("reading a response: %w", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body[4:]); err != nil {
		return nil, err
	}
	return resp, nil
}

func kafkaStormCases(addr string) []stormCase {
	rawSize := func(name string, size uint32, extra int) stormCase {
		return stormCase{"kafka: " + name, func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			nc.Write(append(binary.BigEndian.AppendUint32(nil, size), randomBytes(rng, extra, extra)...))
			return closedWithout(nc, nil)
		}}
	}
	apiVersions := func(nc net.Conn, corr int32) error {
		req := kmsg.NewPtrApiVersionsRequest()
		if _, err := nc.Write(kafkaFrame(req, 2, corr)); err != nil {
			return err
		}
		resp, err := kafkaResponse(nc, req, corr)
		if err != nil {
			return err
		}
		if code := resp.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 {
			return fmt.Errorf("ApiVersions: error %d", code)
		}
		return nil
	}
	return []stormCase{
		{"kafka: random bytes", func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			nc.Write(randomBytes(rng, 1, 4096))
			return nc.Close() // a random size prefix may be a valid one waiting for more
		}},
		rawSize("size 0x7fffffff", 0x7fffffff, 64),
		rawSize("negative size", 0xffffffff, 64),
		rawSize("size below a header", 4, 4),
		rawSize("size over the request limit", 100<<20+1, 1024),
		{"kafka: truncated request", func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			frame := kafkaFrame(kmsg.NewPtrMetadataRequest(), 1, 1)
			nc.Write(frame[:4+rng.IntN(len(frame)-4)])
			return nc.Close()
		}},
		{"kafka: valid request, then an unknown API key", func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			if err := apiVersions(nc, 1); err != nil {
				return err
			}
			garbage := binary.BigEndian.AppendUint16(nil, 0x7fff)
			garbage = append(garbage, randomBytes(rng, 16, 256)...)
			nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(garbage))), garbage...))
			return closedWithout(nc, nil)
		}},
		{"kafka: undecodable body", func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			frame := kafkaFrame(kmsg.NewPtrMetadataRequest(), 1, 1)
			// Metadata v1's topic array: claim 2^31-1 topics.
			frame = append(frame[:len(frame)-4], 0x7f, 0xff, 0xff, 0xff)
			frame = append(frame, randomBytes(rng, 0, 64)...)
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
			nc.Write(frame)
			return closedWithout(nc, nil)
		}},
		{"kafka: corrupt batch, then a valid request on the same connection", func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			batch := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
				Records: []storage.Record{{Timestamp: 1, Value: randomBytes(rng, 1, 512)}}})
			batch[len(batch)-1] ^= 0xff // the CRC no longer matches
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = -1, 10000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "garbage"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = batch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			if _, err := nc.Write(kafkaFrame(req, 7, 1)); err != nil {
				return err
			}
			resp, err := kafkaResponse(nc, req, 1)
			if err != nil {
				return err
			}
			if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 2 { // CORRUPT_MESSAGE
				return fmt.Errorf("corrupt batch answered with error %d, want 2 (CORRUPT_MESSAGE)", code)
			}
			return apiVersions(nc, 2)
		}},
	}
}

// amqpConn is a raw AMQP client for garbage cases.
type amqpConn struct {
	nc net.Conn
	fr *wire.FrameReader
}

func (c *amqpConn) send(channel uint16, m wire.Method) error {
	b, err := wire.AppendMethodFrame(nil, channel, m, 1<<20)
	if err != nil {
		return err
	}
	_, err = c.nc.Write(b)
	return err
}

// next reads the next method, skipping heartbeats.
func (c *amqpConn) next() (uint16, wire.Method, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return 0, nil, err
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type != wire.FrameMethod {
			return 0, nil, fmt.Errorf("frame type %d, want a method", f.Type)
		}
		m, err := wire.DecodeMethod(f.Payload)
		return f.Channel, m, err
	}
}

// expectClose reads until connection.close and checks its code, answers
// close-ok and waits for the server to close the socket.
func (c *amqpConn) expectClose(code uint16) error {
	for {
		_, m, err := c.next()
		if err != nil {
			return fmt.Errorf("waiting for connection.close %d: %w", code, err)
		}
		if cl, ok := m.(*wire.ConnectionClose); ok {
			if cl.ReplyCode != code {
				return fmt.Errorf("connection.close %d %q, want %d", cl.ReplyCode, cl.ReplyText, code)
			}
			c.send(0, &wire.ConnectionCloseOk{})
			return endsSoon(c.nc)
		}
	}
}

// amqpHandshake connects as guest and opens the connection on "/".
func amqpHandshake(addr string) (*amqpConn, error) {
	nc, err := stormDial(addr)
	if err != nil {
		return nil, err
	}
	c := &amqpConn{nc: nc, fr: wire.NewFrameReader(nc, 1<<20)}
	fail := func(err error) (*amqpConn, error) {
		nc.Close()
		return nil, err
	}
	if _, err := nc.Write([]byte(wire.ProtocolHeader)); err != nil {
		return fail(err)
	}
	if _, _, err := c.next(); err != nil { // connection.start
		return fail(err)
	}
	if err := c.send(0, &wire.ConnectionStartOk{ClientProperties: wire.Table{"product": "storm"}, Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"}); err != nil {
		return fail(err)
	}
	_, m, err := c.next()
	if err != nil {
		return fail(err)
	}
	tune, ok := m.(*wire.ConnectionTune)
	if !ok {
		return fail(fmt.Errorf("got %s, want connection.tune", m.Name()))
	}
	if err := c.send(0, &wire.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax}); err != nil {
		return fail(err)
	}
	if err := c.send(0, &wire.ConnectionOpen{VirtualHost: "/"}); err != nil {
		return fail(err)
	}
	if _, m, err = c.next(); err != nil {
		return fail(err)
	}
	if _, ok := m.(*wire.ConnectionOpenOk); !ok {
		return fail(fmt.Errorf("got %s, want connection.open-ok", m.Name()))
	}
	return c, nil
}

func amqpStormCases(addr string) []stormCase {
	headerReply := func(name string, first func(rng *mrand.Rand) []byte) stormCase {
		return stormCase{"amqp: " + name, func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			nc.Write(first(rng))
			return closedWithout(nc, []byte(wire.ProtocolHeader))
		}}
	}
	afterHandshake := func(name string, code uint16, garbage func(rng *mrand.Rand) []byte) stormCase {
		return stormCase{"amqp: " + name, func(rng *mrand.Rand) error {
			c, err := amqpHandshake(addr)
			if err != nil {
				return err
			}
			defer c.nc.Close()
			c.nc.Write(garbage(rng))
			return c.expectClose(code)
		}}
	}
	return []stormCase{
		headerReply("random bytes", func(rng *mrand.Rand) []byte {
			b := randomBytes(rng, 8, 4096)
			b[0] = 'X' // never "AMQP"
			return b
		}),
		headerReply("HTTP on the AMQP port", func(*mrand.Rand) []byte {
			return []byte("GET / HTTP/1.1\r\nHost: wharf\r\n\r\n")
		}),
		{"amqp: 4 GiB frame during the handshake", func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			c := &amqpConn{nc: nc, fr: wire.NewFrameReader(nc, 1<<20)}
			nc.Write([]byte(wire.ProtocolHeader))
			if _, _, err := c.next(); err != nil {
				return err
			}
			nc.Write(append([]byte{wire.FrameMethod, 0, 0, 0xff, 0xff, 0xff, 0xff}, randomBytes(rng, 0, 1024)...))
			return c.expectClose(wire.ReplyFrameError)
		}},
		afterHandshake("4 GiB frame after the handshake", wire.ReplyFrameError, func(rng *mrand.Rand) []byte {
			return append([]byte{wire.FrameBody, 0, 1, 0xff, 0xff, 0xff, 0xff}, randomBytes(rng, 0, 1024)...)
		}),
		afterHandshake("unknown frame type", wire.ReplyFrameError, func(rng *mrand.Rand) []byte {
			return append([]byte{9, 0, 0, 0, 0, 0, 4}, randomBytes(rng, 4, 4)...)
		}),
		afterHandshake("bad frame end", wire.ReplyFrameError, func(rng *mrand.Rand) []byte {
			b, _ := wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{}, 1<<20)
			b[len(b)-1] = 0x00
			return b
		}),
		{"amqp: truncated frame after the handshake", func(rng *mrand.Rand) error {
			c, err := amqpHandshake(addr)
			if err != nil {
				return err
			}
			b, _ := wire.AppendMethodFrame(nil, 1, &wire.QueueDeclare{Queue: "x"}, 1<<20)
			c.nc.Write(b[:rng.IntN(len(b))])
			return c.nc.Close()
		}},
		{"amqp: channel error, then the connection carries on", func(rng *mrand.Rand) error {
			c, err := amqpHandshake(addr)
			if err != nil {
				return err
			}
			defer c.nc.Close()
			for range 2 {
				if err := c.send(1, &wire.ChannelOpen{}); err != nil {
					return err
				}
				if _, m, err := c.next(); err != nil {
					return err
				} else if _, ok := m.(*wire.ChannelOpenOk); !ok {
					return fmt.Errorf("got %s, want channel.open-ok", m.Name())
				}
				msg, _ := wire.AppendMessage(nil, 1, &wire.BasicPublish{Exchange: "no-such-exchange"}, &wire.Properties{}, randomBytes(rng, 0, 256), 1<<20)
				c.nc.Write(msg)
				_, m, err := c.next()
				if err != nil {
					return err
				}
				cl, ok := m.(*wire.ChannelClose)
				if !ok || cl.ReplyCode != wire.ReplyNotFound {
					return fmt.Errorf("got %s, want channel.close 404", m.Name())
				}
				if err := c.send(1, &wire.ChannelCloseOk{}); err != nil {
					return err
				}
			}
			if err := c.send(0, &wire.ConnectionClose{ReplyCode: 200}); err != nil {
				return err
			}
			if _, m, err := c.next(); err != nil {
				return err
			} else if _, ok := m.(*wire.ConnectionCloseOk); !ok {
				return fmt.Errorf("got %s, want connection.close-ok", m.Name())
			}
			return nil
		}},
	}
}

// wsKey is a valid Sec-WebSocket-Key.
func wsKey() string {
	var k [16]byte
	rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

// httpStatus reads the status code of the response on nc.
func httpStatus(nc net.Conn) (int, error) {
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return 0, fmt.Errorf("reading the response: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// wsUpgraded opens a WebSocket as guest and returns the socket after the
// 101 answer.
func wsUpgraded(addr string) (net.Conn, *bufio.Reader, error) {
	nc, err := stormDial(addr)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(nc, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Basic %s\r\n\r\n",
		addr, wsKey(), base64.StdEncoding.EncodeToString([]byte("guest:guest")))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, nil, fmt.Errorf("upgrade answered %s", resp.Status)
	}
	return nc, br, nil
}

func httpStormCases(addr string) []stormCase {
	status := func(name string, want int, request func(rng *mrand.Rand) string) stormCase {
		return stormCase{"http: " + name, func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			req := request(rng)
			// The server may answer before it has read the whole
			// request; write while reading.
			go nc.Write([]byte(req))
			code, err := httpStatus(nc)
			if err != nil {
				return err
			}
			if code != want {
				return fmt.Errorf("status %d, want %d", code, want)
			}
			return nil
		}}
	}
	upgrade := func(extra string) string {
		return "GET /ws HTTP/1.1\r\nHost: wharf\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + extra + "\r\n"
	}
	return []stormCase{
		status("random bytes", http.StatusBadRequest, func(rng *mrand.Rand) string {
			b := randomBytes(rng, 1, 4096)
			b[0] = 0 // not a method
			return string(b) + "\r\n\r\n"
		}),
		status("2 MiB header", http.StatusRequestHeaderFieldsTooLarge, func(*mrand.Rand) string {
			return "GET /healthz HTTP/1.1\r\nHost: wharf\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"
		}),
		status("upgrade with a 100 KB key", http.StatusBadRequest, func(*mrand.Rand) string {
			return upgrade("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + strings.Repeat("A", 100_000) + "\r\n")
		}),
		status("upgrade with an absurd version", http.StatusBadRequest, func(*mrand.Rand) string {
			return upgrade("Sec-WebSocket-Version: " + strings.Repeat("9", 10_000) + "\r\nSec-WebSocket-Key: " + wsKey() + "\r\n")
		}),
		status("upgrade with 100 KB of Basic credentials", http.StatusUnauthorized, func(*mrand.Rand) string {
			return upgrade("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + wsKey() + "\r\nAuthorization: Basic " + strings.Repeat("Z", 100_000) + "\r\n")
		}),
		status("upgrade with 10,000 headers", http.StatusRequestHeaderFieldsTooLarge, func(*mrand.Rand) string {
			var b strings.Builder
			for i := range 10_000 {
				fmt.Fprintf(&b, "X-Header-%d: %s\r\n", i, strings.Repeat("v", 100))
			}
			return upgrade("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + wsKey() + "\r\n" + b.String())
		}),
		{"http: WebSocket, then random frames", func(rng *mrand.Rand) error {
			nc, _, err := wsUpgraded(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			nc.Write(randomBytes(rng, 2, 4096))
			return endsSoon(nc)
		}},
		{"http: WebSocket, then a frame of 2^63-1 bytes", func(rng *mrand.Rand) error {
			nc, _, err := wsUpgraded(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			frame := []byte{0x82, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}
			nc.Write(append(frame, randomBytes(rng, 0, 1024)...))
			return endsSoon(nc)
		}},
		{"http: HTTP/2 preface, then garbage", func(rng *mrand.Rand) error {
			nc, err := stormDial(addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			nc.Write(append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), randomBytes(rng, 9, 1024)...))
			return endsSoon(nc)
		}},
	}
}
