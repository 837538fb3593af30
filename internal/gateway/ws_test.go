package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/storage"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// wsEnv is a broker with the /ws endpoint on a real HTTP server.
type wsEnv struct {
	dir string
	b   *broker.Broker
	svc *service.Service
	ws  *WebSocket
	srv *httptest.Server
	url string
}

func newWSEnv(t *testing.T, opts WSOptions) *wsEnv {
	t.Helper()
	dir := t.TempDir()
	b, err := broker.Open(broker.Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig()})
	if err != nil {
		t.Fatal(err)
	}
	users := auth.NewDefaultStore()
	if err := users.Put("alice", "wonderland", false); err != nil {
		t.Fatal(err)
	}
	svc := service.New(b, nil, service.Options{AutoCreateTopics: true, DefaultPartitions: 1})
	ws := NewWebSocket(svc, users, auth.NewJWTVerifierKeys(testSecret, nil), opts, nil)
	srv := httptest.NewServer(NewHandler(Options{WebSocket: ws, Service: svc, Users: users}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws.Shutdown(ctx)
		srv.Close()
		if err := b.Close(); err != nil {
			t.Errorf("closing broker: %v", err)
		}
	})
	return &wsEnv{dir: dir, b: b, svc: svc, ws: ws, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

// wsClient is a test client: it reads frames into a channel.
type wsClient struct {
	t       *testing.T
	c       *websocket.Conn
	frames  chan map[string]any
	closed  chan error
	backlog []map[string]any // frames read while waiting for a reply
}

func basicAuth(user, pass string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
}

func (e *wsEnv) dial(t *testing.T, h http.Header) *wsClient {
	t.Helper()
	c, err := e.dialErr(t, h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (e *wsEnv) dialErr(t *testing.T, h http.Header) (*wsClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{"wharf.v1"}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	c.SetReadLimit(64 << 20)
	wc := &wsClient{t: t, c: c, frames: make(chan map[string]any, 100000), closed: make(chan error, 1)}
	go func() {
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				wc.closed <- err
				close(wc.frames)
				return
			}
			m := map[string]any{}
			if typ == websocket.MessageBinary {
				n := int(data[0])<<24 | int(data[1])<<16 | int(data[2])<<8 | int(data[3])
				if err := json.Unmarshal(data[4:4+n], &m); err != nil {
					t.Errorf("binary envelope: %v", err)
				}
				m["_payload"] = string(data[4+n:])
			} else if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("frame %q: %v", data, err)
			}
			wc.frames <- m
		}
	}()
	t.Cleanup(func() { _ = c.CloseNow() })
	return wc, nil
}

func (wc *wsClient) send(v any) {
	wc.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		wc.t.Fatal(err)
	}
	if err := wc.c.Write(wc.t.Context(), websocket.MessageText, b); err != nil {
		wc.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame of the given type, failing on others when
// strict, skipping them otherwise.
func (wc *wsClient) next(typ string) map[string]any {
	wc.t.Helper()
	if len(wc.backlog) > 0 {
		m := wc.backlog[0]
		wc.backlog = wc.backlog[1:]
		if m["type"] != typ {
			wc.t.Fatalf("got %v, want a %s frame", m, typ)
		}
		return m
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-wc.frames:
			if !ok {
				wc.t.Fatalf("connection closed waiting for a %s frame: %v", typ, <-wc.closed)
			}
			if m["type"] == typ {
				return m
			}
			wc.t.Fatalf("got %v, want a %s frame", m, typ)
		case <-timeout:
			wc.t.Fatalf("no %s frame in time", typ)
		}
	}
}

// request sends v and returns the reply (ok or error) with its id.
func (wc *wsClient) request(v map[string]any) map[string]any {
	wc.t.Helper()
	id := fmt.Sprint(time.Now().UnixNano())
	v["id"] = id
	wc.send(v)
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-wc.frames:
			if !ok {
				wc.t.Fatalf("connection closed waiting for the reply to %v: %v", v, <-wc.closed)
			}
			if m["id"] == id {
				return m
			}
			wc.backlog = append(wc.backlog, m)
		case <-timeout:
			wc.t.Fatalf("no reply to %v", v)
		}
	}
}

func (wc *wsClient) ok(v map[string]any) map[string]any {
	wc.t.Helper()
	m := wc.request(v)
	if m["type"] != "ok" {
		wc.t.Fatalf("request %v: %v", v, m)
	}
	return m
}

func (wc *wsClient) wantError(v map[string]any, code string) map[string]any {
	wc.t.Helper()
	m := wc.request(v)
	if m["type"] != "error" || m["code"] != code {
		wc.t.Fatalf("request %v: got %v, want error %s", v, m, code)
	}
	return m
}

// closeStatus waits for the connection to end and returns the close code
// the server sent.
func (wc *wsClient) closeStatus() websocket.StatusCode {
	wc.t.Helper()
	for range wc.frames {
	}
	select {
	case err := <-wc.closed:
		return websocket.CloseStatus(err)
	case <-time.After(15 * time.Second):
		wc.t.Fatal("connection not closed in time")
	}
	return -1
}

func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWSAuthentication(t *testing.T) {
	e := newWSEnv(t, WSOptions{AuthTimeout: 300 * time.Millisecond})

	// Basic at the handshake: the welcome names the user.
	c := e.dial(t, basicAuth("alice", "wonderland"))
	w := c.next("welcome")
	if w["client_id"] != "alice" || w["version"] != float64(1) {
		t.Fatalf("welcome %v", w)
	}
	if c.c.Subprotocol() != "wharf.v1" {
		t.Fatalf("subprotocol %q", c.c.Subprotocol())
	}
	if m := c.ok(map[string]any{"type": "ping"}); m["pong"] != true {
		t.Fatalf("ping reply %v", m)
	}

	// A wrong password at the handshake: 401, no upgrade.
	if _, err := e.dialErr(t, basicAuth("alice", "nope")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: %v", err)
	}
	// A bearer token at the handshake, and in the query.
	tok := token(t, jwt.MapClaims{"sub": "device-7", "exp": time.Now().Add(time.Hour).Unix()})
	c = e.dial(t, http.Header{"Authorization": {"Bearer " + tok}})
	if w := c.next("welcome"); w["client_id"] != "device-7" {
		t.Fatalf("welcome %v", w)
	}
	expired := token(t, jwt.MapClaims{"sub": "device-7", "exp": time.Now().Add(-time.Minute).Unix()})
	if _, err := e.dialErr(t, http.Header{"Authorization": {"Bearer " + expired}}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("expired token: %v", err)
	}
	other, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x"}).SignedString([]byte("another secret, 32 bytes long!!!"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dialErr(t, http.Header{"Authorization": {"Bearer " + other}}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("token signed with another key: %v", err)
	}

	// No credentials: requests are refused until an auth request.
	c = e.dial(t, nil)
	c.wantError(map[string]any{"type": "join", "group": "g"}, "unauthorized")
	c.ok(map[string]any{"type": "auth", "username": "alice", "password": "wonderland"})
	if w := c.next("welcome"); w["client_id"] != "alice" {
		t.Fatalf("welcome after auth %v", w)
	}
	c.wantError(map[string]any{"type": "auth", "token": tok}, "invalid_argument")

	// A refused auth request closes with 4003.
	c = e.dial(t, nil)
	c.wantError(map[string]any{"type": "auth", "username": "alice", "password": "bad"}, "unauthorized")
	if st := c.closeStatus(); st != CloseAuthFailed {
		t.Fatalf("close status %d after a refused auth, want %d", st, CloseAuthFailed)
	}
	// No auth request in time closes with 4000.
	c = e.dial(t, nil)
	if st := c.closeStatus(); st != CloseAuthTimeout {
		t.Fatalf("close status %d without auth, want %d", st, CloseAuthTimeout)
	}
	if n := e.ws.metrics.authFailures.Load(); n != 4 {
		t.Fatalf("%d auth failures counted, want 4", n)
	}
}

func TestWSAnonymousAndOrigins(t *testing.T) {
	e := newWSEnv(t, WSOptions{Anonymous: true, AllowedOrigins: []string{"app.example.com"}})
	c := e.dial(t, nil)
	if w := c.next("welcome"); !strings.HasPrefix(w["client_id"].(string), "anon-") {
		t.Fatalf("anonymous welcome %v", w)
	}
	if _, err := e.dialErr(t, http.Header{"Origin": {"https://app.example.com"}}); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	if _, err := e.dialErr(t, http.Header{"Origin": {"https://evil.example.net"}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("foreign origin: %v", err)
	}
}

func TestWSMessagingAndPresence(t *testing.T) {
	e := newWSEnv(t, WSOptions{BroadcastUsers: []string{"alice"}})
	if err := e.ws.users.Put("bob", "builder", false); err != nil {
		t.Fatal(err)
	}
	a := e.dial(t, basicAuth("alice", "wonderland"))
	a.next("welcome")
	b1 := e.dial(t, basicAuth("bob", "builder"))
	b1.next("welcome")
	b2 := e.dial(t, basicAuth("bob", "builder"))
	b2.next("welcome")

	// To one client: every connection of it.
	if m := a.ok(map[string]any{"type": "send", "to": "bob", "data": map[string]any{"hello": 1}}); m["delivered"] != float64(2) {
		t.Fatalf("send reply %v", m)
	}
	for _, b := range []*wsClient{b1, b2} {
		m := b.next("message")
		if m["from"] != "alice" || m["data"].(map[string]any)["hello"] != float64(1) {
			t.Fatalf("direct message %v", m)
		}
	}
	if m := a.ok(map[string]any{"type": "send", "to": "nobody", "data": "x"}); m["delivered"] != float64(0) {
		t.Fatalf("send to nobody %v", m)
	}

	// Groups: join events once per client, presence lists clients.
	a.ok(map[string]any{"type": "join", "group": "room"})
	if m := a.next("presence"); m["event"] != "join" || m["client"] != "alice" {
		t.Fatalf("own join %v", m)
	}
	b1.ok(map[string]any{"type": "join", "group": "room"})
	for _, c := range []*wsClient{a, b1} {
		if m := c.next("presence"); m["event"] != "join" || m["client"] != "bob" {
			t.Fatalf("join event %v", m)
		}
	}
	b2.ok(map[string]any{"type": "join", "group": "room"}) // bob is already in: no event
	m := a.ok(map[string]any{"type": "presence", "group": "room"})
	if fmt.Sprint(m["members"]) != "[alice bob]" {
		t.Fatalf("presence %v", m)
	}
	if m := b1.ok(map[string]any{"type": "send", "group": "room", "data": "hi all"}); m["delivered"] != float64(3) {
		t.Fatalf("group send reply %v", m)
	}
	for _, c := range []*wsClient{a, b1, b2} {
		if m := c.next("message"); m["group"] != "room" || m["data"] != "hi all" || m["from"] != "bob" {
			t.Fatalf("group message %v", m)
		}
	}
	// bob leaves with one connection: still present; the second leaves by
	// closing: alice sees bob leave.
	b1.ok(map[string]any{"type": "leave", "group": "room"})
	b1.wantError(map[string]any{"type": "leave", "group": "room"}, "not_found")
	if err := b2.c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	if m := a.next("presence"); m["event"] != "leave" || m["client"] != "bob" {
		t.Fatalf("leave event %v", m)
	}

	// Broadcast needs the permission.
	b1.wantError(map[string]any{"type": "broadcast", "data": "all"}, "forbidden")
	tok := token(t, jwt.MapClaims{"sub": "ops", "broadcast": true})
	ops := e.dial(t, http.Header{"Authorization": {"Bearer " + tok}})
	ops.next("welcome")
	if m := a.ok(map[string]any{"type": "broadcast", "data": "from alice"}); m["delivered"] != float64(3) {
		t.Fatalf("broadcast reply %v", m)
	}
	for _, c := range []*wsClient{a, b1, ops} {
		if m := c.next("message"); m["broadcast"] != true || m["data"] != "from alice" {
			t.Fatalf("broadcast %v", m)
		}
	}
	ops.ok(map[string]any{"type": "broadcast", "data": 2})

	// Bad requests get an error and the connection goes on.
	if err := a.c.Write(t.Context(), websocket.MessageText, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if m := a.next("message"); m["data"] != float64(2) {
		t.Fatalf("ops broadcast %v", m)
	}
	if m := a.next("error"); m["code"] != "invalid_argument" {
		t.Fatalf("malformed frame: %v", m)
	}
	a.wantError(map[string]any{"type": "frobnicate"}, "invalid_argument")
	a.wantError(map[string]any{"type": "join"}, "invalid_argument")
	a.ok(map[string]any{"type": "ping"})
}

func TestWSTopics(t *testing.T) {
	e := newWSEnv(t, WSOptions{})
	if _, err := e.b.CreateTopic(t.Context(), "events", 3, nil); err != nil {
		t.Fatal(err)
	}
	c := e.dial(t, basicAuth("alice", "wonderland"))
	c.next("welcome")
	// Produce with a key (hash partitioning), an explicit partition,
	// headers and a binary value.
	r1 := c.ok(map[string]any{"type": "produce", "topic": "events", "key": "k1", "value": "v1", "headers": []map[string]any{{"key": "h", "value": "x"}}})
	p1 := int32(r1["partition"].(float64))
	if want := broker.PartitionForKey([]byte("k1"), 3); p1 != want {
		t.Fatalf("key k1 went to partition %d, want %d", p1, want)
	}
	// The other partitions: x gets an explicit produce, y the core's.
	x, y := (p1+1)%3, (p1+2)%3
	r2 := c.ok(map[string]any{"type": "produce", "topic": "events", "partition": x, "value_b64": base64.StdEncoding.EncodeToString([]byte{0xff, 0, 1})})
	if r2["partition"] != float64(x) {
		t.Fatalf("explicit partition: %v", r2)
	}
	c.wantError(map[string]any{"type": "produce", "topic": "events", "partition": 7, "value": "x"}, "not_found")

	// Records produced through the core (as the Kafka listener does) and
	// through WebSocket are read back from earliest, with partition and
	// offset.
	if _, err := e.svc.Produce(t.Context(), "events", []service.ProduceRecord{{Partition: y, Value: []byte("core")}}); err != nil {
		t.Fatal(err)
	}
	sub := c.ok(map[string]any{"type": "subscribe", "topic": "events", "partitions": []int32{p1, x, y}, "from": "earliest"})
	got := map[string]map[string]any{}
	for range 3 {
		m := c.next("record")
		if m["sub"] != sub["sub"] {
			t.Fatalf("record of another subscription: %v", m)
		}
		got[fmt.Sprintf("%v/%v", m["partition"], m["offset"])] = m
	}
	if m := got[fmt.Sprintf("%d/0", p1)]; m["key"] != "k1" || m["value"] != "v1" || fmt.Sprint(m["headers"]) != "[map[key:h value:x]]" {
		t.Fatalf("record k1: %v", m)
	}
	if m := got[fmt.Sprintf("%d/0", x)]; m["value_b64"] != base64.StdEncoding.EncodeToString([]byte{0xff, 0, 1}) {
		t.Fatalf("binary record: %v", m)
	}
	if m := got[fmt.Sprintf("%d/0", y)]; m["value"] != "core" {
		t.Fatalf("core record: %v", m)
	}
	// Live records arrive as they are produced.
	c.ok(map[string]any{"type": "produce", "topic": "events", "partition": y, "value": "live"})
	if m := c.next("record"); m["value"] != "live" || m["offset"] != float64(1) {
		t.Fatalf("live record %v", m)
	}
	c.ok(map[string]any{"type": "unsubscribe", "sub": sub["sub"]})

	// Resume: a new connection picks up partition y at offset 1, and gets
	// binary frames.
	c2 := e.dial(t, basicAuth("alice", "wonderland"))
	c2.next("welcome")
	s2 := c2.ok(map[string]any{"type": "subscribe", "topic": "events", "partitions": []int32{y}, "offsets": map[string]int{fmt.Sprint(y): 1}, "binary": true})
	if fmt.Sprint(s2["start"]) != fmt.Sprintf("map[%d:1]", y) {
		t.Fatalf("resume start %v", s2)
	}
	if m := c2.next("record"); m["_payload"] != "live" || m["offset"] != float64(1) || m["value"] != nil {
		t.Fatalf("resumed binary record %v", m)
	}
	// From latest: only new records.
	s3 := c2.ok(map[string]any{"type": "subscribe", "topic": "events", "partitions": []int32{p1}})
	if fmt.Sprint(s3["start"]) != fmt.Sprintf("map[%d:1]", p1) {
		t.Fatalf("latest start %v", s3)
	}
	c2.wantError(map[string]any{"type": "subscribe", "topic": "nope"}, "not_found")
	c2.wantError(map[string]any{"type": "subscribe", "topic": "events", "from": "offset", "offset": 99, "partitions": []int{0}}, "out_of_range")

	// A topic deleted under a subscription cancels it.
	if err := e.b.DeleteTopic(t.Context(), "events"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if m := c2.next("cancelled"); !strings.Contains(m["reason"].(string), "deleted") {
			t.Fatalf("cancelled %v", m)
		}
	}
}

func TestWSQueues(t *testing.T) {
	e := newWSEnv(t, WSOptions{})
	ctx := t.Context()
	if _, _, err := e.b.DeclareQueue(ctx, broker.DefaultVhost, "c1", broker.QueueSpec{Name: "jobs", Durable: true}); err != nil {
		t.Fatal(err)
	}
	c := e.dial(t, basicAuth("alice", "wonderland"))
	c.next("welcome")
	for i := range 5 {
		m := c.ok(map[string]any{"type": "publish", "exchange": "", "routing_key": "jobs", "body": fmt.Sprint("job-", i),
			"properties": map[string]any{"delivery_mode": 2, "content_type": "text/plain", "headers": map[string]any{"n": i}}})
		if m["routed"] != float64(1) {
			t.Fatalf("publish reply %v", m)
		}
	}
	c.wantError(map[string]any{"type": "publish", "exchange": "", "routing_key": "nowhere", "body": "x", "mandatory": true}, "not_found")
	c.wantError(map[string]any{"type": "publish", "exchange": "missing", "routing_key": "x", "body": "x"}, "not_found")

	sub := c.ok(map[string]any{"type": "subscribe", "queue": "jobs", "prefetch": 2})["sub"]
	d1, d2 := c.next("delivery"), c.next("delivery")
	if d1["body"] != "job-0" || d2["body"] != "job-1" || d1["tag"] != float64(1) || d2["tag"] != float64(2) {
		t.Fatalf("deliveries %v %v", d1, d2)
	}
	p := d1["properties"].(map[string]any)
	if p["content_type"] != "text/plain" || p["delivery_mode"] != float64(2) || p["headers"].(map[string]any)["n"] != float64(0) {
		t.Fatalf("properties %v", p)
	}
	// Prefetch 2: nothing more until an ack.
	select {
	case m := <-c.frames:
		t.Fatalf("frame beyond the prefetch: %v", m)
	case <-time.After(100 * time.Millisecond):
	}
	c.ok(map[string]any{"type": "ack", "sub": sub, "tag": 2, "multiple": true})
	d3, d4 := c.next("delivery"), c.next("delivery")
	if d3["body"] != "job-2" || d4["body"] != "job-3" {
		t.Fatalf("after ack: %v %v", d3, d4)
	}
	c.wantError(map[string]any{"type": "ack", "sub": sub, "tag": 2}, "invalid_argument")
	// nack with requeue: back at the head, redelivered.
	c.ok(map[string]any{"type": "nack", "sub": sub, "tag": 3})
	if d := c.next("delivery"); d["body"] != "job-2" || d["redelivered"] != true {
		t.Fatalf("requeued %v", d)
	}
	q, err := e.b.Queue(broker.DefaultVhost, "", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	// Closing the connection requeues job-2 and job-3 (job-4 still ready).
	if err := c.c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m, cs := q.Counts(); m == 3 && cs == 0 && q.Unacked() == 0 {
			break
		}
		if time.Now().After(deadline) {
			m, cs := q.Counts()
			t.Fatalf("after close: %d ready, %d consumers, %d unacked", m, cs, q.Unacked())
		}
		time.Sleep(10 * time.Millisecond)
	}
	msgs, err := e.svc.Get(t.Context(), broker.DefaultVhost, "jobs", "", 3, service.AckRequeueFalse)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		bodies = append(bodies, string(m.Body))
	}
	if fmt.Sprint(bodies) != "[job-3 job-2 job-4]" && fmt.Sprint(bodies) != "[job-2 job-3 job-4]" {
		t.Fatalf("after requeue on close: %v", bodies)
	}

	// Deleting the queue cancels a subscription.
	c2 := e.dial(t, basicAuth("alice", "wonderland"))
	c2.next("welcome")
	s2 := c2.ok(map[string]any{"type": "subscribe", "queue": "jobs"})["sub"]
	if _, err := e.b.DeleteQueue(ctx, broker.DefaultVhost, "", "jobs", broker.QueueDeleteCheck{}); err != nil {
		t.Fatal(err)
	}
	if m := c2.next("cancelled"); m["sub"] != s2 {
		t.Fatalf("cancelled %v", m)
	}
	c2.wantError(map[string]any{"type": "subscribe", "queue": "jobs"}, "not_found")
}

func TestWSSlowClientIsClosed(t *testing.T) {
	e := newWSEnv(t, WSOptions{OutboxBytes: 64 << 10})
	// A client that joins a group and then never reads.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	slow, _, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{HTTPHeader: basicAuth("alice", "wonderland")})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	join, _ := json.Marshal(map[string]any{"type": "join", "group": "feed"})
	if err := slow.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	sender := e.dial(t, basicAuth("alice", "wonderland"))
	sender.next("welcome")
	for len(e.ws.hub.Members("feed")) == 0 {
		time.Sleep(time.Millisecond)
	}
	payload := strings.Repeat("x", 16<<10)
	msg, _ := json.Marshal(map[string]any{"type": "send", "group": "feed", "data": payload})
	sent := 0
	for e.ws.metrics.slowClients.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatalf("the slow client was never closed (%d messages sent)", sent)
		}
		if err := sender.c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		sent++
		// Let the replies be read, so the sender stays fast.
		if sent%64 == 0 {
			for range 64 {
				sender.next("ok")
			}
		}
	}
	// The slow client, reading again, gets what the kernel had buffered
	// and then the end of the connection; the server, meanwhile, keeps
	// serving others.
	frames := 0
	for {
		_, _, err := slow.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the slow connection did not end: %v", err)
			}
			if st := websocket.CloseStatus(err); st != -1 && st != CloseSlowClient {
				t.Fatalf("slow client closed with %d, want %d", st, CloseSlowClient)
			}
			break
		}
		frames++
	}
	if frames >= sent+2 {
		t.Fatalf("the slow client got %d frames of %d sent: nothing was dropped", frames, sent)
	}
	if n := e.ws.metrics.slowClients.Load(); n != 1 {
		t.Fatalf("%d slow clients counted, want 1", n)
	}
	other := e.dial(t, basicAuth("alice", "wonderland"))
	other.next("welcome")
	other.ok(map[string]any{"type": "ping"})
}

// TestWSSubscriptionLagsInsteadOfOverflowing reads a topic much larger
// than the outbox through a connection that reads slowly: the subscription
// waits for room, so every record arrives and the client is not closed.
func TestWSSubscriptionLagsInsteadOfOverflowing(t *testing.T) {
	e := newWSEnv(t, WSOptions{OutboxBytes: 16 << 10})
	if _, err := e.b.CreateTopic(t.Context(), "big", 3, nil); err != nil {
		t.Fatal(err)
	}
	const n = 6000
	recs := make([]service.ProduceRecord, n)
	for i := range recs {
		recs[i] = service.ProduceRecord{Partition: int32(i % 3), Value: []byte(fmt.Sprintf("%05d-%s", i, strings.Repeat("v", 100)))}
	}
	if _, err := e.svc.Produce(t.Context(), "big", recs); err != nil {
		t.Fatal(err)
	}
	c := e.dial(t, basicAuth("alice", "wonderland"))
	c.next("welcome")
	c.ok(map[string]any{"type": "subscribe", "topic": "big", "from": "earliest"})
	seen := map[string]bool{}
	for len(seen) < n {
		m := c.next("record")
		seen[m["value"].(string)[:5]] = true
		if len(seen)%500 == 0 {
			time.Sleep(5 * time.Millisecond) // a slow reader
		}
	}
	if s := e.ws.metrics.slowClients.Load(); s != 0 {
		t.Fatalf("%d slow-client closes", s)
	}
	c.ok(map[string]any{"type": "ping"})
}

// TestWSPingTimeout: a client that does not answer pings (this one does not
// read, so its library never sees them) is closed with 4008, while one
// that reads keeps its connection.
func TestWSPingTimeout(t *testing.T) {
	e := newWSEnv(t, WSOptions{PingInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	mute, _, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{HTTPHeader: basicAuth("alice", "wonderland")})
	if err != nil {
		t.Fatal(err)
	}
	defer mute.CloseNow()
	live := e.dial(t, basicAuth("alice", "wonderland"))
	live.next("welcome")
	// Wait until the mute connection is gone from the hub: it was
	// registered at once (Basic auth) and is removed when closed.
	for {
		if sessions, _, _ := e.ws.hub.Counts(); sessions == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the mute connection was never closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var status websocket.StatusCode = -1
	for {
		_, _, err := mute.Read(ctx)
		if err != nil {
			status = websocket.CloseStatus(err)
			break
		}
	}
	if status != ClosePingTimeout && status != -1 {
		t.Fatalf("mute client closed with %d, want %d", status, ClosePingTimeout)
	}
	live.ok(map[string]any{"type": "ping"})
}
