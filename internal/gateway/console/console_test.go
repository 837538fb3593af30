package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// newServer mounts Handler at Path, as the gateway does, with a notFound
// handler that marks its answers.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"code":"not_found","message":"no route for `+r.URL.Path+`"}`)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
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

func TestServesFiles(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		path, contentType, fragment string
	}{
		{"/console/", "text/html; charset=utf-8", `<ol id="messages"`},
		{"/console/app.js", "text/javascript; charset=utf-8", "new WebSocket("},
		{"/console/console.css", "text/css; charset=utf-8", "#status"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, "GET", srv.URL+tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.contentType)
			}
			if !strings.Contains(body, tt.fragment) {
				t.Errorf("body lacks %q", tt.fragment)
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": CSP,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-cache",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}

			// Revalidation by ETag, and HEAD without a body.
			etag := resp.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			resp, _ = get(t, "GET", srv.URL+tt.path, http.Header{"If-None-Match": {etag}})
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: status = %d, want 304", resp.StatusCode)
			}
			resp, body = get(t, "HEAD", srv.URL+tt.path, nil)
			if resp.StatusCode != http.StatusOK || body != "" {
				t.Errorf("HEAD: status = %d, body %d bytes; want 200 and none", resp.StatusCode, len(body))
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	srv := newServer(t)
	for _, path := range []string{
		"/console/nope", "/console/index.html", "/console/static/app.js",
		"/console/app.js/", "/console/app.js/x", "/console/sub/", "/console/.",
	} {
		t.Run(path, func(t *testing.T) {
			resp, body := get(t, "GET", srv.URL+path, nil)
			if resp.StatusCode/100 == 3 {
				// ServeMux redirects unclean paths such as /console/. first.
				return
			}
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status = %d, want 404 (body %q)", resp.StatusCode, body)
			}
			if !strings.Contains(body, "no route for "+path) {
				t.Errorf("body %q is not the notFound handler's", body)
			}
			if resp.Header.Get("Content-Security-Policy") != "" {
				t.Error("a 404 carries the console's headers")
			}
		})
	}
}

func TestRedirectWithoutSlash(t *testing.T) {
	srv := newServer(t)
	resp, _ := get(t, "GET", srv.URL+"/console", nil)
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/console/" {
		t.Errorf("GET /console: status %d, Location %q; want a redirect to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestDefaultNotFound(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/console/nope", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/elsewhere", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("outside Path: status = %d, want 404", rec.Code)
	}
}

// The page loads only what this handler serves, from its own origin, and
// has no inline script or style (the CSP would block them).
func TestPageIsSelfContained(t *testing.T) {
	page := string(files[""].body)
	refs := regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) == 0 {
		t.Fatal("the page references no files")
	}
	for _, m := range refs {
		if files[m[1]] == nil {
			t.Errorf("the page references %q, which is not served", m[1])
		}
	}
	for _, f := range files {
		// An SVG's namespace is a name, not something loaded.
		body := strings.ReplaceAll(string(f.body), `xmlns="http://www.w3.org/2000/svg"`, "")
		if strings.Contains(body, "://") {
			t.Errorf("%q names an absolute URL (assets must come from the page's origin)", f.name)
		}
	}
	if regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(page) {
		t.Error("the page has an inline script")
	}
	if regexp.MustCompile(`(?i)<style|\sstyle\s*=|\son[a-z]+\s*=`).MatchString(page) {
		t.Error("the page has inline style or an inline event handler")
	}
	if strings.Contains(CSP, "unsafe-") {
		t.Errorf("CSP %q allows unsafe sources", CSP)
	}
}
