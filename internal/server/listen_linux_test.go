package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// acceptedSockopts dials ln, accepts the connection and reads the
// keepalive options of the accepted socket.
func acceptedSockopts(t *testing.T, ln net.Listener) (keepalive, idle, interval, count int) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		get := func(level, opt int) int {
			v, err := unix.GetsockoptInt(int(fd), level, opt)
			if err != nil && serr == nil {
				serr = err
			}
			return v
		}
		keepalive = get(unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		idle = get(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		interval = get(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		count = get(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
	})
	if err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return keepalive, idle, interval, count
}

// TestListenSetsTCPKeepAlive checks the keepalive options of an accepted
// socket: on, with the configured idle time and interval and 9 probes; or
// off when the setting is 0.
func TestListenSetsTCPKeepAlive(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for _, period := range []time.Duration{7 * time.Second, 15 * time.Second, 0} {
		t.Run(period.String(), func(t *testing.T) {
			ln, err := listen("test", "127.0.0.1:0", period, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			on, idle, interval, count := acceptedSockopts(t, ln)
			if period == 0 {
				if on != 0 {
					t.Errorf("SO_KEEPALIVE = %d with keepalive disabled", on)
				}
				return
			}
			secs := int(period / time.Second)
			if on != 1 || idle != secs || interval != secs || count != keepAliveProbes {
				t.Errorf("SO_KEEPALIVE %d, TCP_KEEPIDLE %d, TCP_KEEPINTVL %d, TCP_KEEPCNT %d; want 1, %d, %d, %d",
					on, idle, interval, count, secs, secs, keepAliveProbes)
			}
		})
	}
}

// serverSocketTimer finds, in /proc/net/tcp, the established socket whose
// local port is listenPort and whose peer is the client socket local, and
// returns its timer kind and the time left on it in clock ticks; found is
// false if the socket is not listed.
func serverSocketTimer(t *testing.T, listenPort int, local net.Addr) (kind int, ticks int64, found bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
	wantLocal := fmt.Sprintf(":%04X", listenPort)
	wantRemote := fmt.Sprintf(":%04X", local.(*net.TCPAddr).Port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasSuffix(f[1], wantLocal) || !strings.HasSuffix(f[2], wantRemote) || f[3] != "01" {
			continue
		}
		tr, when, _ := strings.Cut(f[5], ":")
		k, _ := strconv.Atoi(tr)
		n, _ := strconv.ParseInt(when, 16, 64)
		return k, n, true
	}
	return 0, 0, false
}

// TestRunListenersUseTCPKeepAlive checks that every listener Run starts
// arms the keepalive timer of the connections it accepts with the
// configured idle time (37s here, which neither Go's default of 15s nor
// the kernel's of 2h is), as /proc/net/tcp shows it: timer kind 2 with the
// time left in clock ticks (USER_HZ, 100 a second).
func TestRunListenersUseTCPKeepAlive(t *testing.T) {
	cfg := testConfig(t)
	cfg.TCPKeepAlive = 37 * time.Second
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(rec)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	httpAddr, kafkaAddr, amqpAddr := listenAddrs(rec.waitFor(t, "wharf ready"))
	go func() {
		for range rec.ch {
		}
	}()
	const ticksPerSecond = 100
	for name, addr := range map[string]string{"http": httpAddr, "kafka": kafkaAddr, "amqp": amqpAddr} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		port := c.RemoteAddr().(*net.TCPAddr).Port
		// The kernel lists the socket before the server has accepted it
		// and set its options: wait for the keepalive timer.
		var kind int
		var ticks int64
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if kind, ticks, _ = serverSocketTimer(t, port, c.LocalAddr()); kind == 2 {
				break
			}
		}
		c.Close()
		if kind != 2 || ticks <= 15*ticksPerSecond || ticks > 37*ticksPerSecond {
			t.Errorf("%s: timer %d with %d ticks left; want the keepalive timer (2) with more than 15s and at most 37s left", name, kind, ticks)
		}
	}
}

// TestHTTPIdleConnectionsAreClosed checks that the HTTP listener closes a
// kept-alive connection that sends no next request.
func TestHTTPIdleConnectionsAreClosed(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	addr := freeLoopbackAddr(t)
	l, err := startHTTP(addr, 0, 15*time.Second, time.Second, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.shutdown(ctx, slog.New(slog.DiscardHandler))
	}()
	kept, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	fmt.Fprintf(kept, "GET / HTTP/1.1\r\nHost: wharf\r\n\r\n")
	br := bufio.NewReader(kept)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("status %d, close %v: want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	kept.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
		t.Fatalf("idle kept-alive connection: read %d bytes, %v; want the server to close it", n, err)
	}
}
