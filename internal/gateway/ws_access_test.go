package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

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
	// A token for app narrowed to reading app-events only.
	narrowed := e.dial(t, http.Header{"Authorization": {"Bearer " + token(t, jwt.MapClaims{"sub": "app",
		"permissions": map[string]any{"read": "^app-events$", "write": ""}})}})
	narrowed.next("welcome")
	narrowed.ok(map[string]any{"type": "subscribe", "topic": "app-events", "from": "earliest"})
	narrowed.wantError(map[string]any{"type": "produce", "topic": "app-events", "value": "x"}, service.CodeForbidden)
	narrowed.wantError(map[string]any{"type": "subscribe", "topic": "app-other", "from": "earliest"}, service.CodeForbidden)
	// A token for an identity that is not a Wharf user messages clients
	// only.
	device := e.dial(t, http.Header{"Authorization": {"Bearer " + token(t, jwt.MapClaims{"sub": "device-9"})}})
	device.next("welcome")
	device.ok(map[string]any{"type": "send", "to": "app", "data": "hello"})
	device.wantError(map[string]any{"type": "subscribe", "topic": "app-events", "from": "earliest"}, service.CodeForbidden)
	device.wantError(map[string]any{"type": "produce", "topic": "app-events", "value": "x"}, service.CodeForbidden)

	p, err := e.b.Partition("secret", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Fatalf("secret holds %d records after a refused produce", hw)
	}
}
