package limits

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGateNeverExceedsItsMaximum(t *testing.T) {
	g := NewGate(3)
	var mu sync.Mutex
	held, most := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				release, ok := g.Acquire()
				if !ok {
					continue
				}
				mu.Lock()
				held++
				most = max(most, held)
				mu.Unlock()
				mu.Lock()
				held--
				mu.Unlock()
				release()
				release() // idempotent
			}
		}()
	}
	wg.Wait()
	if most > 3 {
		t.Fatalf("%d holders at once, maximum 3", most)
	}
	if g.Count() != 0 {
		t.Fatalf("count %d after every release, want 0", g.Count())
	}
}

func TestGateRefusesWhenFullAndAdmitsAfterARelease(t *testing.T) {
	g := NewGate(2)
	r1, ok1 := g.Acquire()
	_, ok2 := g.Acquire()
	if !ok1 || !ok2 {
		t.Fatal("the first two acquisitions were refused")
	}
	if _, ok := g.Acquire(); ok {
		t.Fatal("a third acquisition was admitted past the maximum 2")
	}
	r1()
	r1()
	if _, ok := g.Acquire(); !ok {
		t.Fatal("an acquisition after a release was refused")
	}
	if _, ok := g.Acquire(); ok {
		t.Fatal("a double release freed two slots")
	}
}

func TestZeroAndNilMeanNoLimit(t *testing.T) {
	var nilGate *Gate
	var nilUsers *Users
	for _, g := range []*Gate{NewGate(0), nilGate} {
		for i := range 1000 {
			if _, ok := g.Acquire(); !ok {
				t.Fatalf("acquisition %d refused without a limit", i)
			}
		}
	}
	for _, u := range []*Users{NewUsers(0), nilUsers} {
		for i := range 1000 {
			if _, ok := u.Acquire("alice"); !ok {
				t.Fatalf("acquisition %d refused without a limit", i)
			}
		}
	}
	if nilGate.Max() != 0 || nilUsers.Max() != 0 {
		t.Fatal("a nil limit reports a maximum")
	}
}

func TestUsersCountsEachUserApart(t *testing.T) {
	u := NewUsers(2)
	ra, _ := u.Acquire("alice")
	if _, ok := u.Acquire("alice"); !ok {
		t.Fatal("alice's second connection refused")
	}
	if _, ok := u.Acquire("alice"); ok {
		t.Fatal("alice's third connection admitted past the maximum 2")
	}
	for range 2 {
		if _, ok := u.Acquire("bob"); !ok {
			t.Fatal("bob refused because of alice's connections")
		}
	}
	ra()
	if got := u.Count("alice"); got != 1 {
		t.Fatalf("alice holds %d after one release, want 1", got)
	}
	if _, ok := u.Acquire("alice"); !ok {
		t.Fatal("alice refused after a release")
	}
}

func TestLogSamplerWritesOncePerIntervalAndCountsTheRest(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	now := time.Unix(1000, 0)
	s := NewLogSampler(logger, 10*time.Second, func() time.Time { return now })

	if !s.Warn("amqp", "connection refused", "limit", 2) {
		t.Fatal("the first refusal was not written")
	}
	for range 5 {
		if s.Warn("amqp", "connection refused", "limit", 2) {
			t.Fatal("a refusal within the interval was written")
		}
	}
	if !s.Warn("kafka", "connection refused", "limit", 3) {
		t.Fatal("another key's first refusal was held back")
	}
	now = now.Add(10 * time.Second)
	if !s.Warn("amqp", "connection refused", "limit", 2) {
		t.Fatal("a refusal after the interval was not written")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[2], "suppressed=5") || strings.Contains(lines[0], "suppressed") {
		t.Fatalf("suppressed counts wrong:\n%s", buf.String())
	}
	if !strings.Contains(lines[0], "level=WARN") {
		t.Fatalf("not at warn level: %s", lines[0])
	}
}
