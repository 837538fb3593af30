package auth

import (
	"net"
	"sync"
	"time"
)

// Failed logins are limited per source address: after MaxFailures failed
// attempts from one address within Window, every login from it is refused
// without looking at its credentials until the window that began with its
// first failure ends. A password guesser is slowed to MaxFailures tries per
// Window; other addresses are not affected. A success does not reset the
// count: it would let a guesser with one valid account keep going.

// ErrTooManyFailures is returned while an address is refused for failing
// too often. It wraps ErrInvalidCredentials: callers answer it as any
// failed login.
var ErrTooManyFailures = tooMany{}

type tooMany struct{}

func (tooMany) Error() string        { return "too many failed logins from this address; try again later" }
func (tooMany) Is(target error) bool { return target == ErrInvalidCredentials }

// Default login limits.
const (
	DefaultMaxLoginFailures = 20
	DefaultLoginWindow      = time.Minute
)

// loginGuard counts failed logins per address.
type loginGuard struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	byAddr map[string]*failures
}

type failures struct {
	first time.Time
	count int
}

func newLoginGuard() *loginGuard {
	return &loginGuard{max: DefaultMaxLoginFailures, window: DefaultLoginWindow, now: time.Now, byAddr: map[string]*failures{}}
}

// SetLoginLimit sets how many failed logins an address may make in a
// window before it is refused until the window ends; max 0 turns the limit
// off. now is the clock (nil: time.Now).
func (s *Store) SetLoginLimit(max int, window time.Duration, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	g := s.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	g.max, g.window, g.now = max, window, now
	clear(g.byAddr)
}

// addrKey is the part of an address that identifies its source: the IP.
func addrKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// refused reports whether logins from a are refused now.
func (g *loginGuard) refused(a net.Addr) bool {
	key := addrKey(a)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.max <= 0 {
		return false
	}
	f, ok := g.byAddr[key]
	if !ok {
		return false
	}
	if g.now().Sub(f.first) >= g.window {
		delete(g.byAddr, key)
		return false
	}
	return f.count >= g.max
}

// failed records a failed login from a.
func (g *loginGuard) failed(a net.Addr) {
	key := addrKey(a)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.max <= 0 {
		return
	}
	now := g.now()
	f, ok := g.byAddr[key]
	if !ok || now.Sub(f.first) >= g.window {
		if len(g.byAddr) >= maxTrackedAddrs {
			g.sweepLocked(now)
		}
		g.byAddr[key] = &failures{first: now, count: 1}
		return
	}
	f.count++
}

// maxTrackedAddrs bounds the addresses remembered; past it, expired
// entries are dropped, and if none has expired the oldest goes.
const maxTrackedAddrs = 100_000

func (g *loginGuard) sweepLocked(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, f := range g.byAddr {
		if now.Sub(f.first) >= g.window {
			delete(g.byAddr, k)
			continue
		}
		if oldestKey == "" || f.first.Before(oldest) {
			oldestKey, oldest = k, f.first
		}
	}
	if len(g.byAddr) >= maxTrackedAddrs {
		delete(g.byAddr, oldestKey)
	}
}
