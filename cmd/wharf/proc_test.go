//go:build unix

package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/logbuf"
)

// asWharfEnv makes the test binary run as the wharf command (see
// TestMain), so that tests can run `wharf serve` in a process of its own
// and send it signals.
const asWharfEnv = "WHARF_TEST_AS_WHARF"

func TestMain(m *testing.M) {
	if os.Getenv(asWharfEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// wharfProc is `wharf serve` running in a child process, with every
// listener on a free loopback port.
type wharfProc struct {
	t                      *testing.T
	cmd                    *exec.Cmd
	log                    logbuf.Buffer
	done                   chan struct{} // closed once the process has been reaped
	httpAddr, kafka, amqpA string
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startWharf runs `wharf serve` on dir with extra flags and waits until
// /readyz answers 200. The process is killed when the test ends if it is
// still running.
func startWharf(t *testing.T, dir string, extra ...string) *wharfProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &wharfProc{t: t, done: make(chan struct{}), httpAddr: freeAddr(t), kafka: freeAddr(t), amqpA: freeAddr(t)}
	args := append([]string{"serve", "--data-dir", dir, "--http-listen", p.httpAddr,
		"--kafka-listen", p.kafka, "--amqp-listen", p.amqpA, "--log-level", "info"}, extra...)
	p.cmd = exec.Command(exe, args...)
	p.cmd.Env = append(os.Environ(), asWharfEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if resp, err := http.Get("http://" + p.httpAddr + "/readyz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("wharf serve exited before it was ready: %v\n%s", p.cmd.ProcessState, p.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("wharf serve not ready after 2 minutes:\n%s", p.log.String())
		}
	}
}

func (p *wharfProc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitLog waits until the server has logged s.
func (p *wharfProc) waitLog(s string) {
	p.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(p.log.String(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("server did not log %q within 2 minutes:\n%s", s, p.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *wharfProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		p.t.Fatalf("server still running 2 minutes after the signal:\n%s", p.log.String())
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || ws.Signaled() {
		p.t.Fatalf("server did not exit on its own: %v\n%s", p.cmd.ProcessState, p.log.String())
	}
	if strings.Contains(p.log.String(), "WARNING: DATA RACE") {
		p.t.Fatalf("data race in the server:\n%s", p.log.String())
	}
	return ws.ExitStatus()
}

// refused fails unless a TCP connection to addr is refused: the listener
// is closed.
func refused(t *testing.T, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s: a new connection to %s was accepted during shutdown", what, addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%s: connecting to %s during shutdown: %v, want connection refused", what, addr, err)
	}
}
