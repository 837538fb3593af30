package gateway

import (
	"net/http"
	"testing"
)

// TestRESTPublishDeduplicated: a REST publish goes through the same
// deduplication as an AMQP one: a duplicate message_id is answered 200,
// routed nowhere by a deduplicating exchange and not enqueued again by a
// deduplicating queue.
func TestRESTPublishDeduplicated(t *testing.T) {
	e := newRESTEnv(t)
	dedup := map[string]any{"x-message-deduplication": true, "x-deduplication-window-size": 10}
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/exchanges/dx", map[string]any{"type": "fanout", "arguments": dedup}, nil)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/queues/xq", nil, nil)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/queues/dq", map[string]any{"arguments": dedup}, nil)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/bindings/e/dx/q/xq", map[string]any{"routing_key": ""}, nil)
	for _, c := range []struct {
		exchange, key string
		routed        []int
	}{{"dx", "", []int{1, 0}}, {"amq.default", "dq", []int{1, 1}}} {
		for i, want := range c.routed {
			var pub struct{ Routed int }
			e.must(t, http.StatusOK, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/"+c.exchange+"/publish", map[string]any{
				"routing_key": c.key, "properties": map[string]any{"delivery_mode": 2, "message_id": "r1"}, "body": "b",
			}, &pub)
			if pub.Routed != want {
				t.Fatalf("publish %d through %s: routed %d, want %d", i, c.exchange, pub.Routed, want)
			}
		}
	}
	for _, q := range []string{"xq", "dq"} {
		if n := e.ready(t, "/api/v1/vhosts/%2F/queues/"+q); n != 1 {
			t.Fatalf("queue %s holds %d messages, want 1", q, n)
		}
	}
}
