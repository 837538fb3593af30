package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/storage"
)

// restEnv is a broker with the gateway's HTTP handler, REST face included,
// on a real HTTP server.
type restEnv struct {
	dir   string
	b     *broker.Broker
	svc   *service.Service
	users *auth.Store
	srv   *httptest.Server
}

// restMaxMessage is the message size limit of the test service: small, so
// that the size limits are cheap to cross.
const restMaxMessage = 64 << 10

func newRESTEnv(t *testing.T) *restEnv {
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
	if err := users.SetPermission("alice", "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	svc := service.New(b, nil, service.Options{AutoCreateTopics: true, DefaultPartitions: 1, MaxMessageBytes: restMaxMessage, Users: users})
	srv := httptest.NewServer(NewHandler(Options{Service: svc, Users: users}))
	t.Cleanup(func() {
		srv.Close()
		if err := b.Close(); err != nil {
			t.Errorf("closing broker: %v", err)
		}
	})
	return &restEnv{dir: dir, b: b, svc: svc, users: users, srv: srv}
}

// restResp is a response: its status, headers and JSON body.
type restResp struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v.
func (r restResp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// obj is the body as a JSON object.
func (r restResp) obj(t *testing.T) map[string]any {
	t.Helper()
	m := map[string]any{}
	r.json(t, &m)
	return m
}

// errCode is the code of an error body.
func (r restResp) errCode(t *testing.T) string {
	t.Helper()
	var e apiError
	r.json(t, &e)
	if e.Message == "" {
		t.Errorf("error body %s has no message", r.body)
	}
	return e.Code
}

// raw sends a request with a body given as bytes (nil: none) and the
// given credentials (user "" sends none).
func (e *restEnv) raw(t *testing.T, user, pass, method, path string, body []byte) restResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); method != http.MethodHead && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return restResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// do sends v (nil: no body) as JSON, as guest (from loopback).
func (e *restEnv) do(t *testing.T, method, path string, v any) restResp {
	t.Helper()
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return e.raw(t, "guest", "guest", method, path, body)
}

// must sends a request and fails unless it gets status; it decodes the
// body into out when out is not nil.
func (e *restEnv) must(t *testing.T, status int, method, path string, v, out any) restResp {
	t.Helper()
	r := e.do(t, method, path, v)
	if r.status != status {
		t.Fatalf("%s %s: status %d (%s), want %d", method, path, r.status, r.body, status)
	}
	if out != nil {
		r.json(t, out)
	}
	return r
}

// wantErr sends a request and fails unless it gets the error status and code.
func (e *restEnv) wantErr(t *testing.T, status int, code, method, path string, v any) {
	t.Helper()
	r := e.do(t, method, path, v)
	if r.status != status {
		t.Fatalf("%s %s: status %d (%s), want %d", method, path, r.status, r.body, status)
	}
	if got := r.errCode(t); got != code {
		t.Fatalf("%s %s: code %q (%s), want %q", method, path, got, r.body, code)
	}
}

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
	} `json:"components"`
}

// TestOpenAPIMatchesRoutes checks that openapi.json is OpenAPI 3.0 and
// describes exactly the routes mountREST serves, each with its path
// parameters, and that every $ref in it resolves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal([]byte(openAPIDocument), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Fatalf("openapi is %q, want 3.0.x", doc.OpenAPI)
	}

	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range (&restAPI{}).routes() {
		served[rt.method+" "+rt.pattern] = true
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("openapi.json describes %s, which is not served", r)
		}
	}

	// Each operation declares exactly its pattern's path parameters.
	for path, item := range doc.Paths {
		var want []string
		for _, s := range strings.Split(path, "/") {
			if strings.HasPrefix(s, "{") {
				want = append(want, strings.Trim(s, "{}"))
			}
		}
		sort.Strings(want)
		for method, raw := range item {
			var op struct {
				Parameters []struct {
					Ref  string `json:"$ref"`
					Name string `json:"name"`
					In   string `json:"in"`
				} `json:"parameters"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			var got []string
			for _, p := range op.Parameters {
				if p.Ref != "" {
					c, ok := doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
					if !ok {
						t.Fatalf("%s %s: parameter %s does not resolve", method, path, p.Ref)
					}
					p.Name, p.In = c.Name, c.In
				}
				if p.In == "path" {
					got = append(got, p.Name)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: path parameters %v, want %v", method, path, got, want)
			}
		}
	}

	// Every $ref points at something.
	var all any
	if err := json.Unmarshal([]byte(openAPIDocument), &all); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				var cur any = all
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := cur.(map[string]any)
					cur = m[part]
				}
				if cur == nil {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(all)
}

// TestRESTPatternsDisjoint checks that no path matches two patterns, so
// the router's choice never depends on their order.
func TestRESTPatternsDisjoint(t *testing.T) {
	a := &restAPI{}
	for _, rt := range a.routes() {
		a.add(rt)
	}
	for i, p := range a.paths {
		for _, q := range a.paths[i+1:] {
			if len(p.segs) != len(q.segs) {
				continue
			}
			overlap := true
			for k := range p.segs {
				if p.names[k] == "" && q.names[k] == "" && p.segs[k] != q.segs[k] {
					overlap = false
				}
			}
			if overlap {
				t.Errorf("patterns %s and %s can match the same path", p.pattern, q.pattern)
			}
		}
	}
}

func TestRESTAuth(t *testing.T) {
	e := newRESTEnv(t)
	for _, c := range []struct{ name, user, pass string }{
		{"no credentials", "", ""},
		{"wrong password", "alice", "nope"},
		{"unknown user", "mallory", "x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/topics", "/api/v1/users", "/api/v1/server"} {
				r := e.raw(t, c.user, c.pass, http.MethodGet, path, nil)
				if r.status != http.StatusUnauthorized || r.errCode(t) != service.CodeUnauthorized {
					t.Fatalf("GET %s: %d %s, want 401 unauthorized", path, r.status, r.body)
				}
				if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Basic ") {
					t.Fatalf("WWW-Authenticate %q", h)
				}
			}
			// A method the path lacks is refused as unauthorized first.
			if r := e.raw(t, c.user, c.pass, http.MethodDelete, "/api/v1/topics", nil); r.status != http.StatusUnauthorized {
				t.Fatalf("DELETE /api/v1/topics: %d", r.status)
			}
		})
	}
	if r := e.raw(t, "alice", "wonderland", http.MethodGet, "/api/v1/server", nil); r.status != http.StatusOK {
		t.Fatalf("alice: %d %s", r.status, r.body)
	}
	if r := e.raw(t, "guest", "guest", http.MethodGet, "/api/v1/topics", nil); r.status != http.StatusOK {
		t.Fatalf("guest from loopback: %d %s", r.status, r.body)
	}

	// guest is loopback-only: from elsewhere it is refused.
	api := newRESTAPI(Options{Service: e.svc, Users: e.users}, slog.New(slog.DiscardHandler))
	req := httptest.NewRequest(http.MethodGet, "/api/v1/topics", nil)
	req.RemoteAddr = "192.0.2.7:4242"
	req.SetBasicAuth("guest", "guest")
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("guest from 192.0.2.7: %d %s", rec.Code, rec.Body)
	}
	req = httptest.NewRequest(http.MethodGet, "/api/v1/server", nil)
	req.RemoteAddr = "192.0.2.7:4242"
	req.SetBasicAuth("alice", "wonderland")
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("alice from 192.0.2.7: %d %s", rec.Code, rec.Body)
	}

	// The OpenAPI document needs no login.
	r := e.raw(t, "", "", http.MethodGet, "/api/openapi.json", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.obj(t)["openapi"].(string), "3.0.") {
		t.Fatalf("openapi.json: %d %.100s", r.status, r.body)
	}
}

func TestRESTRoutingErrors(t *testing.T) {
	e := newRESTEnv(t)
	e.wantErr(t, http.StatusNotFound, codeNotFound, http.MethodGet, "/api/v1/nothing", nil)
	e.wantErr(t, http.StatusNotFound, codeNotFound, http.MethodGet, "/api/nothing", nil)
	e.wantErr(t, http.StatusNotFound, codeNotFound, http.MethodGet, "/api/v1/topics/t/partitions/0/records/extra", nil)

	r := e.do(t, http.MethodDelete, "/api/v1/topics", nil)
	if r.status != http.StatusMethodNotAllowed || r.errCode(t) != codeMethodNotAllowed {
		t.Fatalf("DELETE /api/v1/topics: %d %s", r.status, r.body)
	}
	if got := r.header.Get("Allow"); got != "GET, POST" {
		t.Fatalf("Allow %q", got)
	}
	r = e.do(t, http.MethodPost, "/api/openapi.json", nil)
	if r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /api/openapi.json: %d", r.status)
	}
	// The other routes of the handler are untouched.
	if r := e.raw(t, "", "", http.MethodGet, "/healthz", nil); r.status != http.StatusOK {
		t.Fatalf("/healthz: %d", r.status)
	}
}

func TestRESTBodyErrors(t *testing.T) {
	e := newRESTEnv(t)
	post := func(body string) restResp {
		return e.raw(t, "guest", "guest", http.MethodPost, "/api/v1/topics/t/records", []byte(body))
	}
	for _, c := range []struct{ name, body string }{
		{"malformed", `{"records": [`},
		{"not an object", `[1,2]`},
		{"unknown field", `{"records":[{"value":"x"}],"extra":1}`},
		{"two values", `{"records":[{"value":"x"}]} {}`},
		{"empty", ``},
		{"no records", `{"records":[]}`},
		{"bad base64", `{"records":[{"value_b64":"not base64!"}]}`},
		{"value twice", `{"records":[{"value":"x","value_b64":"eA=="}]}`},
		{"wrong type", `{"records":[{"partition":"one"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := post(c.body)
			if r.status != http.StatusBadRequest || r.errCode(t) != service.CodeInvalid {
				t.Fatalf("%d %s, want 400 invalid_argument", r.status, r.body)
			}
		})
	}

	// A body over the limit is 413 before it is decoded.
	huge := `{"records":[{"value":"` + strings.Repeat("x", 3<<20) + `"}]}`
	if r := post(huge); r.status != http.StatusRequestEntityTooLarge || r.errCode(t) != service.CodeTooLarge {
		t.Fatalf("huge body: %d %s", r.status, r.body)
	}
	// A value over the message size limit is 413 too.
	big := `{"records":[{"value":"` + strings.Repeat("x", restMaxMessage+1) + `"}]}`
	if r := post(big); r.status != http.StatusRequestEntityTooLarge || r.errCode(t) != service.CodeTooLarge {
		t.Fatalf("big value: %d %s", r.status, r.body)
	}
	// Nothing of the refused requests was produced.
	if _, ok := e.b.Topic("t"); ok {
		start, hw, _ := e.svc.Offsets("t", 0)
		if hw != start {
			t.Fatalf("refused requests produced %d records", hw-start)
		}
	}
}

func TestRESTServer(t *testing.T) {
	e := newRESTEnv(t)
	var s restServer
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/server", nil, &s)
	if s.Product != "wharf" || s.Version == "" || s.GoVersion == "" || s.ClusterID != e.b.ClusterID() || s.UptimeMS < 0 {
		t.Fatalf("server: %+v", s)
	}
	if _, err := time.Parse(time.RFC3339, s.StartedAt); err != nil {
		t.Fatalf("started_at %q: %v", s.StartedAt, err)
	}
}

// waitDone waits for a goroutine's result, failing the test (rather than
// hanging it) if it never comes.
func waitDone[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatal("timed out waiting for a response")
	}
	var zero T
	return zero
}
