package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// bodyChunk is how much of a request body is allocated before any of it
// has arrived. Past it the buffer grows with the bytes received (doubling),
// so a size prefix claiming a large request costs the server no more than
// twice what the client has actually sent.
const bodyChunk = 64 << 10

// errIdle ends a connection that stayed idle past ConnectionsMaxIdle.
var errIdle = errors.New("idle connection closed")

// idleState is what the reader needs to tell an idle connection, which it
// closes after ConnectionsMaxIdle, from a stopped one (Shutdown) and from
// one with requests in flight, which is never idle.
type idleState struct {
	mu      sync.Mutex // orders the reader's deadlines against stopReading's
	stopped bool

	inflight atomic.Int64 // requests read and not yet answered
	last     atomic.Int64 // unix ns of the last response written

	// Reader only.
	armed bool  // a deadline is set
	recv  int64 // bytes received since it was set
}

// stopReading makes the reader stop at its next read; requests already read
// are still answered.
func (c *conn) stopReading() {
	c.idle.mu.Lock()
	defer c.idle.mu.Unlock()
	c.idle.stopped = true
	c.nc.SetReadDeadline(time.Now())
}

// armIdle sets the read deadline at which the connection may be idle; it
// reports false once the reader has been stopped. The reader calls it.
func (c *conn) armIdle(at time.Time) bool {
	c.idle.mu.Lock()
	defer c.idle.mu.Unlock()
	if c.idle.stopped {
		return false
	}
	c.nc.SetReadDeadline(at)
	c.idle.armed, c.idle.recv = true, 0
	return true
}

// answered is called by the writer for each request it has finished.
func (c *conn) answered() {
	c.idle.last.Store(time.Now().UnixNano())
	c.idle.inflight.Add(-1)
}

// readRequest reads the next request: its size prefix, checked against
// MaxRequestBytes, and its body.
func (c *conn) readRequest() ([]byte, error) {
	if idle := c.s.opts.ConnectionsMaxIdle; idle > 0 && !c.idle.armed && !c.armIdle(time.Now().Add(idle)) {
		return nil, errStopped
	}
	var size [4]byte
	if err := c.readFull(size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 8 || n > c.s.opts.MaxRequestBytes {
		if n > c.s.opts.MaxRequestBytes {
			c.s.refusals.Warn("request size", "request refused: larger than the maximum request size; closing the connection",
				"remote", c.nc.RemoteAddr().String(), "size", n, "limit", c.s.opts.MaxRequestBytes, "setting", "kafka_max_request_bytes")
		}
		return nil, fmt.Errorf("request size %d outside [8, %d]", n, c.s.opts.MaxRequestBytes)
	}
	body := c.s.bufs.get(min(int(n), bodyChunk))
	got := 0
	for {
		m, err := c.readFullN(body[got:])
		got += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if got == int(n) {
			break
		}
		next := c.s.bufs.get(min(int(n), 2*len(body)))
		copy(next, body)
		c.s.bufs.put(body)
		body = next
	}
	c.idle.inflight.Add(1)
	return body, nil
}

// readFull is io.ReadFull on the connection, through readFullN.
func (c *conn) readFull(b []byte) error {
	_, err := c.readFullN(b)
	return err
}

// readFullN reads len(b) bytes. A read deadline that passes ends it with
// errStopped if the reader was stopped, and with errIdle if the connection
// has been idle for ConnectionsMaxIdle: nothing received since the deadline
// was set, nothing in flight and no response written for that long.
// Otherwise the deadline moves on. The deadline is set once per idle
// period, not per request, so an idle connection is closed between one and
// two periods after its last activity.
func (c *conn) readFullN(b []byte) (int, error) {
	idle := c.s.opts.ConnectionsMaxIdle
	got := 0
	for got < len(b) {
		m, err := io.ReadFull(c.nc, b[got:])
		got += m
		c.idle.recv += int64(m)
		if err == nil {
			break
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return got, err
		}
		c.idle.mu.Lock()
		stopped := c.idle.stopped
		c.idle.mu.Unlock()
		if stopped || idle <= 0 {
			return got, errStopped
		}
		now := time.Now()
		last := time.Unix(0, c.idle.last.Load())
		switch {
		case c.idle.recv > 0 || c.idle.inflight.Load() > 0:
			// Not idle: bytes arrived, or a response is still owed.
			if !c.armIdle(now.Add(idle)) {
				return got, errStopped
			}
		case now.Sub(last) < idle:
			if !c.armIdle(last.Add(idle)) {
				return got, errStopped
			}
		default:
			return got, errIdle
		}
	}
	return got, nil
}
