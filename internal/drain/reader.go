package drain

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrDrained is returned by a read at a message boundary after Stop once
// everything the client had sent before Stop has been read.
var ErrDrained = errors.New("drain: everything the client sent before the stop has been read")

// Reader states.
const (
	reading   = iota // plain reads
	draining         // after Stop: only what has arrived
	finishing        // after Finish: plain reads up to a deadline
)

// Reader reads a client connection for a protocol server; see the package
// documentation.
type Reader struct {
	nc    net.Conn
	grace time.Duration

	mu       sync.Mutex // held by Stop and Finish and around deadlines set after Stop
	state    atomic.Int32
	boundary bool      // owned by the reading goroutine: the next Read starts a message
	graceEnd time.Time // owned by the reading goroutine: zero until a message is being finished
	// budget is what the kernel held for the connection when Stop was
	// called, less what has been read since; negative when unknown (read
	// what is there). Written by Stop before the state changes, then owned
	// by the reading goroutine.
	budget int64
}

// NewReader returns a Reader of nc. grace bounds how long, after Stop, a
// message already begun may take to arrive in full.
func NewReader(nc net.Conn, grace time.Duration) *Reader {
	return &Reader{nc: nc, grace: grace}
}

// AtBoundary tells the Reader that its next Read starts a new message (the
// decoder holds no buffered bytes of one). Call it from the reading
// goroutine only.
func (r *Reader) AtBoundary() { r.boundary = true }

// Stopping reports whether Stop has been called (and Finish has not).
func (r *Reader) Stopping() bool { return r.state.Load() == draining }

// Stop makes reads take only what the client has already sent, and
// interrupts a read that is blocked. It does nothing after Finish. Where
// the kernel tells how much it holds for the connection (Linux), that is
// the end: what arrives after Stop is not read, save the rest of a message
// already begun; elsewhere whatever has arrived when a boundary is reached
// is read.
func (r *Reader) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.Load() != reading {
		return
	}
	r.budget = -1
	if n, ok := buffered(r.nc); ok {
		r.budget = int64(n)
	}
	r.state.Store(draining)
	_ = r.nc.SetReadDeadline(time.Now())
}

// Finish makes reads plain blocking reads again, failing after deadline:
// for a closing handshake once the input has been drained, or instead of
// draining when the connection is closing anyway.
func (r *Reader) Finish(deadline time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state.Store(finishing)
	_ = r.nc.SetReadDeadline(deadline)
}

// SetReadDeadline sets the connection's read deadline for the protocol's
// own use, such as an idle timeout, while the Reader reads plainly; a read
// it interrupts returns the timeout to the caller. Once Stop or Finish has
// been called it sets nothing and reports false: their deadlines rule.
// Under mu, so it cannot override Stop's interrupt.
func (r *Reader) SetReadDeadline(t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.Load() != reading {
		return false
	}
	_ = r.nc.SetReadDeadline(t)
	return true
}

// Read reads from the connection as the Reader's state says.
func (r *Reader) Read(p []byte) (int, error) {
	boundary := r.boundary
	r.boundary = false
	for {
		if r.state.Load() == draining {
			return r.drainRead(p, boundary)
		}
		n, err := r.nc.Read(p)
		if n == 0 && isTimeout(err) && r.state.Load() == draining {
			continue // Stop interrupted the read: take what has arrived
		}
		return n, err
	}
}

// drainRead is a read after Stop. Each message gets one grace period to
// arrive in full, counted from the first read inside it after Stop.
func (r *Reader) drainRead(p []byte, boundary bool) (int, error) {
	if boundary {
		r.graceEnd = time.Time{}
		if r.budget == 0 {
			return 0, ErrDrained
		}
		if r.budget > 0 && int64(len(p)) > r.budget {
			p = p[:r.budget]
		}
		// Clear Stop's interrupt so the raw read below runs; under mu, so
		// the interrupt cannot come after this.
		r.mu.Lock()
		_ = r.nc.SetReadDeadline(time.Time{})
		r.mu.Unlock()
		n, err := readNow(r.nc, p)
		if n == 0 && errors.Is(err, errWouldBlock) {
			return 0, ErrDrained
		}
		r.spend(n)
		return n, err
	}
	// Inside a message: its rest may still be on its way.
	if r.graceEnd.IsZero() {
		r.graceEnd = time.Now().Add(r.grace)
	}
	for {
		r.mu.Lock()
		_ = r.nc.SetReadDeadline(r.graceEnd)
		r.mu.Unlock()
		n, err := r.nc.Read(p)
		if n == 0 && isTimeout(err) && time.Now().Before(r.graceEnd) {
			continue // another deadline cut in; the grace is not over
		}
		r.spend(n)
		return n, err
	}
}

// spend counts n bytes read against the budget; the rest of a message
// begun before Stop may go past it.
func (r *Reader) spend(n int) {
	if r.budget > 0 {
		r.budget = max(0, r.budget-int64(n))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
