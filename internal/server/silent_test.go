package server

// Silent peers: clients whose traffic is black-holed, as by a dead machine
// or a dropped route, without any FIN or RST. A proxy in the test forwards
// a client's connections to the server until it is silenced; from then on
// it forwards nothing in either direction and closes nothing, so each side
// sees an open, silent connection. The server must notice through its own
// liveness checks (AMQP heartbeats, Kafka session timeouts, WebSocket
// pings), end what the client held and carry on.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/config"
)

// blackhole is a TCP proxy that can stop forwarding without closing.
type blackhole struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu       sync.Mutex
	cond     *sync.Cond // broadcast when state, done or an upstream changes
	state    int        // loud, silent or draining
	upstream []*upstream
	all      []net.Conn
	done     bool
}

// upstream is a proxy -> server connection.
type upstream struct {
	nc    net.Conn
	ended bool  // its reader stopped
	err   error // why: io.EOF when the server closed it
}

const (
	loud     = iota // forwarding
	silent          // forwarding nothing, reading nothing
	draining        // reading the server side, to see it close
)

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackhole{t: t, ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *blackhole) addr() string { return p.ln.Addr().String() }

func (p *blackhole) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.all = append(p.all, client)
		hold := p.state != loud
		p.mu.Unlock()
		if hold {
			continue // a new connection into the black hole: never answered
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		up := &upstream{nc: server}
		p.mu.Lock()
		p.all = append(p.all, server)
		p.upstream = append(p.upstream, up)
		p.mu.Unlock()
		go p.pipe(server, client, nil)
		go p.pipe(client, server, up)
	}
}

// pipe copies src to dst while loud; up is set when src is the server
// side. Silenced, it stops reading (what it had read is dropped); draining,
// it reads and drops the server side until the server closes it.
func (p *blackhole) pipe(dst, src net.Conn, up *upstream) {
	buf := make([]byte, 32<<10)
	for {
		p.mu.Lock()
		for !p.done && (p.state == silent || p.state == draining && up == nil) {
			p.cond.Wait()
		}
		done := p.done
		p.mu.Unlock()
		if done {
			return
		}
		n, err := src.Read(buf)
		p.mu.Lock()
		state := p.state
		p.mu.Unlock()
		if state == loud && n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil && err == nil {
				err = werr
			}
		}
		if err != nil {
			if state == loud {
				src.Close()
				dst.Close()
			}
			if up != nil {
				p.mu.Lock()
				up.ended, up.err = true, err
				p.cond.Broadcast()
				p.mu.Unlock()
			}
			return
		}
	}
}

// silence stops all forwarding, for existing and new connections alike.
func (p *blackhole) silence() {
	p.mu.Lock()
	p.state = silent
	p.cond.Broadcast()
	p.mu.Unlock()
}

// serverClosedAll reads and drops what the server sent into the black
// hole, and reports whether the server closed every connection that went
// through the proxy, waiting at most limit.
func (p *blackhole) serverClosedAll(limit time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = draining
	for _, up := range p.upstream {
		up.nc.SetReadDeadline(time.Now().Add(limit))
	}
	p.cond.Broadcast()
	for {
		ended := true
		for _, up := range p.upstream {
			ended = ended && up.ended
		}
		if ended || p.done {
			break
		}
		p.cond.Wait()
	}
	for _, up := range p.upstream {
		if !errors.Is(up.err, io.EOF) && !errors.Is(up.err, syscall.ECONNRESET) {
			return fmt.Errorf("a silent client's connection is still open on the server: %v", up.err)
		}
	}
	return nil
}

func (p *blackhole) close() {
	p.ln.Close()
	p.mu.Lock()
	p.done = true
	for _, c := range p.all {
		c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// runningServerWith is runningServer with a configuration of the test's.
func runningServerWith(t *testing.T, mutate func(*config.Config)) (httpAddr, kafkaAddr, amqpAddr string) {
	t.Helper()
	rec := newRecorder()
	cfg := testConfig(t)
	mutate(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(rec)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	httpAddr, kafkaAddr, amqpAddr = listenAddrs(rec.waitFor(t, "wharf ready"))
	go func() {
		for range rec.ch {
		}
	}()
	return httpAddr, kafkaAddr, amqpAddr
}

// TestSilentAMQPConsumerIsDroppedAndItsMessagesRedelivered black-holes a
// consumer holding unacknowledged messages: the server closes its
// connection after two missed heartbeat intervals and requeues the
// messages, which another consumer then gets with redelivered set.
func TestSilentAMQPConsumerIsDroppedAndItsMessagesRedelivered(t *testing.T) {
	_, _, amqpAddr := runningServerWith(t, func(c *config.Config) { c.AMQPHeartbeat = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	proxy := newBlackhole(t, amqpAddr)

	victim, err := amqp091.DialConfig("amqp://guest:guest@"+proxy.addr()+"/", amqp091.Config{Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	vch, err := victim.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vch.QueueDeclare("work", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := vch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := vch.Consume("work", "victim", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	pub, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/")
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
	const total = 20
	for i := range total {
		dc, err := pch.PublishWithDeferredConfirmWithContext(ctx, "", "work", true, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(fmt.Sprintf("m%02d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	held := map[string]bool{}
	for len(held) < 10 {
		select {
		case d := <-deliveries:
			held[string(d.Body)] = true
		case <-ctx.Done():
			t.Fatalf("the victim got %d of its 10 deliveries", len(held))
		}
	}

	proxy.silence()

	rescuer, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer rescuer.Close()
	rch, err := rescuer.Channel()
	if err != nil {
		t.Fatal(err)
	}
	rd, err := rch.Consume("work", "rescuer", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{} // body -> redelivered
	for len(got) < total {
		select {
		case d := <-rd:
			if _, dup := got[string(d.Body)]; dup {
				t.Fatalf("%s delivered twice to the rescuer", d.Body)
			}
			got[string(d.Body)] = d.Redelivered
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("the rescuer got %d of %d messages", len(got), total)
		}
	}
	for body, redelivered := range got {
		if redelivered != held[body] {
			t.Errorf("%s: redelivered %v, but the silent consumer held it: %v", body, redelivered, held[body])
		}
	}
	if err := proxy.serverClosedAll(time.Minute); err != nil {
		t.Error(err)
	}
}

// TestSilentKafkaGroupMemberIsEvicted black-holes one member of a consumer
// group: the coordinator evicts it once its session times out, and the
// other member is assigned its partitions and consumes what is produced
// to them.
func TestSilentKafkaGroupMemberIsEvicted(t *testing.T) {
	_, kafkaAddr, _ := runningServerWith(t, func(*config.Config) {})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic, group, parts = "tasks", "workers", 4
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	proxy := newBlackhole(t, kafkaAddr)

	// consumed records which member read each record, by value.
	var mu sync.Mutex
	consumed := map[string]string{}
	member := func(name string, extra ...kgo.Opt) (*kgo.Client, context.CancelFunc) {
		opts := append([]kgo.Opt{
			kgo.SeedBrokers(kafkaAddr), kgo.ClientID(name),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
			kgo.FetchMaxWait(200 * time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		}, extra...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		pctx, stop := context.WithCancel(ctx)
		go func() {
			for pctx.Err() == nil {
				fs := cl.PollFetches(pctx)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					consumed[string(r.Value)] = name
					mu.Unlock()
				})
			}
		}()
		return cl, stop
	}
	survivor, stopSurvivor := member("survivor")
	defer func() { stopSurvivor(); survivor.Close() }()
	var dialer net.Dialer
	victim, stopVictim := member("victim", kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, proxy.addr())
	}))
	defer func() {
		stopVictim()
		proxy.close() // its connections fail at once instead of at their timeouts
		victim.Close()
	}()

	members := func() []string {
		gs, err := adm.DescribeGroups(ctx, group)
		if err != nil || gs[group].Err != nil || gs[group].State != "Stable" {
			return nil
		}
		var ids []string
		for _, m := range gs[group].Members {
			ids = append(ids, m.ClientID)
		}
		sort.Strings(ids)
		return ids
	}
	waitFor(t, "both members in a stable group", time.Minute, func() bool {
		return strings.Join(members(), ",") == "survivor,victim"
	})
	produced := 0
	produce := func() {
		t.Helper()
		var rs []*kgo.Record
		for p := range parts {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprint("r", produced))})
			produced++
		}
		pcl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer pcl.Close()
		if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	readers := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		n := map[string]int{}
		for _, who := range consumed {
			n[who]++
		}
		return n
	}
	produce()
	waitFor(t, "both members consuming", time.Minute, func() bool {
		n := readers()
		return n["survivor"]+n["victim"] == produced && n["victim"] > 0 && n["survivor"] > 0
	})

	proxy.silence()
	waitFor(t, "the silent member's eviction", time.Minute, func() bool {
		return strings.Join(members(), ",") == "survivor"
	})
	first := produced
	produce()
	waitFor(t, "the survivor consuming what is produced to every partition", time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := first; i < produced; i++ {
			if consumed[fmt.Sprint("r", i)] != "survivor" {
				return false
			}
		}
		return true
	})
}

// TestSilentWebSocketClientIsClosed black-holes a WebSocket client: its
// pings go unanswered, and the server closes the connection.
func TestSilentWebSocketClientIsClosed(t *testing.T) {
	httpAddr, _, _ := runningServerWith(t, func(c *config.Config) { c.WebSocket.PingInterval = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	proxy := newBlackhole(t, httpAddr)
	var dialer net.Dialer
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, proxy.addr())
	}}}
	c, _, err := websocket.Dial(ctx, "ws://"+httpAddr+"/ws", &websocket.DialOptions{
		HTTPClient: hc, HTTPHeader: http.Header{"Authorization": {"Basic Z3Vlc3Q6Z3Vlc3Q="}}, // guest:guest
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if m := wsRead(t, ctx, c); m["type"] != "welcome" {
		t.Fatalf("first frame %v", m)
	}
	// Keep reading, so the client answers pings while it can.
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	waitFor(t, "the websocket connection to count", time.Minute, func() bool {
		return metricValue(t, httpAddr, `wharf_connections{protocol="websocket"}`) == 1
	})
	proxy.silence()
	waitFor(t, "the server to drop the silent websocket client", time.Minute, func() bool {
		return metricValue(t, httpAddr, `wharf_connections{protocol="websocket"}`) == 0
	})
	if err := proxy.serverClosedAll(time.Minute); err != nil {
		t.Error(err)
	}
}

// metricValue reads one sample from /metrics, -1 if it is missing.
func metricValue(t *testing.T, httpAddr, sample string) float64 {
	t.Helper()
	_, body := get(t, "http://"+httpAddr+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// waitFor polls cond until it holds or limit passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
