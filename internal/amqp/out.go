package amqp

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// Outbound flow: every frame a connection sends is appended to its outbox
// under a short lock, by whichever goroutine produces it (the reader
// answering a method, a queue delivering, the confirmer); one writer
// goroutine swaps the buffer out and writes it, so many frames leave in one
// system call under load. A consumer whose connection has more than
// outboxHigh bytes waiting is busy: its queues skip it until the writer
// brings the backlog under outboxLow and kicks them.
const (
	outboxHigh = 2 << 20
	outboxLow  = 512 << 10
	// keepBuffer is the largest buffer kept for reuse after a write.
	keepBuffer = 4 << 20
)

var errConnClosed = errors.New("amqp: connection closed")

type outbox struct {
	mu      sync.Mutex
	buf     []byte
	dead    bool
	pending atomic.Int64  // bytes appended and not yet written
	writes  atomic.Uint64 // socket writes done, for heartbeats
	wake    chan struct{} // capacity 1
}

// append runs fill on the outbox buffer and wakes the writer. A fill error
// leaves the buffer as it was.
func (c *conn) append(fill func([]byte) ([]byte, error)) error {
	o := &c.out
	o.mu.Lock()
	if o.dead {
		o.mu.Unlock()
		return errConnClosed
	}
	n := len(o.buf)
	b, err := fill(o.buf)
	if err != nil {
		o.buf = b[:n]
		o.mu.Unlock()
		return err
	}
	o.buf = b
	o.pending.Add(int64(len(b) - n))
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// sendMethod queues a method without content.
func (c *conn) sendMethod(channel uint16, m wire.Method) error {
	return c.append(func(b []byte) ([]byte, error) {
		return wire.AppendMethodFrame(b, channel, m, c.frameMax)
	})
}

// sendMessage queues a method with content whose properties are encoded.
func (c *conn) sendMessage(channel uint16, m wire.Method, rawProps, body []byte) error {
	return c.append(func(b []byte) ([]byte, error) {
		return wire.AppendMessageRaw(b, channel, m, rawProps, body, c.frameMax)
	})
}

// busy reports a backlog large enough that consumers should wait.
func (c *conn) busy() bool {
	if c.out.pending.Load() > outboxHigh {
		c.throttled.Store(true)
		// The writer may have drained the outbox between the load above
		// and the store, and so not have seen the flag: it would never
		// kick this consumer. Look again now that the flag is set.
		return c.out.pending.Load() > outboxHigh
	}
	return false
}

// waitOutbox is the reader's backpressure: while more than outboxHigh
// bytes wait to be sent, it reads nothing more, so a client that sends
// requests without reading the answers is slowed by TCP instead of growing
// the server's memory. It returns false if the connection ended meanwhile.
func (c *conn) waitOutbox() bool {
	for c.out.pending.Load() > outboxHigh {
		c.readerWaiting.Store(true)
		// Check again after announcing the wait: either the writer sees the
		// flag, or this sees the drained outbox.
		if c.out.pending.Load() <= outboxLow {
			c.readerWaiting.Store(false)
			return true
		}
		select {
		case <-c.drained:
		case <-c.writerDone:
			return false
		}
	}
	return true
}

// writeLoop writes the outbox until quit is closed and the outbox is empty,
// or a write fails.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	o := &c.out
	var spare []byte
	quitting := false
	for {
		if !quitting {
			select {
			case <-o.wake:
			case <-c.quit:
				quitting = true
			}
		}
		o.mu.Lock()
		buf := o.buf
		o.buf = spare[:0]
		o.mu.Unlock()
		if len(buf) == 0 {
			spare = buf
			if quitting {
				return
			}
			continue
		}
		if quitting {
			c.nc.SetWriteDeadline(time.Now().Add(closeGrace))
		}
		_, err := c.nc.Write(buf)
		o.pending.Add(-int64(len(buf)))
		o.writes.Add(1)
		if cap(buf) <= keepBuffer {
			spare = buf[:0]
		} else {
			spare = nil
		}
		if err != nil {
			o.mu.Lock()
			o.dead = true
			o.buf = nil
			o.mu.Unlock()
			c.nc.Close() // the reader sees it and tears down
			return
		}
		if o.pending.Load() < outboxLow {
			if c.readerWaiting.CompareAndSwap(true, false) {
				select {
				case c.drained <- struct{}{}:
				default:
				}
			}
			if c.throttled.Load() {
				c.throttled.Store(false)
				c.kickConsumers()
			}
		}
	}
}

// heartbeatLoop sends a heartbeat after half an interval without writes,
// and closes the connection after two intervals without anything read.
func (c *conn) heartbeatLoop(interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	lastReads, lastWrites := c.reads.Load(), c.out.writes.Load()
	silent := 0
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		if w := c.out.writes.Load(); w == lastWrites && c.out.pending.Load() == 0 {
			c.append(func(b []byte) ([]byte, error) { return wire.AppendHeartbeat(b), nil })
		}
		lastWrites = c.out.writes.Load()
		if c.readerBlocked.Load() {
			// Blocked by a resource alarm: the client's heartbeats wait
			// unread in the socket.
			lastReads, silent = c.reads.Load(), 0
			continue
		}
		if r := c.reads.Load(); r != lastReads {
			lastReads, silent = r, 0
			continue
		}
		silent++
		if silent >= 4 { // two intervals, ticking every half
			c.logger.Warn("missed heartbeats from client; closing", "timeout", 2*interval)
			c.missedHeartbeats.Store(true)
			c.nc.Close()
			return
		}
	}
}
