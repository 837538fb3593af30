package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Path is where the gateway mounts the console. A request for the path
// without its trailing slash is redirected to it by http.ServeMux.
const Path = "/console/"

// CSP is the Content-Security-Policy of every console response: scripts,
// styles and connections (the WebSocket included: 'self' matches ws:// and
// wss:// on the page's own host and port) only from the page's own origin,
// and nothing else: no inline script, no eval, no frames, no form posting
// elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

//go:embed static/index.html static/app.js static/console.css static/favicon.svg
var static embed.FS

// file is one embedded file as it is served.
type file struct {
	name        string
	contentType string
	body        []byte
	etag        string
}

// files maps a path below Path to what is served there; "" is the page.
var files = map[string]*file{
	"":            load("index.html", "text/html; charset=utf-8"),
	"app.js":      load("app.js", "text/javascript; charset=utf-8"),
	"console.css": load("console.css", "text/css; charset=utf-8"),
	"favicon.svg": load("favicon.svg", "image/svg+xml"),
}

func load(name, contentType string) *file {
	body, err := static.ReadFile("static/" + name)
	if err != nil {
		panic("console: embedded file missing: " + err.Error()) // caught by the tests
	}
	sum := sha256.Sum256(body)
	return &file{name: name, contentType: contentType, body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// Handler serves the console's files below Path and hands every other
// request, below Path or not, to notFound (http.NotFound when nil). It
// serves any method it gets; the gateway mounts it behind its GET and HEAD
// filter. Responses may be cached but are revalidated (ETag).
func Handler(notFound http.Handler) http.Handler {
	if notFound == nil {
		notFound = http.HandlerFunc(http.NotFound)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, Path)
		f := files[rest]
		if !ok || f == nil {
			notFound.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// The page's URL may hold a password: never send it on.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
	})
}
