package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// keepAliveProbes is how many unanswered TCP keepalive probes drop a
// connection: Linux's and Go's default.
const keepAliveProbes = 9

// Accept backoff after an error other than the listener being closed
// (running out of file descriptors, mostly): it starts small and doubles up
// to a second, as net/http's does.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// listen binds a TCP listener for one protocol. Every connection it
// accepts has TCP keepalive set explicitly from keepAlive (idle time before
// the first probe and time between probes, keepAliveProbes probes; zero
// disables keepalive), instead of relying on the defaults of the Go
// runtime (15s, 15s, 9) or of the kernel (2h, 75s, 9). A peer that vanishes
// without a FIN or RST (power loss, a dropped route) is then noticed
// within about (1+keepAliveProbes)*keepAlive even when the connection is
// idle, and its connection ends, freeing what it held.
//
// Accept errors that waiting can cure (EMFILE, ENFILE, ENOBUFS,
// ECONNABORTED, ...; see retryable) do not reach the caller: Accept logs them, backs off
// and tries again, so a flood of connections that exhausts the process's
// file descriptors delays new connections instead of stopping the listener
// and with it the server.
func listen(name, addr string, keepAlive time.Duration, logger *slog.Logger) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: keepAliveConfig(keepAlive)}
	if keepAlive <= 0 {
		lc.KeepAlive = -1 // with Enable false: no keepalive at all
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener on %s: %w", name, addr, err)
	}
	return &listener{Listener: ln, name: name, logger: logger, closed: make(chan struct{})}, nil
}

// keepAliveConfig is the keepalive of accepted connections for a period;
// zero or negative disables it.
func keepAliveConfig(period time.Duration) net.KeepAliveConfig {
	if period <= 0 {
		return net.KeepAliveConfig{Enable: false}
	}
	return net.KeepAliveConfig{Enable: true, Idle: period, Interval: period, Count: keepAliveProbes}
}

// retryable reports an accept error that waiting may cure: out of file
// descriptors or buffers, or a connection that died in the accept queue.
// Anything else (the listener closed, above all) is final.
func retryable(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// acceptLogEvery is the least time between two logs of failing accepts:
// under a flood they fail by the thousand.
const acceptLogEvery = 10 * time.Second

// listener retries accept errors other than its own closing.
type listener struct {
	net.Listener
	name      string
	logger    *slog.Logger
	closeOnce sync.Once
	closed    chan struct{}

	// Accept's own (net/http and the adapters call it from one goroutine).
	failed  int       // accept failures not logged yet
	logged  time.Time // when failures were last logged
	backoff bool      // the last accept failed
}

// Accept returns the next connection, or the error of a closed listener.
func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if l.backoff {
				l.backoff = false
				l.logger.Info("accepting connections again", "listener", l.name)
			}
			return c, nil
		}
		select {
		case <-l.closed:
			return nil, err
		default:
		}
		if !retryable(err) {
			return nil, err
		}
		l.backoff = true
		l.failed++
		if now := time.Now(); now.Sub(l.logged) >= acceptLogEvery {
			l.logger.Warn("accept failed; retrying with backoff", "listener", l.name, "err", err, "failures", l.failed)
			l.logged, l.failed = now, 0
		}
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// Close stops accepting; an Accept waiting out a backoff returns at once.
func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
