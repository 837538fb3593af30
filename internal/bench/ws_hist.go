package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// wsHist is a latency histogram in microseconds that many goroutines
// record into at once: log-linear buckets (exact below 1,024 µs, then 512
// buckets per power of two, under 0.2% apart), sharded so that receivers
// on different cores rarely touch the same cache lines. Keeping every
// sample instead would take gigabytes at millions of deliveries.
type wsHist struct {
	shards [wsHistShards]wsHistShard
	max    atomic.Int64 // µs
}

const (
	wsHistShards  = 8
	wsHistBuckets = 32 * 512 // up to 2^41 µs, far beyond any run
)

type wsHistShard struct {
	b [wsHistBuckets]atomic.Int64
	_ [64]byte
}

// wsBucket maps a value in µs to its bucket.
func wsBucket(us int64) int {
	if us < 1024 {
		return int(max(us, 0))
	}
	shift := bits.Len64(uint64(us)) - 10
	i := shift*512 + int(us>>shift)
	return min(i, wsHistBuckets-1)
}

// wsBucketValue is the smallest value in µs of bucket i.
func wsBucketValue(i int) int64 {
	if i < 1024 {
		return int64(i)
	}
	shift := i/512 - 1
	return int64(i-shift*512) << shift
}

// record adds one latency; shard is any number (a connection's index).
func (h *wsHist) record(shard int, d time.Duration) {
	us := d.Microseconds()
	h.shards[shard%wsHistShards].b[wsBucket(us)].Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// percentiles returns the count and, in ms, the median, the 99th
// percentile (the sample at index n*99/100 of the sorted samples, as the
// other generators report it) and the maximum.
func (h *wsHist) percentiles() (n int64, p50, p99, maxMs float64) {
	counts := make([]int64, wsHistBuckets)
	for s := range h.shards {
		for i := range counts {
			counts[i] += h.shards[s].b[i].Load()
		}
	}
	for _, c := range counts {
		n += c
	}
	if n == 0 {
		return 0, 0, 0, 0
	}
	at := func(rank int64) float64 {
		var cum int64
		for i, c := range counts {
			cum += c
			if cum > rank {
				return float64(wsBucketValue(i)) / 1000
			}
		}
		return float64(h.max.Load()) / 1000
	}
	return n, at(n / 2), at(n * 99 / 100), float64(h.max.Load()) / 1000
}
