//go:build unix

package server

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/config"
	"github.com/wharfmq/wharf/internal/logbuf"
)

// The environment of a server child: its data directory and the address of
// its Kafka listener.
const (
	childDirEnv   = "WHARF_SERVER_CHILD_DIR"
	childKafkaEnv = "WHARF_SERVER_CHILD_KAFKA"
	childAMQPEnv  = "WHARF_SERVER_CHILD_AMQP"
	// childBridgeEnv, when set, is one bridge rule: name,topic,exchange
	// (start earliest).
	childBridgeEnv = "WHARF_SERVER_CHILD_BRIDGE"
)

// childSegmentBytes is small so that segments roll during the crash test and
// recovery sees more than one of them per partition.
const childSegmentBytes = 64 << 10

// TestServerChild is a whole server in its own process, for tests that kill
// it. It serves until it is killed, or stops cleanly when its standard input
// is closed (so that it also goes away with its parent).
func TestServerChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of a crash test")
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.KafkaListen = os.Getenv(childKafkaEnv)
	cfg.AMQPListen, cfg.HTTPListen = os.Getenv(childAMQPEnv), ""
	cfg.Storage.SegmentBytes = childSegmentBytes
	if rule := os.Getenv(childBridgeEnv); rule != "" {
		f := strings.Split(rule, ",")
		cfg.Bridges = []config.BridgeConfig{{Name: f[0], Topic: f[1], Exchange: f[2], Start: config.BridgeStartEarliest}}
	}
	// cfg.Storage.Fsync keeps its default, always: an acks=all produce is
	// answered only after the fsync that covers it.
	logger, err := NewLogger(os.Stderr, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	// The parent kills us long before this; the bound only keeps an
	// orphaned child from serving forever.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := Run(ctx, cfg, logger); err != nil {
		t.Fatal(err)
	}
}

// serverChild is a running TestServerChild process.
type serverChild struct {
	t     *testing.T
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   logbuf.Buffer
	done  chan struct{} // closed when the process has exited and been reaped
	err   error         // cmd.Wait's result, once done is closed
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// startServerChild starts a server on dir with its Kafka listener on addr
// and waits until the listener accepts connections. The child is killed
// when the test ends, if it is still running.
func startServerChild(t *testing.T, dir, addr string) *serverChild {
	t.Helper()
	return startServerChildEnv(t, dir, addr, childKafkaEnv+"="+addr)
}

// startServerChildEnv starts a server on dir with the listeners env names
// (childKafkaEnv=..., childAMQPEnv=...) and waits until addr accepts
// connections.
func startServerChildEnv(t *testing.T, dir, addr string, env ...string) *serverChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &serverChild{t: t, addr: addr, done: make(chan struct{})}
	c.cmd = exec.Command(exe, "-test.run=^TestServerChild$", "-test.count=1")
	c.cmd.Env = append(append(os.Environ(), childDirEnv+"="+dir), env...)
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
	c.waitListening()
	return c
}

// waitListening waits until the Kafka listener accepts a connection. The
// listener starts only once the broker has recovered its data.
func (c *serverChild) waitListening() {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := net.DialTimeout("tcp", c.addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-c.done:
			c.t.Fatalf("server exited before listening: %v\n%s", c.err, c.out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			c.t.Fatalf("server not listening on %s after a minute: %v\n%s", c.addr, err, c.out.String())
		}
	}
}

// kill sends SIGKILL and waits for the process to be reaped. It fails the
// test if the process had already exited on its own or if the server
// reported a data race.
func (c *serverChild) kill() {
	c.t.Helper()
	kerr := c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if kerr != nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		c.t.Fatalf("server did not die of SIGKILL (kill: %v, exit: %v); output:\n%s", kerr, c.err, c.out.String())
	}
	c.checkRaces()
}

// stop closes the child's standard input, which shuts the server down
// cleanly, and waits for a successful exit.
func (c *serverChild) stop() {
	c.t.Helper()
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		c.cmd.Process.Kill()
		<-c.done
		c.t.Fatalf("server did not shut down within a minute; output:\n%s", c.out.String())
	}
	if c.err != nil {
		c.t.Fatalf("server shutdown: %v; output:\n%s", c.err, c.out.String())
	}
	c.checkRaces()
}

// checkRaces fails the test if the race detector reported a race in the
// child: a killed child never gets to fail its own test for it.
func (c *serverChild) checkRaces() {
	c.t.Helper()
	if out := c.out.String(); strings.Contains(out, "WARNING: DATA RACE") {
		c.t.Fatalf("data race in the server:\n%s", out)
	}
}
