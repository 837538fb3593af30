package kafka

import (
	"math/bits"
	"sync"
)

// bufPool recycles byte buffers in power-of-two size classes, from 4 KiB to
// 64 MiB: the buffers of fetched records and of produce request bodies,
// which would otherwise make the garbage collector the busiest part of
// the server.
type bufPool struct {
	classes [15]sync.Pool // class i holds buffers of capacity 4 KiB << i
}

const minPoolShift = 12

func poolClass(n int) int {
	if n <= 1<<minPoolShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minPoolShift
}

// get returns a buffer of length n.
func (p *bufPool) get(n int) []byte {
	c := poolClass(n)
	if c >= len(p.classes) {
		return make([]byte, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(minPoolShift+c))
}

// put recycles a buffer from get. Its contents must no longer be in use.
func (p *bufPool) put(b []byte) {
	c := poolClass(cap(b))
	if c >= len(p.classes) || cap(b) != 1<<(minPoolShift+c) {
		return
	}
	b = b[:0]
	p.classes[c].Put(&b)
}
