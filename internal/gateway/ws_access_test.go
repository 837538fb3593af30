package gateway

import (
	"strings"
	"testing"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// TestWebSocketPermissions: a session logged in as a Wharf user is held to
// the user's permissions; refused requests get a forbidden error and
// change nothing.
func TestWebSocketPermissions(t *testing.T) {
	e := newWSEnv(t, WSOptions{})
	users := e.ws.users
	if err := users.Put("app", "app-pw", false); err != nil {
		t.Fatal(err)
	}
	if err := users.SetPermission("app", "/", auth.Permission{Configure: "^app-", Write: "^app-", Read: "^app-"}); err != nil {
		t.Fatal(err)
	}
	// The service checks with the same users.
	e.ws.svc = service.New(e.b, nil, service.Options{AutoCreateTopics: true, DefaultPartitions: 1, Users: users})
	if _, err := e.b.CreateTopic(t.Context(), "secret", 1, nil); err != nil {
		t.Fatal(err)
	}

	c := e.dial(t, basicAuth("app", "app-pw"))
	c.next("welcome")
	c.ok(map[string]any{"type": "produce", "topic": "app-events", "value": "v"})
	c.ok(map[string]any{"type": "subscribe", "topic": "app-events", "from": "earliest"})
	for _, req := range []map[string]any{
		{"type": "produce", "topic": "secret", "value": "x"},
		{"type": "subscribe", "topic": "secret", "from": "earliest"},
		{"type": "publish", "exchange": "", "routing_key": "vault", "body": "x"},
		{"type": "subscribe", "queue": "vault"},
	} {
		m := c.wantError(req, service.CodeForbidden)
		if msg, _ := m["message"].(string); !strings.Contains(msg, "refused for user 'app'") {
			t.Errorf("%v: message %q", req, msg)
		}
	}
	p, err := e.b.Partition("secret", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Fatalf("secret holds %d records after a refused produce", hw)
	}
}
