//go:build unix

package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/config"
)

// The environment of a configured server child: a marker, and the most
// file descriptors it may have open (optional). Its settings come from
// WHARF_* variables, as for wharf serve.
const (
	configuredChildEnv = "WHARF_SERVER_CONFIGURED_CHILD"
	childNofileEnv     = "WHARF_SERVER_CHILD_NOFILE"
)

// TestConfiguredServerChild is a whole server in its own process,
// configured by the WHARF_* environment like wharf serve, for tests that
// measure the process (memory, goroutines, file descriptors) or push it to
// its limits. It stops cleanly when its standard input is closed.
func TestConfiguredServerChild(t *testing.T) {
	if os.Getenv(configuredChildEnv) == "" {
		t.Skip("runs only as the child of a server test")
	}
	if s := os.Getenv(childNofileEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	if err := config.ApplyEnv(&cfg, os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	logger, err := NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := Run(ctx, cfg, logger); err != nil {
		t.Fatal(err)
	}
}

// startConfiguredChild starts TestConfiguredServerChild with the given
// WHARF_* settings (and childNofileEnv) and waits until its HTTP listener,
// at httpAddr, reports ready. The child is killed at test end if it is
// still running.
func startConfiguredChild(t *testing.T, httpAddr string, env ...string) *serverChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &serverChild{t: t, addr: httpAddr, done: make(chan struct{})}
	c.cmd = exec.Command(exe, "-test.run=^TestConfiguredServerChild$", "-test.count=1")
	c.cmd.Env = append(append(os.Environ(), configuredChildEnv+"=1", "WHARF_HTTP_LISTEN="+httpAddr), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		select {
		case <-c.done:
			t.Fatalf("server exited before it was ready: %v\n%s", c.err, c.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready on %s after a minute: %v\n%s", httpAddr, err, c.out.String())
		}
	}
}
