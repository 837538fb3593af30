package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// WebSocket fan-out modes.
const (
	WSModeIdle      = "idle"      // connect, read the server's memory, disconnect
	WSModeGroup     = "group"     // receivers join groups; the publisher sends to them
	WSModeBroadcast = "broadcast" // the publisher broadcasts to every connection
	WSModeTopic     = "topic"     // receivers subscribe to a topic; the publisher produces to it
)

// wsPerSource is how many connections one client source address takes
// before the next 127.0.0.x is used: loopback has about 28,000 ephemeral
// ports per source address and destination.
const wsPerSource = 25000

// WSOptions is one WebSocket fan-out workload: Connections receivers and
// one publisher connection, all logged in as User.
type WSOptions struct {
	URL      string // ws://host:port/ws
	User     string // Basic credentials; an empty User sends none
	Password string
	Mode     string // WSModeIdle, WSModeGroup, WSModeBroadcast or WSModeTopic
	// Connections is the number of receiving connections.
	Connections int
	// Groups spreads the receivers of group mode over this many groups
	// (receiver i joins group i mod Groups); message n goes to group n mod
	// Groups, so each message reaches Connections/Groups receivers.
	Groups int
	// Topic is topic mode's topic; empty means a fresh one, created by a
	// first produce before the receivers subscribe (from latest).
	Topic    string
	Rate     int   // messages per second; 0: as fast as Window allows
	Count    int64 // messages to send; 0: send for Duration
	Duration time.Duration
	// Window bounds the publisher's requests not yet answered.
	Window int
	// Drain is how long to wait for answers and deliveries after the last
	// send.
	Drain time.Duration
	// Settle is how long the connections stay idle before the server's
	// memory is read.
	Settle time.Duration
	// DialConcurrency is how many connections are set up at once.
	DialConcurrency int
	// ServerPID and MetricsURL tell where to read the server's memory and
	// CPU (see WSTarget); neither means none is reported.
	ServerPID  int
	MetricsURL string
	// OnPhase, when not nil, is called with "connected" once every
	// receiver is connected and the idle memory has been read, and with
	// "done" after the drain (for profiles of the publishing phase alone).
	OnPhase func(phase string)
}

// WSResult is what one WebSocket run measured. Memory figures are those
// of the server process; they are absent when it could not be read.
type WSResult struct {
	Target          string  `json:"target"`
	Mode            string  `json:"mode"`
	Connections     int     `json:"connections"`
	Connected       int     `json:"connected"`
	ConnectErrors   int     `json:"connect_errors"`
	Groups          int     `json:"groups,omitempty"`
	Rate            int     `json:"target_rate"`
	Sent            int64   `json:"messages_sent"`
	SentPerSec      float64 `json:"sent_per_sec"` // achieved: below the target rate when the window was full
	Acked           int64   `json:"messages_acked"`
	SendErrors      int64   `json:"send_errors"`
	Expected        int64   `json:"deliveries_expected"` // messages sent and not refused, times their receivers
	Received        int64   `json:"deliveries_received"`
	Lost            int64   `json:"lost"`
	Duplicates      int64   `json:"duplicates"`
	Disconnected    int64   `json:"disconnected"`
	ServerDelivered int64   `json:"server_delivered,omitempty"` // sum of the delivered counts in send and broadcast replies
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	MaxMs           float64 `json:"max_ms"`
	Seconds         float64 `json:"seconds"`
	ConnectSeconds  float64 `json:"connect_seconds"`

	RSSBeforeMiB        float64 `json:"server_rss_before_mib,omitempty"`
	RSSIdleMiB          float64 `json:"server_rss_idle_mib,omitempty"`
	RSSPerConnKiB       float64 `json:"server_rss_per_conn_kib,omitempty"`
	HeapPerConnKiB      float64 `json:"server_heap_inuse_per_conn_kib,omitempty"`
	StackPerConnKiB     float64 `json:"server_stack_inuse_per_conn_kib,omitempty"`
	GoroutinesPerConn   float64 `json:"server_goroutines_per_conn,omitempty"`
	RSSAfterRunMiB      float64 `json:"server_rss_after_run_mib,omitempty"`
	ServerCPUCores      float64 `json:"server_cpu_cores,omitempty"` // from the first send to the last delivery
	ClientCPUCores      float64 `json:"client_cpu_cores,omitempty"` // this process: with an embedded server, both
	ServerCPUPerDelUs   float64 `json:"server_cpu_us_per_delivery,omitempty"`
	ClientCPUPerDelUs   float64 `json:"client_cpu_us_per_delivery,omitempty"`
	MemorySource        string  `json:"memory_source,omitempty"`
	FirstError          string  `json:"first_error,omitempty"`
	PublisherFirstError string  `json:"publisher_error,omitempty"`
	DisconnectError     string  `json:"disconnect_error,omitempty"`
}

// wsRun is the state of one RunWS.
type wsRun struct {
	o      WSOptions
	run    int64 // tells this run's messages from anyone else's
	group  string
	topic  string
	client *http.Client
	header http.Header

	hist       wsHist
	received   atomic.Int64
	dups       atomic.Int64
	disconnect atomic.Int64
	lastRecv   atomic.Int64
	closing    atomic.Bool
	// disconnectErr is why the first receiver the server disconnected
	// ended.
	disconnectErr atomic.Pointer[string]
}

// RunWS connects o.Connections receivers and a publisher to o.URL, sends
// messages at o.Rate, and reports fan-out latency (each message carries
// its send time; every receiver measures its own delivery), delivery
// counts and the server's memory per connection.
func RunWS(ctx context.Context, target string, o WSOptions) (WSResult, error) {
	res := WSResult{Target: target, Mode: o.Mode, Connections: o.Connections, Rate: o.Rate}
	switch o.Mode {
	case WSModeIdle, WSModeBroadcast, WSModeTopic:
	case WSModeGroup:
		o.Groups = max(o.Groups, 1)
		res.Groups = o.Groups
	default:
		return res, fmt.Errorf("mode %q: want idle, group, broadcast or topic", o.Mode)
	}
	if o.Connections < 1 {
		return res, errors.New("need at least one connection")
	}
	if o.Mode != WSModeIdle && o.Count <= 0 && o.Duration <= 0 {
		return res, errors.New("need a count or a duration")
	}
	o.Window = max(o.Window, 1)
	o.DialConcurrency = max(o.DialConcurrency, 1)
	u, err := neturl.Parse(o.URL)
	if err != nil {
		return res, fmt.Errorf("url %q: %w", o.URL, err)
	}
	r := &wsRun{o: o, run: time.Now().UnixNano() % 1e9, client: wsHTTPClient(u.Hostname(), o.Connections+1), header: http.Header{}}
	if o.User != "" {
		r.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(o.User+":"+o.Password)))
	}
	r.group = "bench-" + strconv.FormatInt(r.run, 10)
	r.topic = o.Topic
	if r.topic == "" {
		r.topic = "bench-ws-" + strconv.FormatInt(r.run, 10)
	}

	// The publisher connects first: in topic mode its first produce creates
	// the topic the receivers subscribe to.
	pub, err := r.dial(ctx)
	if err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	defer pub.CloseNow()
	if o.Mode == WSModeTopic {
		create := fmt.Appendf(nil, `{"type":"produce","id":"create","topic":%q,"value":"create"}`, r.topic)
		if err := r.request(ctx, pub, create, "create"); err != nil {
			return res, fmt.Errorf("creating topic %s: %w", r.topic, err)
		}
	}
	before := sampleServer(ctx, o.ServerPID, o.MetricsURL)

	// Receivers: one goroutine each, which sets its connection up and then
	// reads it until the end.
	var (
		ready, recvDone sync.WaitGroup
		conns           = make([]*websocket.Conn, o.Connections)
		errMu           sync.Mutex
		firstErr        error
		connectErrs     int
		connected       int
		sem             = make(chan struct{}, o.DialConcurrency)
	)
	connectStart := time.Now()
	for i := range o.Connections {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		ready.Add(1)
		recvDone.Add(1)
		go func() {
			defer recvDone.Done()
			c, err := r.setupReceiver(ctx, i)
			errMu.Lock()
			if err != nil {
				connectErrs++
				if firstErr == nil {
					firstErr = err
				}
			} else {
				connected++
			}
			errMu.Unlock()
			conns[i] = c
			<-sem
			ready.Done()
			if c != nil {
				r.receive(c, i)
			}
		}()
	}
	ready.Wait()
	res.ConnectSeconds = time.Since(connectStart).Seconds()
	res.ConnectErrors = connectErrs
	res.Connected = connected
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	closeAll := func() {
		r.closing.Store(true)
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
		recvDone.Wait()
	}
	defer closeAll()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if res.Connected == 0 {
		return res, fmt.Errorf("no receiver connected: %w", firstErr)
	}
	members := make([]int64, max(o.Groups, 1))
	for i, c := range conns {
		if c != nil {
			members[i%len(members)]++
		}
	}

	select {
	case <-time.After(o.Settle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	idle := sampleServer(ctx, o.ServerPID, o.MetricsURL)
	n := float64(res.Connected)
	if before.rss >= 0 && idle.rss >= 0 {
		res.RSSBeforeMiB, res.RSSIdleMiB = before.rss/(1<<20), idle.rss/(1<<20)
		res.RSSPerConnKiB = (idle.rss - before.rss) / n / 1024
		res.MemorySource = idle.rssFrom
	}
	if before.heapInuse >= 0 && idle.heapInuse >= 0 {
		res.HeapPerConnKiB = (idle.heapInuse - before.heapInuse) / n / 1024
	}
	if before.stackInuse >= 0 && idle.stackInuse >= 0 {
		res.StackPerConnKiB = (idle.stackInuse - before.stackInuse) / n / 1024
	}
	if before.goroutines >= 0 && idle.goroutines >= 0 {
		res.GoroutinesPerConn = (idle.goroutines - before.goroutines) / n
	}
	if o.OnPhase != nil {
		o.OnPhase("connected")
	}
	if o.Mode == WSModeIdle {
		return res, nil
	}

	// Publishing.
	p := &wsPublisher{r: r, c: pub, members: members, connected: int64(res.Connected),
		win: make(chan struct{}, o.Window), done: make(chan struct{})}
	go p.readReplies()
	clientCPU0 := selfCPU()
	start := time.Now()
	p.publish(ctx, start)
	sendTime := time.Since(start)
	drainEnd := time.Now().Add(o.Drain)
	for p.acked.Load()+p.errs.Load() < p.sent.Load() && time.Now().Before(drainEnd) && ctx.Err() == nil && !p.dead() {
		time.Sleep(10 * time.Millisecond)
	}
	for r.received.Load() < p.expected.Load() && time.Now().Before(drainEnd) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	wall := time.Since(start)
	after := sampleServer(ctx, o.ServerPID, o.MetricsURL)
	if o.OnPhase != nil {
		o.OnPhase("done")
	}
	received := float64(r.received.Load())
	if idle.cpuSeconds >= 0 && after.cpuSeconds >= 0 {
		res.ServerCPUCores = (after.cpuSeconds - idle.cpuSeconds) / wall.Seconds()
		if received > 0 {
			res.ServerCPUPerDelUs = (after.cpuSeconds - idle.cpuSeconds) / received * 1e6
		}
	}
	clientCPU := (selfCPU() - clientCPU0).Seconds()
	res.ClientCPUCores = clientCPU / wall.Seconds()
	if received > 0 {
		res.ClientCPUPerDelUs = clientCPU / received * 1e6
	}
	if after.rss >= 0 {
		res.RSSAfterRunMiB = after.rss / (1 << 20)
	}
	r.closing.Store(true)
	pub.CloseNow()
	<-p.done
	closeAll()

	res.Sent, res.Acked, res.SendErrors = p.sent.Load(), p.acked.Load(), p.errs.Load()
	res.Expected, res.ServerDelivered = p.expected.Load(), p.delivered.Load()
	res.Received, res.Duplicates, res.Disconnected = r.received.Load(), r.dups.Load(), r.disconnect.Load()
	res.Lost = max(0, res.Expected-res.Received)
	if sendTime > 0 {
		res.SentPerSec = float64(res.Sent) / sendTime.Seconds()
	}
	if e := p.firstErr.Load(); e != nil {
		res.PublisherFirstError = *e
	}
	if e := r.disconnectErr.Load(); e != nil {
		res.DisconnectError = *e
	}
	end := time.Now()
	if t := r.lastRecv.Load(); t != 0 {
		end = time.Unix(0, t)
	}
	res.Seconds = end.Sub(start).Seconds()
	if res.Seconds > 0 {
		res.DeliveredPerSec = float64(res.Received) / res.Seconds
	}
	_, res.P50Ms, res.P99Ms, res.MaxMs = r.hist.percentiles()
	if res.Acked == 0 && res.SendErrors > 0 {
		hint := ""
		if o.Mode == WSModeBroadcast {
			hint = " (broadcasting needs the permission: start the server with --ws-broadcast-users '*' or name the bench user there)"
		}
		return res, fmt.Errorf("every send was refused: %s%s", res.PublisherFirstError, hint)
	}
	return res, nil
}

// wsHTTPClient is the client the connections are dialled with: no proxy,
// and, for more connections to a loopback server than one source address
// has ports for, source addresses spread over 127.0.0.1, 127.0.0.2, ...
func wsHTTPClient(host string, conns int) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second}
	sources := (conns + wsPerSource - 1) / wsPerSource
	ip := net.ParseIP(host).To4()
	spread := sources > 1 && ip != nil && ip[0] == 127
	var next atomic.Uint64
	return &http.Client{Transport: &http.Transport{
		Proxy:              nil,
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if !spread {
				return d.DialContext(ctx, network, addr)
			}
			k := next.Add(1) % uint64(sources)
			dd := *d
			dd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+k))}
			return dd.DialContext(ctx, network, addr)
		},
	}}
}

// dial connects and waits for the welcome frame.
func (r *wsRun) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, r.o.URL, &websocket.DialOptions{
		HTTPClient: r.client, HTTPHeader: r.header, Subprotocols: []string{"wharf.v1"},
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w (check --user and --password)", err)
		}
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	for {
		f, err := readReply(ctx, c)
		if err != nil {
			c.CloseNow()
			return nil, err
		}
		switch f.Type {
		case "welcome":
			return c, nil
		case "error":
			c.CloseNow()
			return nil, fmt.Errorf("%s: %s", f.Code, f.Message)
		}
	}
}

// wsReply is what the bench reads of the server's replies.
type wsReply struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Delivered *int64 `json:"delivered"`
}

func readReply(ctx context.Context, c *websocket.Conn) (wsReply, error) {
	var f wsReply
	_, data, err := c.Read(ctx)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("undecodable frame %q: %w", data, err)
	}
	return f, nil
}

// request sends a request and waits for its reply, skipping other frames.
func (r *wsRun) request(ctx context.Context, c *websocket.Conn, req []byte, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, req); err != nil {
		return err
	}
	for {
		f, err := readReply(ctx, c)
		if err != nil {
			return err
		}
		if f.ID != id {
			continue
		}
		switch f.Type {
		case "ok":
			return nil
		case "error":
			return fmt.Errorf("%s: %s", f.Code, f.Message)
		}
	}
}

// setupReceiver connects receiver i and joins its group or subscribes.
func (r *wsRun) setupReceiver(ctx context.Context, i int) (*websocket.Conn, error) {
	var c *websocket.Conn
	var err error
	for attempt := range 3 {
		if c, err = r.dial(ctx); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	var req []byte
	switch r.o.Mode {
	case WSModeGroup:
		req = fmt.Appendf(nil, `{"type":"join","id":"j","group":"%s-%d"}`, r.group, i%r.o.Groups)
	case WSModeTopic:
		req = fmt.Appendf(nil, `{"type":"subscribe","id":"j","topic":%q,"from":"latest"}`, r.topic)
	default:
		return c, nil
	}
	if err := r.request(ctx, c, req, "j"); err != nil {
		c.CloseNow()
		return nil, err
	}
	return c, nil
}

var (
	wsMessagePrefix = []byte(`{"type":"message"`)
	wsRecordPrefix  = []byte(`{"type":"record"`)
	wsDataMark      = []byte(`"data":{"r":`)
	wsValueMark     = []byte(`"value":"`)
)

// receive reads connection i until it is closed, recording each of this
// run's deliveries. It parses only what it needs, into one buffer per
// connection, so that the client stays cheaper than the server.
func (r *wsRun) receive(c *websocket.Conn, i int) {
	buf := make([]byte, 0, 256)
	last := int64(-1)
	for {
		var err error
		buf, err = readInto(c, buf)
		if err != nil {
			if !r.closing.Load() {
				r.disconnect.Add(1)
				msg := err.Error()
				r.disconnectErr.CompareAndSwap(nil, &msg)
			}
			return
		}
		now := time.Now()
		run, seq, sent, ok := parseDelivery(buf)
		if !ok || run != r.run {
			continue
		}
		if seq <= last {
			r.dups.Add(1)
			continue
		}
		last = seq
		r.hist.record(i, now.Sub(time.Unix(0, sent)))
		r.received.Add(1)
		r.lastRecv.Store(now.UnixNano())
	}
}

// readInto reads one message into buf, reusing and growing it.
func readInto(c *websocket.Conn, buf []byte) ([]byte, error) {
	_, rd, err := c.Reader(context.Background())
	if err != nil {
		return buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// parseDelivery reads the run, sequence number and send time (ns) of a
// message frame (data {"r":..,"s":..,"t":..}) or a record frame (value
// "r s t").
func parseDelivery(b []byte) (run, seq, sent int64, ok bool) {
	var mark []byte
	switch {
	case bytes.HasPrefix(b, wsMessagePrefix):
		mark = wsDataMark
	case bytes.HasPrefix(b, wsRecordPrefix):
		mark = wsValueMark
	default:
		return 0, 0, 0, false
	}
	i := bytes.LastIndex(b, mark)
	if i < 0 {
		return 0, 0, 0, false
	}
	var v [3]int64
	k, in := 0, false
	for _, ch := range b[i+len(mark):] {
		if ch >= '0' && ch <= '9' {
			v[k] = v[k]*10 + int64(ch-'0')
			in = true
			continue
		}
		if in {
			if k++; k == len(v) {
				return v[0], v[1], v[2], true
			}
			in = false
		}
	}
	return 0, 0, 0, false
}

// wsPublisher sends the messages on one connection and reads its replies.
type wsPublisher struct {
	r         *wsRun
	c         *websocket.Conn
	members   []int64 // group mode: receivers per group
	connected int64   // receivers in all
	win       chan struct{}
	done      chan struct{} // closed when readReplies ends

	sent, acked, errs   atomic.Int64
	expected, delivered atomic.Int64
	firstErr            atomic.Pointer[string]
}

func (p *wsPublisher) dead() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// publish sends until the count or the duration is reached, at the rate,
// with at most the window unanswered.
func (p *wsPublisher) publish(ctx context.Context, start time.Time) {
	o := p.r.o
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / float64(o.Rate))
	}
	deadline := start.Add(o.Duration)
	next := start
	buf := make([]byte, 0, 256)
	for seq := int64(0); ; seq++ {
		if o.Count > 0 && seq >= o.Count || o.Count <= 0 && !time.Now().Before(deadline) || ctx.Err() != nil {
			return
		}
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(interval)
			if o.Count <= 0 && !time.Now().Before(deadline) {
				return
			}
		}
		select {
		case p.win <- struct{}{}:
		case <-p.done:
			return
		case <-ctx.Done():
			return
		}
		buf = p.frame(buf[:0], seq, time.Now().UnixNano())
		if err := p.c.Write(ctx, websocket.MessageText, buf); err != nil {
			msg := "writing: " + err.Error()
			p.firstErr.CompareAndSwap(nil, &msg)
			return
		}
		p.sent.Add(1)
		p.expected.Add(p.recipients(seq))
	}
}

// recipients is how many receivers message seq is meant for.
func (p *wsPublisher) recipients(seq int64) int64 {
	if p.r.o.Mode == WSModeGroup {
		return p.members[seq%int64(len(p.members))]
	}
	return p.connected
}

// frame encodes message seq: its id is seq, and it carries the run, seq
// and the send time.
func (p *wsPublisher) frame(b []byte, seq, now int64) []byte {
	r := p.r
	switch r.o.Mode {
	case WSModeTopic:
		b = append(b, `{"type":"produce","id":"`...)
		b = strconv.AppendInt(b, seq, 10)
		b = append(b, `","topic":`...)
		b = strconv.AppendQuote(b, r.topic)
		b = append(b, `,"value":"`...)
		b = strconv.AppendInt(b, r.run, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, seq, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, now, 10)
		return append(b, `"}`...)
	case WSModeBroadcast:
		b = append(b, `{"type":"broadcast","id":"`...)
		b = strconv.AppendInt(b, seq, 10)
		b = append(b, '"')
	default:
		b = append(b, `{"type":"send","id":"`...)
		b = strconv.AppendInt(b, seq, 10)
		b = append(b, `","group":"`...)
		b = append(b, r.group...)
		b = append(b, '-')
		b = strconv.AppendInt(b, seq%int64(len(p.members)), 10)
		b = append(b, '"')
	}
	b = append(b, `,"data":{"r":`...)
	b = strconv.AppendInt(b, r.run, 10)
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, now, 10)
	return append(b, `}}`...)
}

var (
	wsOKPrefix    = []byte(`{"type":"ok"`)
	wsErrorPrefix = []byte(`{"type":"error"`)
)

// readReplies counts the publisher's answers and what each accepted
// message should reach, until the connection ends.
func (p *wsPublisher) readReplies() {
	defer close(p.done)
	buf := make([]byte, 0, 256)
	for {
		var err error
		buf, err = readInto(p.c, buf)
		if err != nil {
			if !p.r.closing.Load() {
				msg := "publisher connection: " + err.Error()
				p.firstErr.CompareAndSwap(nil, &msg)
			}
			return
		}
		if !bytes.HasPrefix(buf, wsOKPrefix) && !bytes.HasPrefix(buf, wsErrorPrefix) {
			continue // its own broadcasts, presence
		}
		var f wsReply
		if json.Unmarshal(buf, &f) != nil {
			continue
		}
		seq, err := strconv.ParseInt(f.ID, 10, 64)
		if err != nil {
			continue
		}
		if f.Type == "error" {
			// Refused: it reaches no one.
			p.errs.Add(1)
			p.expected.Add(-p.recipients(seq))
			msg := f.Code + ": " + f.Message
			p.firstErr.CompareAndSwap(nil, &msg)
		} else {
			p.acked.Add(1)
			if f.Delivered != nil {
				p.delivered.Add(*f.Delivered)
			}
		}
		select {
		case <-p.win:
		default:
		}
	}
}
