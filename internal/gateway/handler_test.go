package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// newServer serves NewHandler over a real socket. The registry holds one
// counter so /metrics has something to show.
func newServer(t *testing.T, ready func() bool) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "wharf_test_total", Help: "A test counter."})
	c.Add(3)
	reg.MustRegister(c)
	srv := httptest.NewServer(NewHandler(Options{Registry: reg, Ready: ready}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestRoutes(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := newServer(t, ready.Load)

	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantJSON   map[string]string // nil: body is not JSON
		wantBody   string            // a fragment, for non-JSON bodies
	}{
		{"healthz", "GET", "/healthz", 200, map[string]string{"status": "ok"}, ""},
		{"readyz", "GET", "/readyz", 200, map[string]string{"status": "ready"}, ""},
		{"metrics", "GET", "/metrics", 200, nil, "wharf_test_total 3"},
		{"unknown path", "GET", "/nope", 404, map[string]string{"code": "not_found", "message": "no route for /nope"}, ""},
		{"root", "GET", "/", 404, map[string]string{"code": "not_found", "message": "no route for /"}, ""},
		{"subpath of a route", "GET", "/healthz/x", 404, map[string]string{"code": "not_found", "message": "no route for /healthz/x"}, ""},
		{"wrong method", "POST", "/healthz", 405, map[string]string{"code": "method_not_allowed", "message": "POST is not allowed on /healthz"}, ""},
		{"head", "HEAD", "/healthz", 200, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, srv.URL+tt.path)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantJSON != nil {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var got map[string]string
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatalf("body %q is not a JSON object of strings: %v", body, err)
				}
				if len(got) != len(tt.wantJSON) {
					t.Errorf("body = %v, want %v", got, tt.wantJSON)
				}
				for k, v := range tt.wantJSON {
					if got[k] != v {
						t.Errorf("body[%q] = %q, want %q", k, got[k], v)
					}
				}
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body does not contain %q:\n%s", tt.wantBody, body)
			}
		})
	}
}

func TestMethodNotAllowedSetsAllow(t *testing.T) {
	srv := newServer(t, func() bool { return true })
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, _ := do(t, "DELETE", srv.URL+path)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("DELETE %s: status %d, want 405", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("DELETE %s: Allow = %q, want \"GET, HEAD\"", path, got)
		}
	}
}

func TestReadinessFollowsFunc(t *testing.T) {
	var ready atomic.Bool
	srv := newServer(t, ready.Load)

	steps := []struct {
		ready      bool
		wantStatus int
		wantBody   string
	}{
		{false, http.StatusServiceUnavailable, `{"status":"not_ready"}`},
		{true, http.StatusOK, `{"status":"ready"}`},
		{false, http.StatusServiceUnavailable, `{"status":"not_ready"}`},
	}
	for _, s := range steps {
		ready.Store(s.ready)
		resp, body := do(t, "GET", srv.URL+"/readyz")
		if resp.StatusCode != s.wantStatus || strings.TrimSpace(body) != s.wantBody {
			t.Errorf("ready=%v: got %d %q, want %d %q", s.ready, resp.StatusCode, body, s.wantStatus, s.wantBody)
		}
		// Liveness does not depend on readiness.
		if resp, _ := do(t, "GET", srv.URL+"/healthz"); resp.StatusCode != http.StatusOK {
			t.Errorf("ready=%v: /healthz status %d, want 200", s.ready, resp.StatusCode)
		}
	}
}
