package gateway

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/crashcopy"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/storage"
)

// restMessageBody is a got message as a client decodes it.
type restMessageBody struct {
	Exchange    string
	RoutingKey  string `json:"routing_key"`
	Redelivered bool
	Properties  map[string]any
	Body        *string
	BodyB64     *string `json:"body_b64"`
	Remaining   int
}

func (e *restEnv) get(t *testing.T, path string, count int, mode string) []restMessageBody {
	t.Helper()
	var out struct{ Messages []restMessageBody }
	e.must(t, http.StatusOK, http.MethodPost, path, map[string]any{"count": count, "ackmode": mode}, &out)
	if out.Messages == nil {
		t.Fatalf("messages is null, want a list")
	}
	return out.Messages
}

func (e *restEnv) ready(t *testing.T, path string) int {
	t.Helper()
	var q restQueue
	e.must(t, http.StatusOK, http.MethodGet, path, nil, &q)
	return q.Messages
}

// TestRESTPublishGet publishes through exchanges of the default vhost
// (%2F in paths) and gets the messages back with each ack mode.
func TestRESTPublishGet(t *testing.T) {
	e := newRESTEnv(t)
	const q = "/api/v1/vhosts/%2F/queues/jobs"
	e.must(t, http.StatusCreated, http.MethodPut, q, nil, nil)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/bindings/e/amq.direct/q/jobs", map[string]any{"routing_key": "jobs.key"}, nil)

	var pub struct{ Routed int }
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.direct/publish", map[string]any{
		"routing_key": "jobs.key",
		"properties": map[string]any{"delivery_mode": 2, "content_type": "text/plain", "message_id": "m1", "timestamp": 1764806400,
			"headers": map[string]any{"x-tenant": "acme", "n": 7, "pi": 3.5, "ok": true, "nested": map[string]any{"a": []any{1, "two"}}}},
		"body": "hello",
	}, &pub)
	if pub.Routed != 1 {
		t.Fatalf("routed %d", pub.Routed)
	}
	binary := []byte{0xff, 0, 0xfe, 'z'}
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.default/publish", map[string]any{
		"routing_key": "jobs", "body_b64": base64.StdEncoding.EncodeToString(binary), "mandatory": true,
	}, &pub)
	if pub.Routed != 1 {
		t.Fatalf("routed %d through the default exchange", pub.Routed)
	}
	if n := e.ready(t, q); n != 2 {
		t.Fatalf("%d ready, want 2", n)
	}

	// ack_requeue_true: looked at and put back, redelivered.
	ms := e.get(t, q+"/get", 1, service.AckRequeueTrue)
	if len(ms) != 1 {
		t.Fatalf("got %d", len(ms))
	}
	m := ms[0]
	if m.Exchange != "amq.direct" || m.RoutingKey != "jobs.key" || m.Redelivered || m.Body == nil || *m.Body != "hello" || m.Remaining != 1 {
		t.Fatalf("first: %+v", m)
	}
	p := m.Properties
	h, _ := p["headers"].(map[string]any)
	if p["delivery_mode"] != 2.0 || p["content_type"] != "text/plain" || p["message_id"] != "m1" || p["timestamp"] != 1764806400.0 ||
		h["x-tenant"] != "acme" || h["n"] != 7.0 || h["pi"] != 3.5 || h["ok"] != true ||
		h["nested"].(map[string]any)["a"].([]any)[1] != "two" {
		t.Fatalf("properties: %v", p)
	}
	if n := e.ready(t, q); n != 2 {
		t.Fatalf("after ack_requeue_true: %d ready, want 2", n)
	}

	// reject_requeue_true: both come back, the first now redelivered.
	ms = e.get(t, q+"/get", 2, service.RejectRequeueTrue)
	if len(ms) != 2 || !ms[0].Redelivered || *ms[0].Body != "hello" || ms[1].Redelivered || ms[1].Body != nil ||
		*ms[1].BodyB64 != base64.StdEncoding.EncodeToString(binary) || ms[1].Exchange != "" || ms[1].RoutingKey != "jobs" {
		t.Fatalf("reject_requeue_true: %+v", ms)
	}
	if n := e.ready(t, q); n != 2 {
		t.Fatalf("after reject_requeue_true: %d ready, want 2", n)
	}

	// reject_requeue_false: dropped.
	ms = e.get(t, q+"/get", 1, service.RejectRequeueFalse)
	if len(ms) != 1 || *ms[0].Body != "hello" || !ms[0].Redelivered {
		t.Fatalf("reject_requeue_false: %+v", ms)
	}
	if n := e.ready(t, q); n != 1 {
		t.Fatalf("after reject_requeue_false: %d ready, want 1", n)
	}

	// ack_requeue_false: taken for good; count is an upper bound.
	ms = e.get(t, q+"/get", 5, service.AckRequeueFalse)
	if len(ms) != 1 || ms[0].BodyB64 == nil || ms[0].Remaining != 0 {
		t.Fatalf("ack_requeue_false: %+v", ms)
	}
	if n := e.ready(t, q); n != 0 {
		t.Fatalf("after ack_requeue_false: %d ready, want 0", n)
	}
	if ms := e.get(t, q+"/get", 1, service.AckRequeueFalse); len(ms) != 0 {
		t.Fatalf("empty queue gave %+v", ms)
	}

	// An empty body is an empty string.
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.default/publish", map[string]any{"routing_key": "jobs"}, &pub)
	if ms := e.get(t, q+"/get", 1, service.AckRequeueFalse); len(ms) != 1 || ms[0].Body == nil || *ms[0].Body != "" {
		t.Fatalf("empty body: %+v", ms)
	}

	// Errors.
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, q+"/get", map[string]any{"count": 1, "ackmode": "keep"})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, q+"/get", map[string]any{"count": 1})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, q+"/get", map[string]any{"count": 0, "ackmode": service.AckRequeueFalse})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPost, "/api/v1/vhosts/%2F/queues/nope/get", map[string]any{"ackmode": service.AckRequeueFalse})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPost, "/api/v1/vhosts/nope/queues/jobs/get", map[string]any{"ackmode": service.AckRequeueFalse})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/nope/publish", map[string]any{"body": "x"})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPost, "/api/v1/vhosts/nope/exchanges/amq.direct/publish", map[string]any{"body": "x"})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.direct/publish",
		map[string]any{"routing_key": "nowhere", "body": "x", "mandatory": true})
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.direct/publish", map[string]any{"routing_key": "nowhere", "body": "x"}, &pub)
	if pub.Routed != 0 {
		t.Fatalf("routed %d to nowhere", pub.Routed)
	}
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.direct/publish",
		map[string]any{"body": "x", "properties": map[string]any{"delivery_mode": 3}})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.direct/publish",
		map[string]any{"body": "x", "body_b64": "eA=="})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.direct/publish",
		map[string]any{"body": "x", "properties": map[string]any{"colour": "red"}})
	e.wantErr(t, http.StatusRequestEntityTooLarge, service.CodeTooLarge, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.default/publish",
		map[string]any{"routing_key": "jobs", "body": strings.Repeat("x", restMaxMessage+1)})
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/exchanges/inner", map[string]any{"type": "fanout", "internal": true}, nil)
	e.wantErr(t, http.StatusForbidden, service.CodeForbidden, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/inner/publish", map[string]any{"body": "x"})
}

// TestRESTNamesWithSlashes checks names that hold '/' and other escaped
// characters: a vhost, a queue and an exchange.
func TestRESTNamesWithSlashes(t *testing.T) {
	e := newRESTEnv(t)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/team%2Fa", nil, nil)
	if !e.b.VhostExists("team/a") {
		t.Fatal("vhost team/a was not created")
	}
	const q = "/api/v1/vhosts/team%2Fa/queues/x%2Fy%20z"
	var info restQueue
	e.must(t, http.StatusCreated, http.MethodPut, q, map[string]any{"durable": false}, &info)
	if info.Vhost != "team/a" || info.Name != "x/y z" || info.Durable {
		t.Fatalf("queue: %+v", info)
	}
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/team%2Fa/exchanges/in%2Fbox", map[string]any{"type": "fanout"}, nil)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/team%2Fa/bindings/e/in%2Fbox/q/x%2Fy%20z", nil, nil)
	var pub struct{ Routed int }
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/vhosts/team%2Fa/exchanges/in%2Fbox/publish", map[string]any{"body": "slashed"}, &pub)
	if pub.Routed != 1 {
		t.Fatalf("routed %d", pub.Routed)
	}
	if ms := e.get(t, q+"/get", 1, service.AckRequeueFalse); len(ms) != 1 || *ms[0].Body != "slashed" || ms[0].Exchange != "in/box" {
		t.Fatalf("got %+v", ms)
	}
	// The default vhost is not team/a.
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/vhosts/%2F/queues/x%2Fy%20z", nil)
	// Lower-case escapes work as well.
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/vhosts/team%2fa/queues/x%2fy%20z", nil, nil)
}

// A get that hands messages out for good (ack_requeue_false,
// reject_requeue_false) has settled them on disk before it answers: after
// a crash right after the answer they do not come back.
func TestRESTGetSettledSurvivesCrash(t *testing.T) {
	e := newRESTEnv(t)
	const q = "/api/v1/vhosts/%2F/queues/jobs"
	e.must(t, http.StatusCreated, http.MethodPut, q, map[string]any{"durable": true}, nil)
	for _, body := range []string{"a", "b", "c", "d"} {
		e.must(t, http.StatusOK, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.default/publish", map[string]any{
			"routing_key": "jobs", "body": body, "properties": map[string]any{"delivery_mode": 2},
		}, nil)
	}
	if got := e.get(t, q+"/get", 2, service.AckRequeueFalse); len(got) != 2 || *got[0].Body != "a" || *got[1].Body != "b" {
		t.Fatalf("ack_requeue_false got %+v", got)
	}
	if got := e.get(t, q+"/get", 1, service.RejectRequeueFalse); len(got) != 1 || *got[0].Body != "c" {
		t.Fatalf("reject_requeue_false got %+v", got)
	}
	dir := crashcopy.Dir(t, e.dir)

	b, err := broker.Open(broker.Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bq, err := b.Queue(broker.DefaultVhost, "", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for {
		d, ok := bq.Get(t.Context(), true)
		if !ok {
			break
		}
		left = append(left, string(d.Message.Body))
	}
	if strings.Join(left, ",") != "d" {
		t.Fatalf("after a crash the queue holds %v, want only d", left)
	}
}
