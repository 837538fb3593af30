package limits

import "sync"

// Gate counts the open connections of one listener against a maximum.
type Gate struct {
	max int
	mu  sync.Mutex
	n   int
}

// NewGate returns a gate admitting at most max holders at once; zero or
// less means no limit.
func NewGate(max int) *Gate {
	return &Gate{max: max}
}

// Max is the gate's maximum; zero means none.
func (g *Gate) Max() int {
	if g == nil || g.max < 0 {
		return 0
	}
	return g.max
}

// Acquire takes a slot. It returns ok false, and takes nothing, when the
// gate is full; otherwise release gives the slot back (once, however often
// it is called).
func (g *Gate) Acquire() (release func(), ok bool) {
	if g == nil {
		return func() {}, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.max > 0 && g.n >= g.max {
		return nil, false
	}
	g.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.n--
			g.mu.Unlock()
		})
	}, true
}

// Count is the number of slots taken.
func (g *Gate) Count() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}
