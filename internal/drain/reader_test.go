//go:build linux

package drain

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns the two ends of a loopback TCP connection: the server's
// (to wrap in a Reader) and the client's.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// waitBuffered waits until the kernel holds n unread bytes for c.
func waitBuffered(t *testing.T, c net.Conn, n int) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var got int
		var ierr error
		if err := rc.Control(func(fd uintptr) { got, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
			t.Fatal(err)
		}
		if ierr != nil {
			t.Fatal(ierr)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes buffered after a minute, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// readMsg reads one message of len(p) bytes as a decoder would.
func readMsg(r *Reader, p []byte) error {
	r.AtBoundary()
	_, err := io.ReadFull(r, p)
	return err
}

func TestStopReadsWhatHasArrivedThenDrains(t *testing.T) {
	server, client := pair(t)
	r := NewReader(server, time.Minute)
	if _, err := client.Write([]byte("one.two.")); err != nil {
		t.Fatal(err)
	}
	waitBuffered(t, server, 8)
	r.Stop()
	if !r.Stopping() {
		t.Fatal("Stopping() = false after Stop")
	}
	for _, want := range []string{"one.", "two."} {
		buf := make([]byte, 4)
		if err := readMsg(r, buf); err != nil || string(buf) != want {
			t.Fatalf("read %q, %v; want %q", buf, err, want)
		}
	}
	buf := make([]byte, 4)
	if err := readMsg(r, buf); !errors.Is(err, ErrDrained) {
		t.Fatalf("read after the buffered messages: %v, want ErrDrained", err)
	}
}

func TestStopInterruptsABlockedRead(t *testing.T) {
	server, _ := pair(t)
	r := NewReader(server, time.Minute)
	errc := make(chan error, 1)
	go func() { errc <- readMsg(r, make([]byte, 4)) }()
	// Whether Stop lands before or during the read, the read ends with
	// ErrDrained and does not wait for the client.
	r.Stop()
	if err := <-errc; !errors.Is(err, ErrDrained) {
		t.Fatalf("blocked read after Stop: %v, want ErrDrained", err)
	}
}

func TestStopWaitsForTheRestOfAMessage(t *testing.T) {
	server, client := pair(t)
	r := NewReader(server, time.Minute)
	if _, err := client.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	waitBuffered(t, server, 2)
	errc := make(chan error, 1)
	buf := make([]byte, 4)
	go func() { errc <- readMsg(r, buf) }()
	r.Stop()
	if _, err := client.Write([]byte("cd")); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil || string(buf) != "abcd" {
		t.Fatalf("read %q, %v; want abcd", buf, err)
	}
}

func TestStopGivesUpOnAnUnfinishedMessage(t *testing.T) {
	server, client := pair(t)
	r := NewReader(server, 20*time.Millisecond)
	if _, err := client.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	waitBuffered(t, server, 2)
	r.Stop()
	err := readMsg(r, make([]byte, 4))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("unfinished message after Stop: %v, want a timeout", err)
	}
}

func TestFinishReadsBlockingAgain(t *testing.T) {
	server, client := pair(t)
	r := NewReader(server, time.Minute)
	r.Stop()
	if err := readMsg(r, make([]byte, 1)); !errors.Is(err, ErrDrained) {
		t.Fatalf("read after Stop: %v, want ErrDrained", err)
	}
	r.Finish(time.Now().Add(time.Minute))
	if r.Stopping() {
		t.Fatal("Stopping() = true after Finish")
	}
	errc := make(chan error, 1)
	buf := make([]byte, 5)
	go func() { errc <- readMsg(r, buf) }()
	if _, err := client.Write([]byte("close")); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil || string(buf) != "close" {
		t.Fatalf("read after Finish %q, %v; want close", buf, err)
	}
	r.Stop() // no effect once finishing
	if r.Stopping() {
		t.Fatal("Stop after Finish put the reader back to draining")
	}
}

func TestClosedClientAfterStop(t *testing.T) {
	server, client := pair(t)
	r := NewReader(server, time.Minute)
	client.Close()
	r.Stop()
	// Whether or not the client's FIN has arrived, the read ends at once.
	if err := readMsg(r, make([]byte, 4)); !errors.Is(err, ErrDrained) && !errors.Is(err, io.EOF) {
		t.Fatalf("read of a closed connection after Stop: %v, want ErrDrained or EOF", err)
	}
}

// What arrives after Stop is not read, save the rest of a message begun
// before it.
func TestStopEndsAtWhatHadArrived(t *testing.T) {
	server, client := pair(t)
	r := NewReader(server, time.Minute)
	if _, err := client.Write([]byte("one.tw")); err != nil {
		t.Fatal(err)
	}
	waitBuffered(t, server, 6)
	r.Stop()
	if _, err := client.Write([]byte("o.three.")); err != nil {
		t.Fatal(err)
	}
	waitBuffered(t, server, 14)
	for _, want := range []string{"one.", "two."} {
		buf := make([]byte, 4)
		if err := readMsg(r, buf); err != nil || string(buf) != want {
			t.Fatalf("read %q, %v; want %q", buf, err, want)
		}
	}
	if err := readMsg(r, make([]byte, 6)); !errors.Is(err, ErrDrained) {
		t.Fatalf("read of a message sent after Stop: %v, want ErrDrained", err)
	}
}

// TestSetReadDeadlineBeforeStopOnly checks the protocol's own deadline: it
// interrupts a plain read with a timeout; once Stop has been called it is
// refused, so it cannot take the place of Stop's interrupt, and the Reader
// still drains what the client had sent.
func TestSetReadDeadlineBeforeStopOnly(t *testing.T) {
	server, client := pair(t)
	r := NewReader(server, time.Minute)
	if !r.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) {
		t.Fatal("SetReadDeadline refused before Stop")
	}
	var ne net.Error
	if err := readMsg(r, make([]byte, 4)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if _, err := client.Write([]byte("abcd")); err != nil {
		t.Fatal(err)
	}
	waitBuffered(t, server, 4)
	r.Stop()
	if r.SetReadDeadline(time.Now().Add(time.Hour)) {
		t.Fatal("SetReadDeadline accepted after Stop")
	}
	p := make([]byte, 4)
	if err := readMsg(r, p); err != nil || string(p) != "abcd" {
		t.Fatalf("read after Stop: %q, %v", p, err)
	}
	if err := readMsg(r, p); !errors.Is(err, ErrDrained) {
		t.Fatalf("read once drained: %v, want ErrDrained", err)
	}
}
