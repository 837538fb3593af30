package alarm

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakes are settable measurements.
type fakes struct {
	free    atomic.Uint64
	used    atomic.Uint64
	diskErr atomic.Bool
}

func (f *fakes) options() Options {
	return Options{
		Dir: "/data", DiskFreeLimit: 1000, MemoryHighWatermark: 10_000,
		DiskFree: func(string) (uint64, error) {
			if f.diskErr.Load() {
				return 0, errors.New("statfs failed")
			}
			return f.free.Load(), nil
		},
		MemoryInUse: f.used.Load,
	}
}

func newFakes() *fakes {
	f := &fakes{}
	f.free.Store(5000)
	f.used.Store(100)
	return f
}

func TestDiskAlarm(t *testing.T) {
	f := newFakes()
	m := New(f.options())
	m.Check()
	if s := m.Alarms(); s.Any() || m.Err() != nil {
		t.Fatalf("alarms %v with room to spare", s)
	}
	changed := m.Changed()
	f.free.Store(999)
	m.Check()
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed when the disk alarm was set")
	}
	s := m.Alarms()
	if !s.Has(Disk) || s.Has(Memory) || s.Reason() != "low on disk" || !errors.Is(m.Err(), ErrDisk) {
		t.Fatalf("below the limit: %v %q %v", s, s.Reason(), m.Err())
	}
	// A failed measurement changes nothing.
	f.diskErr.Store(true)
	changed = m.Changed()
	m.Check()
	if !m.Alarms().Has(Disk) {
		t.Fatal("a failed measurement cleared the disk alarm")
	}
	f.diskErr.Store(false)
	f.free.Store(1000) // exactly the limit is enough
	m.Check()
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed when the disk alarm cleared")
	}
	if m.Alarms().Any() {
		t.Fatalf("alarms %v at the limit", m.Alarms())
	}
	if st := m.Stats(); st.DiskFree != 1000 || st.DiskFreeLimit != 1000 || st.MemoryHighWatermark != 10_000 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMemoryAlarmHysteresis(t *testing.T) {
	f := newFakes()
	m := New(f.options())
	for _, step := range []struct {
		used uint64
		want bool
	}{
		{9_999, false},
		{10_000, true}, // at the watermark
		{9_500, true},  // under it, above the clear point
		{9_000, true},  // exactly ClearFraction: not under it yet
		{8_999, false},
		{9_500, false}, // rising again: set only at the watermark
		{20_000, true},
	} {
		f.used.Store(step.used)
		m.Check()
		if got := m.Alarms().Has(Memory); got != step.want {
			t.Fatalf("memory %d: alarm %v, want %v", step.used, got, step.want)
		}
	}
	f.free.Store(0)
	m.Check()
	if s := m.Alarms(); s.Reason() != "low on memory & low on disk" || !errors.Is(s.Err(), ErrDisk) || !errors.Is(s.Err(), ErrMemory) {
		t.Fatalf("both alarms: %q %v", s.Reason(), s.Err())
	}
}

func TestSubscribe(t *testing.T) {
	f := newFakes()
	m := New(f.options())
	var mu sync.Mutex
	var a, b []Set
	unsubA := m.Subscribe(func(s Set) { mu.Lock(); a = append(a, s); mu.Unlock() })
	m.Subscribe(func(s Set) { mu.Lock(); b = append(b, s); mu.Unlock() })
	m.Check() // no change: no call
	f.free.Store(0)
	m.Check()
	m.Check() // no change
	unsubA()
	f.free.Store(5000)
	m.Check()
	mu.Lock()
	defer mu.Unlock()
	if len(a) != 1 || a[0] != Set(Disk) {
		t.Fatalf("first subscriber saw %v, want [disk] and nothing after unsubscribing", a)
	}
	if len(b) != 2 || b[0] != Set(Disk) || b[1] != 0 {
		t.Fatalf("second subscriber saw %v, want set then clear", b)
	}
}

func TestDisabledAndDefaults(t *testing.T) {
	f := newFakes()
	opts := f.options()
	opts.DiskFreeLimit, opts.MemoryHighWatermark = 0, -1
	m := New(opts)
	f.free.Store(0)
	f.used.Store(1 << 40)
	m.Check()
	if m.Alarms().Any() {
		t.Fatalf("disabled alarms went off: %v", m.Alarms())
	}
	if st := m.Stats(); st.DiskFreeLimit != 0 || st.MemoryHighWatermark != 0 {
		t.Fatalf("disabled limits %+v", st)
	}
	// A zero watermark is DefaultMemoryFraction of the total.
	opts = f.options()
	opts.MemoryHighWatermark = 0
	opts.TotalMemory = func() (uint64, error) { return 1000_000, nil }
	if got := New(opts).Stats().MemoryHighWatermark; got != 400_000 {
		t.Fatalf("default watermark %d, want 40%% of 1000000", got)
	}
	opts.TotalMemory = func() (uint64, error) { return 0, errors.New("unknown") }
	if got := New(opts).Stats().MemoryHighWatermark; got != 0 {
		t.Fatalf("watermark %d with the total unknown, want disabled", got)
	}
}

// TestPeriodicCheck: once started, the Monitor notices a change by itself.
func TestPeriodicCheck(t *testing.T) {
	f := newFakes()
	opts := f.options()
	opts.Interval = time.Millisecond
	m := New(opts)
	m.Start()
	defer m.Close()
	changed := m.Changed()
	f.free.Store(0)
	select {
	case <-changed:
	case <-time.After(time.Minute):
		t.Fatal("the periodic check did not set the disk alarm")
	}
	if !m.Alarms().Has(Disk) {
		t.Fatal("disk alarm not set")
	}
	m.Close()
	m.Close()
}

// TestRealMeasurements runs the default measurements: the data directory's
// filesystem has some free space and the process uses some memory.
func TestRealMeasurements(t *testing.T) {
	free, err := statfsFree(t.TempDir())
	if err != nil {
		if errors.Is(err, errUnsupported) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	if free == 0 {
		t.Fatal("statfs says the temporary directory's filesystem is full")
	}
	if RuntimeMemoryInUse() == 0 {
		t.Fatal("the runtime reports no memory in use")
	}
	total, err := totalMemory()
	if err != nil {
		t.Skip(err)
	}
	if total < 1<<20 {
		t.Fatalf("total memory %d", total)
	}
}
