package limits

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultLogInterval is how often a LogSampler writes each kind of line
// when none is given.
const DefaultLogInterval = 10 * time.Second

// LogSampler writes refusals to a logger at warn level, at most one line
// per key per interval. The first refusal of a key is written at once;
// later ones within the interval are counted, and the next line written
// for the key carries that count as "suppressed". Keys name kinds of
// refusal (a small fixed set), not clients.
type LogSampler struct {
	logger *slog.Logger
	every  time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*sampled
}

type sampled struct {
	last       time.Time
	suppressed int
}

// NewLogSampler returns a sampler writing to logger (nil discards) at
// most once per key per every (zero or less means DefaultLogInterval).
// now is the clock; nil means time.Now.
func NewLogSampler(logger *slog.Logger, every time.Duration, now func() time.Time) *LogSampler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = DefaultLogInterval
	}
	if now == nil {
		now = time.Now
	}
	return &LogSampler{logger: logger, every: every, now: now, keys: map[string]*sampled{}}
}

// Warn writes msg with args at warn level unless a line of key was written
// less than an interval ago; it reports whether it wrote. A nil sampler
// writes nothing.
func (s *LogSampler) Warn(key, msg string, args ...any) bool {
	if s == nil {
		return false
	}
	now := s.now()
	s.mu.Lock()
	k := s.keys[key]
	if k == nil {
		k = &sampled{}
		s.keys[key] = k
	} else if now.Sub(k.last) < s.every {
		k.suppressed++
		s.mu.Unlock()
		return false
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	s.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.logger.Log(context.Background(), slog.LevelWarn, msg, args...)
	return true
}
