package gateway

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/logbuf"
)

// keepAliveConn is a raw HTTP/1.1 connection that sends GET /healthz and
// reads the answer, keeping the connection open between requests.
type keepAliveConn struct {
	nc net.Conn
	rd *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAliveConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &keepAliveConn{nc: nc, rd: bufio.NewReader(nc)}
}

func (c *keepAliveConn) get(t *testing.T) int {
	t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c.nc, "GET /healthz HTTP/1.1\r\nHost: wharf\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.rd, nil)
	if err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestLimitListenerUnderAFlood holds the listener's two connections open
// and sends a flood of requests on new connections: none reaches the
// handler, those answered get 503 limit_reached, the held connections are
// served throughout, one line is logged, and once a held connection
// closes a new one is served.
func TestLimitListenerUnderAFlood(t *testing.T) {
	logs := &logbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2, logger)
	var handled atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		NewHandler(Options{Logger: logger}).ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	addr := inner.Addr().String()

	c1, c2 := dialKeepAlive(t, addr), dialKeepAlive(t, addr)
	if c1.get(t) != http.StatusOK || c2.get(t) != http.StatusOK {
		t.Fatal("the first two connections were not served")
	}
	before := handled.Load()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	var refused, dropped atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get("http://" + addr + "/healthz")
			if err != nil {
				dropped.Add(1) // closed unanswered: too many refusals at once
				return
			}
			defer resp.Body.Close()
			var body struct{ Code, Message string }
			if resp.StatusCode != http.StatusServiceUnavailable || json.NewDecoder(resp.Body).Decode(&body) != nil ||
				body.Code != "limit_reached" || !strings.Contains(body.Message, "connection limit (2)") {
				t.Errorf("a request beyond the limit: %d %+v", resp.StatusCode, body)
				return
			}
			refused.Add(1)
		}()
	}
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatalf("no request of the flood was answered 503 (%d dropped)", dropped.Load())
	}
	if n := handled.Load() - before; n != 0 {
		t.Fatalf("%d requests beyond the limit reached the handler", n)
	}
	if c1.get(t) != http.StatusOK || c2.get(t) != http.StatusOK {
		t.Fatal("the held connections stopped being served during the flood")
	}
	if n := strings.Count(logs.String(), "limits.http_max_connections"); n != 1 {
		t.Fatalf("%d log lines for a flood of %d refusals, want 1", n, refused.Load()+dropped.Load())
	}

	c1.nc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served after a held one closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
