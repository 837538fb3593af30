package broker

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/wharfmq/wharf/internal/storage"
)

// TestQueueRecoveryPagedOutOrInMemory recovers the same queue, with gaps
// of acknowledged messages and some delivered but not acknowledged, once
// with a memory limit (recovered paged out, without reading the log) and
// once without (read into memory): both give back the same messages, in
// order, with the same redelivered marks. The paged-out ones are read
// back over several read-ahead windows.
func TestQueueRecoveryPagedOutOrInMemory(t *testing.T) {
	const total, taken = 1500, 1000 // 300 KiB: several read-ahead windows
	if total*200 < 4*loadAheadBytes {
		t.Fatal("too few messages to cross read-ahead windows")
	}
	dir := t.TempDir()
	open := func(dir string, limit int64) *Broker {
		b, err := Open(Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig(), QueueMemoryBytes: limit})
		if err != nil {
			t.Fatalf("open broker: %v", err)
		}
		return b
	}
	body := func(i int) string { return fmt.Sprintf("message-%04d-%s", i, strings.Repeat("x", 200)) }
	b := open(dir, 0)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "gaps", Durable: true})
	var pending []PublishResult
	for i := range total {
		pending = append(pending, qtPublish(t, b, "gaps", body(i), true))
	}
	for _, p := range pending {
		qtWait(t, p)
	}
	q := qtQueue(t, b, "gaps")
	// Take some: ack every third, leave the rest delivered and unsettled.
	for i := range taken {
		if d := qtGet(t, q, false); i%3 == 0 {
			q.Ack([]Delivery{d})
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var want, wantRedelivered []string
	for i := range total {
		if i < taken && i%3 == 0 {
			continue
		}
		want = append(want, body(i))
		if i < taken {
			wantRedelivered = append(wantRedelivered, body(i))
		}
	}

	for _, limit := range []int64{64 << 20, -1} {
		// Each on a copy: delivering marks the messages redelivered for
		// the next start.
		copied := t.TempDir()
		if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		b := open(copied, limit)
		q := qtQueue(t, b, "gaps")
		var got, redelivered []string
		for {
			d, ok := q.Get(t.Context(), false)
			if !ok {
				break
			}
			got = append(got, string(d.Message.Body))
			if d.Redelivered {
				redelivered = append(redelivered, string(d.Message.Body))
			}
		}
		if !slices.Equal(got, want) || !slices.Equal(redelivered, wantRedelivered) {
			t.Errorf("memory limit %d: recovered %d messages (%d redelivered), want %d (%d); first difference at %d",
				limit, len(got), len(redelivered), len(want), len(wantRedelivered), firstDiff(got, want))
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
