package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/limits"
)

// The HTTP listener's connection limit. Every TCP connection counts, from
// accept to close: REST keep-alive connections, WebSocket sessions (their
// connections are hijacked and still counted), gRPC and metrics scrapes.
// A connection beyond the limit is answered, without reaching the
// handler, with 503 and the limit_reached JSON error, then closed.

const (
	// refuseTimeout bounds how long a refused connection is kept to read
	// its request head and let the answer leave.
	refuseTimeout = 5 * time.Second
	// maxRefusing bounds the refused connections being answered at once;
	// past it, refused connections are closed without an answer.
	maxRefusing = 64
)

// LimitListener returns ln admitting at most max open connections; zero
// or less returns ln itself. logger receives the refusals, one line per
// interval.
func LimitListener(ln net.Listener, max int, logger *slog.Logger) net.Listener {
	if max <= 0 {
		return ln
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: ln, gate: limits.NewGate(max),
		refusals: limits.NewLogSampler(logger, 0, nil), refusing: make(chan struct{}, maxRefusing)}
}

type limitListener struct {
	net.Listener
	gate     *limits.Gate
	refusals *limits.LogSampler
	refusing chan struct{} // one token per refused connection being answered
}

// Accept returns the next connection within the limit; it answers and
// closes those beyond it itself.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if release, ok := l.gate.Acquire(); ok {
			return &limitedConn{Conn: c, release: release}, nil
		}
		l.refusals.Warn("connection limit", "connection refused: connection limit of the listener reached",
			"listener", "http", "remote", c.RemoteAddr().String(), "limit", l.gate.Max(), "setting", "limits.http_max_connections")
		select {
		case l.refusing <- struct{}{}:
			go func() {
				defer func() { <-l.refusing }()
				refuse(c, l.gate.Max())
			}()
		default:
			c.Close()
		}
	}
}

// refuse answers the request on c with 503 and closes c. It reads the
// request head first and lingers after the answer, so the client reads
// the answer rather than a connection reset.
func refuse(c net.Conn, max int) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refuseTimeout))
	if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
		return
	}
	body, _ := json.Marshal(apiError{Code: service.CodeLimitReached,
		Message: fmt.Sprintf("connection refused: HTTP listener connection limit (%d) is reached", max)})
	body = append(body, '\n')
	head := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"+
		"Cache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", len(body))
	if _, err := c.Write(append([]byte(head), body...)); err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
}

// limitedConn frees its slot when it is closed, once.
type limitedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
