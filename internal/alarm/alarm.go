package alarm

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Resource is what an alarm watches.
type Resource uint8

const (
	// Disk is free space on the data directory's filesystem.
	Disk Resource = 1 << iota
	// Memory is the process's memory.
	Memory
)

// String is the resource's name in logs and metrics.
func (r Resource) String() string {
	switch r {
	case Disk:
		return "disk"
	case Memory:
		return "memory"
	}
	return fmt.Sprintf("Resource(%d)", uint8(r))
}

// Resources lists every resource, in the order reasons name them.
var Resources = []Resource{Memory, Disk}

// Set is the set of alarms that are on.
type Set uint8

// Has reports whether r's alarm is on.
func (s Set) Has(r Resource) bool { return s&Set(r) != 0 }

// Any reports whether any alarm is on.
func (s Set) Any() bool { return s != 0 }

// Reason says what the alarms are in RabbitMQ's words, as
// connection.blocked carries them: "low on memory", "low on disk", or both
// joined by " & "; "" when none is on.
func (s Set) Reason() string {
	var parts []string
	for _, r := range Resources {
		if s.Has(r) {
			parts = append(parts, "low on "+r.String())
		}
	}
	return strings.Join(parts, " & ")
}

// errUnsupported is what the default measurements return where they do
// not exist.
var errUnsupported = errors.New("not measured on this operating system")

// Errors of the alarms, for adapters to map to their protocols.
var (
	ErrDisk   = errors.New("disk alarm: free disk space is below the limit; publishing is refused until it is back")
	ErrMemory = errors.New("memory alarm: memory use is above the high watermark; publishing is held back until it is under")
)

// Err is the error of the alarms in s (both joined when both are on), or
// nil.
func (s Set) Err() error {
	var errs []error
	if s.Has(Disk) {
		errs = append(errs, ErrDisk)
	}
	if s.Has(Memory) {
		errs = append(errs, ErrMemory)
	}
	return errors.Join(errs...)
}

// Defaults.
const (
	// DefaultDiskFreeLimit is RabbitMQ's default disk_free_limit: 50 MB.
	DefaultDiskFreeLimit = 50_000_000
	// DefaultMemoryFraction is the share of the machine's (or the
	// cgroup's) memory that is the watermark when none is given:
	// RabbitMQ's default vm_memory_high_watermark.
	DefaultMemoryFraction = 0.4
	// ClearFraction is how far under the memory watermark use must fall
	// for the memory alarm to clear.
	ClearFraction = 0.9
	// DefaultInterval is how often the resources are checked.
	DefaultInterval = time.Second
)

// Options configure a Monitor.
type Options struct {
	// Dir is a directory on the filesystem whose free space is watched.
	Dir string
	// DiskFreeLimit sets the disk alarm while free space is below it, in
	// bytes; zero or negative disables the disk alarm.
	DiskFreeLimit int64
	// MemoryHighWatermark sets the memory alarm while memory use is at
	// or above it, in bytes. Zero means DefaultMemoryFraction of the
	// machine's or cgroup's memory; negative disables the memory alarm.
	MemoryHighWatermark int64
	// Interval is how often the periodic check runs; zero means
	// DefaultInterval.
	Interval time.Duration
	// DiskFree returns the bytes available to the process on dir's
	// filesystem; nil means statfs.
	DiskFree func(dir string) (uint64, error)
	// MemoryInUse returns the process's memory use in bytes; nil means the
	// Go runtime's own account (see RuntimeMemoryInUse).
	MemoryInUse func() uint64
	// TotalMemory returns the memory available to the process, for the
	// default watermark; nil means the cgroup limit or the machine's RAM.
	TotalMemory func() (uint64, error)
	// Logger receives the alarm logs; nil discards them.
	Logger *slog.Logger
}

// Stats are the last measurements and their limits; a limit of zero
// means that alarm is disabled.
type Stats struct {
	DiskFree            uint64
	DiskFreeLimit       uint64
	MemoryInUse         uint64
	MemoryHighWatermark uint64
}

// Monitor checks the resources and keeps the alarm set. It is safe for
// concurrent use.
type Monitor struct {
	logger    *slog.Logger
	dir       string
	interval  time.Duration
	diskLimit uint64 // 0: disabled
	memLimit  uint64 // 0: disabled
	diskFree  func(string) (uint64, error)
	memInUse  func() uint64
	gc        func() // collects garbage before a high memory reading is trusted; nil with a MemoryInUse seam

	checkMu    sync.Mutex // one check at a time, so changes are seen in order
	diskFailed bool       // the last disk measurement failed (logged once); under checkMu

	current atomic.Uint32 // the set, for readers on hot paths; written under mu

	mu      sync.Mutex
	set     Set
	changed chan struct{}
	stats   Stats
	subs    []subscriber
	nextSub int

	startOnce, closeOnce sync.Once
	stop, done           chan struct{}
}

type subscriber struct {
	id int
	fn func(Set)
}

// New returns a Monitor with every alarm clear; Start begins the checks.
func New(opts Options) *Monitor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	defaultDisk := opts.DiskFree == nil
	if defaultDisk {
		opts.DiskFree = statfsFree
	}
	var gc func()
	if opts.MemoryInUse == nil {
		opts.MemoryInUse, gc = RuntimeMemoryInUse, runtime.GC
	}
	if opts.TotalMemory == nil {
		opts.TotalMemory = totalMemory
	}
	m := &Monitor{
		logger: opts.Logger.With("component", "alarms"), dir: opts.Dir, interval: opts.Interval,
		diskFree: opts.DiskFree, memInUse: opts.MemoryInUse, gc: gc,
		changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if opts.DiskFreeLimit > 0 {
		m.diskLimit = uint64(opts.DiskFreeLimit)
		if _, err := opts.DiskFree(opts.Dir); defaultDisk && errors.Is(err, errUnsupported) {
			m.logger.Warn("disk alarm disabled: free space is not measured on this system", "err", err)
			m.diskLimit = 0
		}
	}
	switch {
	case opts.MemoryHighWatermark > 0:
		m.memLimit = uint64(opts.MemoryHighWatermark)
	case opts.MemoryHighWatermark == 0:
		total, err := opts.TotalMemory()
		if err != nil || total == 0 {
			m.logger.Warn("memory alarm disabled: the memory available to the process is unknown; set a watermark in bytes to enable it", "err", err)
			break
		}
		m.memLimit = uint64(float64(total) * DefaultMemoryFraction)
	}
	m.stats.DiskFreeLimit, m.stats.MemoryHighWatermark = m.diskLimit, m.memLimit
	return m
}

// Start checks the resources once, then every interval until Close. It is
// safe to call more than once.
func (m *Monitor) Start() {
	m.startOnce.Do(func() {
		m.logger.Info("resource alarms", "dir", m.dir, "disk_free_limit_bytes", m.diskLimit,
			"memory_high_watermark_bytes", m.memLimit, "interval", m.interval)
		m.Check()
		go m.loop()
	})
}

func (m *Monitor) loop() {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Check()
		}
	}
}

// Close stops the periodic checks. It is safe to call more than once, and
// without Start.
func (m *Monitor) Close() {
	m.closeOnce.Do(func() {
		close(m.stop)
		started := true
		m.startOnce.Do(func() { started = false })
		if started {
			<-m.done
		}
	})
}

// Check measures the resources now and updates the alarms.
func (m *Monitor) Check() {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	m.mu.Lock()
	set, stats := m.set, m.stats
	m.mu.Unlock()

	if m.diskLimit > 0 {
		free, err := m.diskFree(m.dir)
		if err != nil {
			if !m.diskFailed {
				m.logger.Warn("measuring free disk space failed; the disk alarm stays as it is until a measurement succeeds", "dir", m.dir, "err", err)
			}
			m.diskFailed = true
		} else {
			m.diskFailed = false
			stats.DiskFree = free
			set = update(set, Disk, free < m.diskLimit, free >= m.diskLimit)
		}
	}
	if m.memLimit > 0 {
		used := m.memInUse()
		if m.gc != nil && float64(used) >= float64(m.memLimit)*ClearFraction {
			// Dead objects count until a collection: without one, an
			// idle server could stay over the line (and publishers
			// blocked) until the runtime's next periodic GC.
			m.gc()
			used = m.memInUse()
		}
		stats.MemoryInUse = used
		set = update(set, Memory, used >= m.memLimit, float64(used) < float64(m.memLimit)*ClearFraction)
	}

	m.mu.Lock()
	old := m.set
	m.set, m.stats = set, stats
	m.current.Store(uint32(set))
	var subs []subscriber
	if set != old {
		close(m.changed)
		m.changed = make(chan struct{})
		subs = append(subs, m.subs...)
	}
	m.mu.Unlock()
	if set == old {
		return
	}
	m.logChange(old, set, stats)
	for _, s := range subs {
		s.fn(set)
	}
}

// update sets or clears r's alarm in s.
func update(s Set, r Resource, set, clear bool) Set {
	switch {
	case set:
		return s | Set(r)
	case clear:
		return s &^ Set(r)
	}
	return s
}

func (m *Monitor) logChange(old, now Set, st Stats) {
	for _, r := range Resources {
		if old.Has(r) == now.Has(r) {
			continue
		}
		var attrs []any
		switch r {
		case Disk:
			attrs = []any{"free_bytes", st.DiskFree, "limit_bytes", st.DiskFreeLimit}
		case Memory:
			attrs = []any{"in_use_bytes", st.MemoryInUse, "watermark_bytes", st.MemoryHighWatermark}
		}
		if now.Has(r) {
			m.logger.Warn("resource alarm set: publishers are blocked", append([]any{"resource", r.String()}, attrs...)...)
		} else {
			m.logger.Info("resource alarm cleared", append([]any{"resource", r.String()}, attrs...)...)
		}
	}
}

// Alarms returns the alarms that are on. It takes no lock: adapters call
// it for every produce and publish.
func (m *Monitor) Alarms() Set { return Set(m.current.Load()) }

// Err is the error of the alarms that are on, or nil.
func (m *Monitor) Err() error { return m.Alarms().Err() }

// Changed returns a channel closed at the next change of the alarm set.
func (m *Monitor) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Stats returns the last measurements.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Subscribe calls fn with the new set after every change until the
// returned function is called. fn must not block.
func (m *Monitor) Subscribe(fn func(Set)) (unsubscribe func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextSub++
	id := m.nextSub
	m.subs = append(m.subs, subscriber{id: id, fn: fn})
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, s := range m.subs {
			if s.id == id {
				m.subs = append(m.subs[:i:i], m.subs[i+1:]...)
				return
			}
		}
	}
}
