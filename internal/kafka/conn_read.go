package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/wharfmq/wharf/internal/drain"
)

// bodyChunk is how much of a request body is allocated before any of it
// has arrived. Past it the buffer grows with the bytes received (doubling),
// so a size prefix claiming a large request costs the server no more than
// twice what the client has actually sent.
const bodyChunk = 64 << 10

// errIdle ends a connection that stayed idle past ConnectionsMaxIdle.
var errIdle = errors.New("idle connection closed")

// idleState is what the reader needs to tell an idle connection, which it
// closes after ConnectionsMaxIdle, from one with requests in flight, which
// is never idle. Its deadlines go through the drain.Reader, which ignores
// them once the server stops reading (stopReading).
type idleState struct {
	inflight atomic.Int64 // requests read and not yet answered
	last     atomic.Int64 // unix ns of the last response written

	// Reader only.
	armed bool  // a deadline is set
	recv  int64 // bytes received since it was set
}

// armIdle sets the read deadline at which the connection may be idle; it
// reports false once the server stops reading. The reader calls it.
func (c *conn) armIdle(at time.Time) bool {
	if !c.rd.SetReadDeadline(at) {
		return false
	}
	c.idle.armed, c.idle.recv = true, 0
	return true
}

// answered is called by the writer for each request it has finished.
func (c *conn) answered() {
	c.idle.last.Store(time.Now().UnixNano())
	c.idle.inflight.Add(-1)
}

// readRequest reads the next request: its size prefix, checked against
// MaxRequestBytes, and its body. Once the server stops reading it reads
// only what the client had sent (drain.Reader) and then fails with
// errStopped.
func (c *conn) readRequest() ([]byte, error) {
	if idle := c.s.opts.ConnectionsMaxIdle; idle > 0 && !c.idle.armed {
		c.armIdle(time.Now().Add(idle))
	}
	var size [4]byte
	if _, err := c.readFull(size[:], true); err != nil {
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
		m, err := c.readFull(body[got:], false)
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

// readFull reads len(b) bytes; boundary says a request starts with them.
//
// Once the server stops reading, the drain.Reader ends the reads: with
// ErrDrained at a boundary when what the client had sent is read, with a
// timeout inside a request whose rest did not come in its grace period;
// both are errStopped, and the requests read before are still answered.
//
// Before that, a read deadline that passes is the idle timer's: the
// connection is idle, and readFull fails with errIdle, if nothing was
// received since the deadline was set, no request is in flight and no
// response was written for ConnectionsMaxIdle. Otherwise the deadline
// moves on. It is set once per idle period, not per request, so an idle
// connection is closed between one and two periods after its last
// activity.
func (c *conn) readFull(b []byte, boundary bool) (int, error) {
	idle := c.s.opts.ConnectionsMaxIdle
	got := 0
	for got < len(b) {
		if boundary && got == 0 {
			c.rd.AtBoundary()
		}
		m, err := io.ReadFull(c.rd, b[got:])
		got += m
		c.idle.recv += int64(m)
		if err == nil {
			break
		}
		if errors.Is(err, drain.ErrDrained) {
			return got, errStopped
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return got, err
		}
		if c.rd.Stopping() || idle <= 0 {
			return got, errStopped // the rest of a request never came
		}
		now := time.Now()
		last := time.Unix(0, c.idle.last.Load())
		switch {
		case c.idle.recv > 0 || c.idle.inflight.Load() > 0:
			// Not idle: bytes arrived, or a response is still owed.
			c.armIdle(now.Add(idle))
		case now.Sub(last) < idle:
			c.armIdle(last.Add(idle))
		default:
			return got, errIdle
		}
		// A false armIdle means the server has just stopped reading: the
		// next read drains what the client had sent.
	}
	return got, nil
}
