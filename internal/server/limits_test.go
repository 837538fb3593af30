package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/config"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1/wharfv1connect"
	"github.com/wharfmq/wharf/internal/logbuf"
)

// The limits of the limits: section (and the size settings that predate
// it), each hit with a real client of its protocol against a server
// started by Run from a configuration, as `wharf serve` starts it.

// limitWait bounds every wait of these tests.
const limitWait = 30 * time.Second

// wantLines fails unless exactly want lines contain every fragment.
func wantLines(t *testing.T, b *logbuf.Buffer, want int, fragments ...string) {
	t.Helper()
	if n := b.Count(fragments...); n != want {
		t.Errorf("%d log lines with %q, want %d", n, fragments, want)
	}
}

// limitedServer is a running server's addresses and log.
type limitedServer struct {
	http, kafka, amqp string
	logs              *logbuf.Buffer
}

var listeningLine = regexp.MustCompile(`msg=listening listener=(\w+) addr=(\S+)`)

// startLimited runs a server with every listener on a free port and the
// configuration mutate makes; it stops with the test.
func startLimited(t *testing.T, mutate func(*config.Config)) *limitedServer {
	t.Helper()
	cfg := testConfig(t)
	mutate(&cfg)
	s := &limitedServer{logs: &logbuf.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(s.logs, nil))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitUntil(t, "the server to be ready", func() bool { return strings.Contains(s.logs.String(), "msg=\"wharf ready\"") })
	for _, m := range listeningLine.FindAllStringSubmatch(s.logs.String(), -1) {
		switch m[1] {
		case "http":
			s.http = m[2]
		case "kafka":
			s.kafka = m[2]
		case "amqp":
			s.amqp = m[2]
		}
	}
	return s
}

// waitUntil polls cond until it holds, failing after limitWait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limitWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func limitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), limitWait)
	t.Cleanup(cancel)
	return ctx
}

func (s *limitedServer) amqpURL(user, pass string) string {
	return "amqp://" + user + ":" + pass + "@" + s.amqp + "/"
}

// amqpDial opens an AMQP connection, closed with the test.
func (s *limitedServer) amqpDial(t *testing.T, user, pass string) *amqp091.Connection {
	t.Helper()
	c, err := amqp091.Dial(s.amqpURL(user, pass))
	if err != nil {
		t.Fatalf("amqp dial as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// amqpRefused dials and returns the connection.close that refused it.
func (s *limitedServer) amqpRefused(t *testing.T, user, pass string) *amqp091.Error {
	t.Helper()
	c, err := amqp091.Dial(s.amqpURL(user, pass))
	if err == nil {
		c.Close()
		t.Fatalf("amqp connection of %s opened, want a refusal", user)
	}
	var ae *amqp091.Error
	if !errors.As(err, &ae) {
		t.Fatalf("amqp dial: %v, want a connection.close", err)
	}
	return ae
}

// amqpWorks publishes to a new exclusive queue and gets the message back.
func amqpWorks(t *testing.T, c *amqp091.Connection) {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("declare: %v", err)
	}
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the message back", func() bool {
		_, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		return ok
	})
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// restClient speaks HTTP/1.1 without keeping connections, so that it
// holds no slot of the HTTP listener between requests.
var restClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// rest sends a REST request and returns the status and decoded body.
func (s *limitedServer) rest(t *testing.T, user, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+s.http+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	pass := map[string]string{"guest": "guest", "alice": "wonder"}[user]
	req.Header.Set("Authorization", basic(user, pass))
	resp, err := restClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &m) != nil {
		t.Fatalf("%s %s: %d, body %q is not JSON", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// wantRESTError fails unless the answer is status with the error code and
// a message containing text.
func wantRESTError(t *testing.T, what string, status int, body map[string]any, wantStatus int, code, text string) {
	t.Helper()
	if status != wantStatus || body["code"] != code || !strings.Contains(fmt.Sprint(body["message"]), text) {
		t.Fatalf("%s: %d %v, want %d %s with %q", what, status, body, wantStatus, code, text)
	}
}

// basicRT adds HTTP Basic credentials to every request.
type basicRT struct {
	rt         http.RoundTripper
	user, pass string
}

func (b basicRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", basic(b.user, b.pass))
	return b.rt.RoundTrip(r)
}

// grpcAdmin is an AdminService client over gRPC (h2c) as user.
func (s *limitedServer) grpcAdmin(user, pass string) wharfv1connect.AdminServiceClient {
	tr := &http.Transport{Protocols: new(http.Protocols), DisableKeepAlives: true}
	tr.Protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: basicRT{rt: tr, user: user, pass: pass}}
	return wharfv1connect.NewAdminServiceClient(client, "http://"+s.http, connect.WithGRPC())
}

func wantConnectCode(t *testing.T, what string, err error, code connect.Code, text string) {
	t.Helper()
	if connect.CodeOf(err) != code || !strings.Contains(fmt.Sprint(err), text) {
		t.Fatalf("%s: %v, want %v with %q", what, err, code, text)
	}
}

// wsSession opens a WebSocket session as guest and reads its welcome.
func (s *limitedServer) wsSession(t *testing.T, ctx context.Context) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws://"+s.http+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {basic("guest", "guest")}}})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	if m := wsRead(t, ctx, c); m["type"] != "welcome" {
		t.Fatalf("first frame %v", m)
	}
	return c
}

// wsRefused dials /ws as guest and returns the HTTP answer that refused
// the upgrade.
func (s *limitedServer) wsRefused(t *testing.T, ctx context.Context) (int, map[string]any) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, "ws://"+s.http+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {basic("guest", "guest")}}})
	if err == nil {
		_ = c.CloseNow()
		t.Fatal("websocket session opened, want a refusal")
	}
	if resp == nil {
		t.Fatalf("websocket dial: %v, want an HTTP refusal", err)
	}
	var m map[string]any
	if resp.Body != nil {
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &m)
	}
	return resp.StatusCode, m
}

// wsAlive checks that a session still answers: a presence request gets
// its ok.
func wsAlive(t *testing.T, ctx context.Context, c *websocket.Conn, id string) {
	t.Helper()
	wsWrite(t, ctx, c, map[string]any{"type": "presence", "id": id, "group": "g"})
	if m := wsRead(t, ctx, c); m["type"] != "ok" || m["id"] != id {
		t.Fatalf("presence: %v", m)
	}
}

// kafkaProbe opens a raw Kafka connection and reports whether it answers
// ApiVersions; the connection stays open (and is returned) when it does.
func kafkaProbe(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc, kafkaServes(nc)
}

func kafkaServes(nc net.Conn) bool {
	req := kmsg.NewPtrApiVersionsRequest()
	frame := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
	frame = req.AppendTo(frame)
	if _, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
		return false
	}
	_ = nc.SetReadDeadline(time.Now().Add(limitWait))
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return false
	}
	_, err := io.ReadFull(nc, make([]byte, binary.BigEndian.Uint32(size[:])))
	return err == nil
}

func incompressible(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestLimitsConnectionsPerListener: each listener admits its configured
// number of connections. Kafka closes the next one at once (Kafka's
// answer to connections past max.connections.per.ip), AMQP refuses its
// connection.open with 530 (RabbitMQ's connection_max) and HTTP answers
// 503 limit_reached; connections already open go on, a closed one frees
// its slot, and each listener logs one line for a burst of refusals.
func TestLimitsConnectionsPerListener(t *testing.T) {
	s := startLimited(t, func(c *config.Config) {
		c.Limits.KafkaMaxConnections = 2
		c.Limits.AMQPMaxConnections = 2
		c.Limits.HTTPMaxConnections = 2
	})
	ctx := limitCtx(t)

	// Kafka.
	k1, ok1 := kafkaProbe(t, s.kafka)
	_, ok2 := kafkaProbe(t, s.kafka)
	if !ok1 || !ok2 {
		t.Fatal("the first two Kafka connections were not served")
	}
	for range 3 {
		if _, ok := kafkaProbe(t, s.kafka); ok {
			t.Fatal("a third Kafka connection was served")
		}
	}
	if !kafkaServes(k1) {
		t.Fatal("an admitted Kafka connection stopped being served")
	}
	k1.Close()
	waitUntil(t, "a Kafka slot to free", func() bool {
		nc, ok := kafkaProbe(t, s.kafka)
		nc.Close()
		return ok
	})

	// AMQP.
	a1, a2 := s.amqpDial(t, "guest", "guest"), s.amqpDial(t, "guest", "guest")
	for range 3 {
		e := s.amqpRefused(t, "guest", "guest")
		if e.Code != amqp091.NotAllowed || !strings.Contains(e.Reason, "listener connection limit (2) is reached") {
			t.Fatalf("third AMQP connection: %d %q, want 530 naming the limit", e.Code, e.Reason)
		}
	}
	amqpWorks(t, a1)
	amqpWorks(t, a2)
	a1.Close()
	waitUntil(t, "an AMQP slot to free", func() bool {
		c, err := amqp091.Dial(s.amqpURL("guest", "guest"))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})

	// HTTP: two WebSocket sessions hold both connections.
	w1, w2 := s.wsSession(t, ctx), s.wsSession(t, ctx)
	for range 3 {
		status, body := s.rest(t, "guest", http.MethodGet, "/api/v1/topics", nil)
		wantRESTError(t, "a REST call past the HTTP limit", status, body, http.StatusServiceUnavailable,
			"limit_reached", "HTTP listener connection limit (2) is reached")
	}
	if status, body := s.wsRefused(t, ctx); status != http.StatusServiceUnavailable || body["code"] != "limit_reached" {
		t.Fatalf("a third WebSocket session: %d %v, want 503 limit_reached", status, body)
	}
	wsAlive(t, ctx, w1, "1")
	wsAlive(t, ctx, w2, "2")
	_ = w1.Close(websocket.StatusNormalClosure, "")
	waitUntil(t, "an HTTP slot to free", func() bool {
		status, _ := s.rest(t, "guest", http.MethodGet, "/api/v1/topics", nil)
		return status == http.StatusOK
	})
	wsAlive(t, ctx, w2, "3")

	wantLines(t, s.logs, 1, "connection refused", "limits.kafka_max_connections")
	wantLines(t, s.logs, 1, "refused: limit reached", "limits.amqp_max_connections")
	wantLines(t, s.logs, 1, "connection refused", "limits.http_max_connections")
}

// TestLimitsConnectionsPerUser: a user's AMQP connections, WebSocket
// sessions and REST and gRPC calls in progress count against one limit.
// Past it, AMQP refuses connection.open with RabbitMQ's 530 text, /ws
// refuses the upgrade with 429 (or, after an auth request, replies
// limit_reached and closes with 4029), REST answers 429 and gRPC
// RESOURCE_EXHAUSTED; other users are not affected, and a closed
// connection frees its slot.
func TestLimitsConnectionsPerUser(t *testing.T) {
	s := startLimited(t, func(c *config.Config) { c.Limits.MaxConnectionsPerUser = 2 })
	ctx := limitCtx(t)
	if status, body := s.rest(t, "guest", http.MethodPut, "/api/v1/users/alice", map[string]any{"password": "wonder"}); status/100 != 2 {
		t.Fatalf("adding alice: %d %v", status, body)
	}
	if status, body := s.rest(t, "guest", http.MethodPut, "/api/v1/permissions/%2F/alice", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}); status/100 != 2 {
		t.Fatalf("granting alice: %d %v", status, body)
	}

	amqpGuest := s.amqpDial(t, "guest", "guest")
	ws := s.wsSession(t, ctx)

	e := s.amqpRefused(t, "guest", "guest")
	if e.Code != amqp091.NotAllowed || !strings.Contains(e.Reason, "connection refused for user 'guest': user connection limit (2) is reached") {
		t.Fatalf("guest's third connection over AMQP: %d %q, want RabbitMQ's 530", e.Code, e.Reason)
	}
	status, body := s.wsRefused(t, ctx)
	wantRESTError(t, "guest's third connection over /ws", status, body, http.StatusTooManyRequests, "limit_reached", "user connection limit (2)")
	status, body = s.rest(t, "guest", http.MethodGet, "/api/v1/topics", nil)
	wantRESTError(t, "guest's REST call at the limit", status, body, http.StatusTooManyRequests, "limit_reached", "user connection limit (2)")
	_, err := s.grpcAdmin("guest", "guest").ListTopics(ctx, connect.NewRequest(&wharfv1.ListTopicsRequest{}))
	wantConnectCode(t, "guest's gRPC call at the limit", err, connect.CodeResourceExhausted, "user connection limit (2)")

	// An auth request past the limit: an error reply, then close 4029.
	anon, _, err := websocket.Dial(ctx, "ws://"+s.http+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.CloseNow()
	wsWrite(t, ctx, anon, map[string]any{"type": "auth", "id": "a", "username": "guest", "password": "guest"})
	if m := wsRead(t, ctx, anon); m["type"] != "error" || m["code"] != "limit_reached" {
		t.Fatalf("auth past the limit: %v, want a limit_reached error", m)
	}
	if _, _, err := anon.Read(ctx); websocket.CloseStatus(err) != 4029 {
		t.Fatalf("after the refused auth: %v, want close 4029", err)
	}

	// Other users are not affected; guest's connections go on.
	if status, _ := s.rest(t, "alice", http.MethodGet, "/api/v1/server", nil); status != http.StatusOK {
		t.Fatalf("alice's REST call: %d", status)
	}
	amqpWorks(t, s.amqpDial(t, "alice", "wonder"))
	amqpWorks(t, amqpGuest)
	wsAlive(t, ctx, ws, "1")

	amqpGuest.Close()
	waitUntil(t, "guest's slot to free", func() bool {
		status, _ := s.rest(t, "guest", http.MethodGet, "/api/v1/topics", nil)
		return status == http.StatusOK
	})
	if _, err := s.grpcAdmin("guest", "guest").ListTopics(ctx, connect.NewRequest(&wharfv1.ListTopicsRequest{})); err != nil {
		t.Fatalf("guest's gRPC call below the limit: %v", err)
	}

	wantLines(t, s.logs, 1, "refused: limit reached", "limits.max_connections_per_user", "listener=amqp")
	wantLines(t, s.logs, 1, "websocket session refused", "limits.max_connections_per_user")
	wantLines(t, s.logs, 1, "rest request refused", "limits.max_connections_per_user")
	wantLines(t, s.logs, 1, "grpc call refused", "limits.max_connections_per_user")
}

// TestLimitsQueuesAndTopics: queue.declare past a vhost's queue limit gets
// 406 PRECONDITION_FAILED with RabbitMQ's text and the channel closes; the
// REST and gRPC faces answer 429 limit_reached and RESOURCE_EXHAUSTED.
// Kafka CreateTopics past the topic limit gets POLICY_VIOLATION with the
// reason, and the gateway faces the same refusals. Nothing existing is
// touched; a deletion makes room.
func TestLimitsQueuesAndTopics(t *testing.T) {
	s := startLimited(t, func(c *config.Config) {
		c.Limits.MaxQueuesPerVhost = 2
		c.Limits.MaxTopics = 1
	})
	ctx := limitCtx(t)

	conn := s.amqpDial(t, "guest", "guest")
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"q1", "q2"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatalf("declare %s: %v", q, err)
		}
	}
	_, err = ch.QueueDeclare("q3", true, false, false, false, nil)
	var ae *amqp091.Error
	if !errors.As(err, &ae) || ae.Code != amqp091.PreconditionFailed ||
		!strings.Contains(ae.Reason, "cannot declare queue 'q3': queue limit in vhost '/' (2) is reached") {
		t.Fatalf("third queue over AMQP: %v, want 406 with RabbitMQ's text", err)
	}
	if conn.IsClosed() {
		t.Fatal("the queue limit closed the connection; it must close the channel only")
	}
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q1", true, false, false, false, nil); err != nil {
		t.Fatalf("redeclaring an existing queue at the limit: %v", err)
	}
	status, body := s.rest(t, "guest", http.MethodPut, "/api/v1/vhosts/%2F/queues/q4", map[string]any{"durable": true})
	wantRESTError(t, "a queue over REST past the limit", status, body, http.StatusTooManyRequests, "limit_reached", "queue limit in vhost '/' (2)")
	_, err = s.grpcAdmin("guest", "guest").DeclareQueue(ctx, connect.NewRequest(&wharfv1.DeclareQueueRequest{Vhost: "/", Name: "q5"}))
	wantConnectCode(t, "a queue over gRPC past the limit", err, connect.CodeResourceExhausted, "queue limit in vhost '/' (2)")

	// Another vhost has a count of its own.
	if status, body := s.rest(t, "guest", http.MethodPut, "/api/v1/vhosts/other", nil); status/100 != 2 {
		t.Fatalf("creating vhost other: %d %v", status, body)
	}
	if status, body := s.rest(t, "guest", http.MethodPut, "/api/v1/vhosts/other/queues/o1", map[string]any{}); status/100 != 2 {
		t.Fatalf("a queue in vhost other: %d %v", status, body)
	}
	if status, _ := s.rest(t, "guest", http.MethodDelete, "/api/v1/vhosts/%2F/queues/q2", nil); status/100 != 2 {
		t.Fatalf("deleting q2: %d", status)
	}
	if _, err := ch.QueueDeclare("q3", true, false, false, false, nil); err != nil {
		t.Fatalf("declare after a delete: %v", err)
	}

	// Topics.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka), kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(limitWait))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t1"); err != nil {
		t.Fatal(err)
	}
	resp, err := adm.CreateTopic(ctx, 1, 1, nil, "t2")
	if !errors.Is(err, kerr.PolicyViolation) || !strings.Contains(resp.ErrMessage, "topic limit (1) is reached") {
		t.Fatalf("second topic over Kafka: %v %q, want POLICY_VIOLATION naming the limit", err, resp.ErrMessage)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("auto-creating a topic past the limit: %v, want POLICY_VIOLATION", err)
	}
	status, body = s.rest(t, "guest", http.MethodPost, "/api/v1/topics", map[string]any{"name": "t3"})
	wantRESTError(t, "a topic over REST past the limit", status, body, http.StatusTooManyRequests, "limit_reached", "topic limit (1)")
	_, err = s.grpcAdmin("guest", "guest").CreateTopic(ctx, connect.NewRequest(&wharfv1.CreateTopicRequest{Name: "t4", Partitions: 1}))
	wantConnectCode(t, "a topic over gRPC past the limit", err, connect.CodeResourceExhausted, "topic limit (1)")
	ws := s.wsSession(t, ctx)
	wsWrite(t, ctx, ws, map[string]any{"type": "produce", "id": "p", "topic": "t5", "value": "v"})
	if m := wsRead(t, ctx, ws); m["type"] != "error" || m["code"] != "limit_reached" {
		t.Fatalf("a WebSocket produce auto-creating a topic past the limit: %v", m)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t1", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("producing to the existing topic: %v", err)
	}

	wantLines(t, s.logs, 1, "queue refused", "limits.max_queues_per_vhost")
	wantLines(t, s.logs, 1, "topic refused", "limits.max_topics")
	wantLines(t, s.logs, 0, "closing channel")
}

// TestLimitsSizes: the AMQP channel_max and frame_max are offered as
// configured and enforced; an AMQP message over amqp_max_message_bytes is
// refused with 406 (the channel closes, the connection stays); a Kafka
// request over kafka_max_request_bytes closes its connection and a batch
// over the topic's max.message.bytes gets MESSAGE_TOO_LARGE; a WebSocket
// frame over websocket.max_message_bytes closes the session with 1009; a
// REST body over its maximum gets 413. Other connections see nothing, and
// each kind of refusal logs one line.
func TestLimitsSizes(t *testing.T) {
	s := startLimited(t, func(c *config.Config) {
		c.Limits.AMQPChannelMax = 4
		c.Limits.AMQPFrameMax = 8192
		c.AMQPMaxMessageBytes = 20000
		c.KafkaMaxRequestBytes = 64 << 10
		c.WebSocket.MaxMessageBytes = 2048
		c.Storage.MaxMessageBytes = 2048
	})
	ctx := limitCtx(t)

	// AMQP.
	conn := s.amqpDial(t, "guest", "guest")
	if conn.Config.ChannelMax != 4 || conn.Config.FrameSize != 8192 {
		t.Fatalf("negotiated channel_max %d and frame_max %d, want the configured 4 and 8192", conn.Config.ChannelMax, conn.Config.FrameSize)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := incompressible(20000) // three frames of at most 8192 bytes
	if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp091.Publishing{Body: body}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the 20000-byte message back", func() bool {
		m, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok && !bytes.Equal(m.Body, body) {
			t.Fatal("the message came back changed")
		}
		return ok
	})
	notify := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp091.Publishing{Body: incompressible(20001)}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-notify:
		if e == nil || e.Code != amqp091.PreconditionFailed || !strings.Contains(e.Reason, "20001") {
			t.Fatalf("a message over the maximum: %v, want 406 naming its size", e)
		}
	case <-ctx.Done():
		t.Fatal("no channel close for a message over the maximum")
	}
	amqpWorks(t, conn)

	// Kafka.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka), kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerLinger(0),
		kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(limitWait), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	big := "1048576"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &big}, "big"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "small"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "big", Value: incompressible(100 << 10)}).FirstErr(); err == nil {
		t.Fatal("a 100 KiB produce passed a 64 KiB request limit")
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "small", Value: incompressible(4096)}).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a 4 KiB batch into max.message.bytes 2048: %v, want MESSAGE_TOO_LARGE", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "small", Value: []byte("fits")}).FirstErr(); err != nil {
		t.Fatalf("a small produce after the refusals: %v", err)
	}

	// WebSocket.
	bystander := s.wsSession(t, ctx)
	for range 2 {
		ws := s.wsSession(t, ctx)
		if err := ws.Write(ctx, websocket.MessageText, bytes.Repeat([]byte(" "), 4096)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("a 4 KiB frame past a 2 KiB maximum: %v, want close 1009", err)
		}
	}
	wsAlive(t, ctx, bystander, "1")

	// REST.
	status, resp := s.rest(t, "guest", http.MethodPost, "/api/v1/topics/small/records",
		map[string]any{"records": []map[string]any{{"value": strings.Repeat("x", 2<<20)}}})
	wantRESTError(t, "a REST body over the maximum", status, resp, http.StatusRequestEntityTooLarge, "too_large", "larger than")

	wantLines(t, s.logs, 1, "refused: limit reached", "amqp_max_message_bytes")
	wantLines(t, s.logs, 1, "request refused", "kafka_max_request_bytes")
	wantLines(t, s.logs, 1, "produce refused", "max.message.bytes")
	wantLines(t, s.logs, 1, "websocket closed", "websocket.max_message_bytes")
	wantLines(t, s.logs, 1, "rest request refused", "body larger")
}
