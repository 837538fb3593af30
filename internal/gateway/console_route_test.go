package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The console is served at /console/ next to /ws, with the gateway's JSON
// 404 and 405 around it, and not at all without the WebSocket endpoint.
func TestConsoleRoute(t *testing.T) {
	env := newWSEnv(t, WSOptions{})
	fetch := func(method, url string) (*http.Response, string) {
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
	wantError := func(resp *http.Response, body string, status int, code, message string) {
		t.Helper()
		if resp.StatusCode != status {
			t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, status, body)
		}
		var got apiError
		if err := json.Unmarshal([]byte(body), &got); err != nil || got.Code != code || got.Message != message {
			t.Errorf("body %q, want code %q and message %q", body, code, message)
		}
	}

	resp, body := fetch("GET", env.srv.URL+"/console/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /console/: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, `<script src="app.js"`) {
		t.Errorf("GET /console/ is not the console page: %.200q", body)
	}
	resp, body = fetch("GET", env.srv.URL+"/console/missing.js")
	wantError(resp, body, http.StatusNotFound, codeNotFound, "no route for /console/missing.js")
	resp, body = fetch("POST", env.srv.URL+"/console/")
	wantError(resp, body, http.StatusMethodNotAllowed, codeMethodNotAllowed, "POST is not allowed on /console/")

	plain := httptest.NewServer(NewHandler(Options{}))
	defer plain.Close()
	resp, body = fetch("GET", plain.URL+"/console/")
	wantError(resp, body, http.StatusNotFound, codeNotFound, "no route for /console/")
}
