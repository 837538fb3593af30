package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// TestRESTPermissionsEnforced: a user without tags is held to its
// configure/write/read expressions; refused requests get 403 and change
// nothing; the administrator may do everything.
func TestRESTPermissionsEnforced(t *testing.T) {
	e := newRESTEnv(t)
	if err := e.users.Put("app", "pw", false); err != nil {
		t.Fatal(err)
	}
	if err := e.users.SetPermission("app", "/", auth.Permission{Configure: "^app-", Write: "^app-", Read: "^app-"}); err != nil {
		t.Fatal(err)
	}
	as := func(method, path string, body any) restResp {
		t.Helper()
		var raw []byte
		if body != nil {
			var err error
			if raw, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		return e.raw(t, "app", "pw", method, path, raw)
	}
	forbidden := func(what string, r restResp, want string) {
		t.Helper()
		if r.status != http.StatusForbidden || r.errCode(t) != service.CodeForbidden || !strings.Contains(string(r.body), want) {
			t.Errorf("%s: %d %s, want 403 naming %q", what, r.status, r.body, want)
		}
	}
	// The administrator sets up what app may not touch.
	e.must(t, http.StatusCreated, http.MethodPost, "/api/v1/topics", map[string]any{"name": "secret"}, nil)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/queues/vault", map[string]any{"durable": true}, nil)

	if r := as(http.MethodPost, "/api/v1/topics", map[string]any{"name": "app-events"}); r.status != http.StatusCreated {
		t.Fatalf("app creating app-events: %d %s", r.status, r.body)
	}
	if r := as(http.MethodPost, "/api/v1/topics/app-events/records", map[string]any{"records": []map[string]any{{"value": "v"}}}); r.status/100 != 2 {
		t.Fatalf("app producing to app-events: %d %s", r.status, r.body)
	}
	if r := as(http.MethodGet, "/api/v1/topics/app-events/partitions/0/records?offset=0", nil); r.status != http.StatusOK {
		t.Fatalf("app fetching app-events: %d %s", r.status, r.body)
	}
	forbidden("create topic", as(http.MethodPost, "/api/v1/topics", map[string]any{"name": "other"}), "topic 'other'")
	forbidden("produce", as(http.MethodPost, "/api/v1/topics/secret/records", map[string]any{"records": []map[string]any{{"value": "x"}}}), "topic 'secret'")
	forbidden("fetch", as(http.MethodGet, "/api/v1/topics/secret/partitions/0/records?offset=0", nil), "topic 'secret'")
	forbidden("delete topic", as(http.MethodDelete, "/api/v1/topics/secret", nil), "topic 'secret'")
	forbidden("publish to the default exchange", as(http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.default/publish", map[string]any{"routing_key": "vault", "body": "x"}), "exchange 'amq.default'")
	forbidden("get", as(http.MethodPost, "/api/v1/vhosts/%2F/queues/vault/get", map[string]any{"count": 1, "ackmode": "ack_requeue_false"}), "queue 'vault'")
	forbidden("delete queue", as(http.MethodDelete, "/api/v1/vhosts/%2F/queues/vault", nil), "queue 'vault'")
	forbidden("commit offsets", as(http.MethodPost, "/api/v1/groups/app-g/offsets", map[string]any{"offsets": []map[string]any{{"topic": "secret", "partition": 0, "offset": 0}}}), "topic 'secret'")
	forbidden("list users", as(http.MethodGet, "/api/v1/users", nil), "administrator")
	forbidden("grant itself", as(http.MethodPut, "/api/v1/permissions/%2F/app", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}), "administrator")
	forbidden("list topics", as(http.MethodGet, "/api/v1/topics", nil), "monitoring")

	// Nothing refused happened.
	if _, ok := e.b.Topic("secret"); !ok {
		t.Fatal("a refused delete removed the topic")
	}
	if _, ok := e.b.Topic("other"); ok {
		t.Fatal("a refused create made the topic")
	}
	if _, ok := e.b.LookupQueue("/", "vault"); !ok {
		t.Fatal("a refused delete removed the queue")
	}
	if e.users.Allowed("app", "/", auth.Read, "vault") {
		t.Fatal("a refused grant changed the permissions")
	}
	// The monitoring tag opens the listings, not the resources.
	if err := e.users.SetTags("app", []string{auth.TagMonitoring}); err != nil {
		t.Fatal(err)
	}
	if r := as(http.MethodGet, "/api/v1/topics", nil); r.status != http.StatusOK {
		t.Fatalf("monitoring user listing topics: %d %s", r.status, r.body)
	}
	forbidden("monitoring user fetching", as(http.MethodGet, "/api/v1/topics/secret/partitions/0/records?offset=0", nil), "topic 'secret'")
}
