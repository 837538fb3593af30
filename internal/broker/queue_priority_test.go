package broker

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// qtPriorityProps encodes basic properties carrying only a priority.
func qtPriorityProps(p uint8) []byte {
	return append(binary.BigEndian.AppendUint16(nil, propPriority), p)
}

func TestPropertyPriority(t *testing.T) {
	// content-type "t", headers {} and delivery-mode 2 precede the priority.
	props := binary.BigEndian.AppendUint16(nil, propContentType|propHeaders|propDeliveryMode|propPriority|propExpiration)
	props = append(props, 1, 't', 0, 0, 0, 0, 2, 7, 2, '1', '0')
	if p, ok := propertyPriority(props); !ok || p != 7 {
		t.Fatalf("priority %d, %v; want 7", p, ok)
	}
	if _, ok := propertyPriority(binary.BigEndian.AppendUint16(nil, propDeliveryMode)); ok {
		t.Fatal("priority found in properties without one")
	}
	if _, ok := propertyPriority(binary.BigEndian.AppendUint16(nil, propContentType|propPriority)); ok {
		t.Fatal("priority found in truncated properties")
	}
}

// TestQueuePriorityPaging checks that a durable priority queue deeper than
// its memory limit pages its messages out, delivers them highest priority
// first, and recovers them at their priorities after a restart.
func TestQueuePriorityPaging(t *testing.T) {
	const limit = 64 << 10
	dir := t.TempDir()
	open := func() *Broker {
		b, err := Open(Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig(), QueueMemoryBytes: limit})
		if err != nil {
			t.Fatalf("open broker: %v", err)
		}
		return b
	}
	b := open()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "pdeep", Durable: true, Arguments: Table{"x-max-priority": int32(9)}})
	body := func(i int) string { return fmt.Sprintf("%06d-%s", i, strings.Repeat("x", 1000)) }
	const n = 1000 // about 1 MB, 15 times the limit
	var pending []PublishResult
	for i := range n {
		res, err := b.Publish(DefaultVhost, "", []string{"pdeep"}, nil, &Message{RoutingKey: "pdeep", Body: []byte(body(i)),
			Properties: qtPriorityProps(uint8(i % 10)), Persistent: true, Timestamp: time.Now().UnixMilli()})
		if err != nil || res.Routed != 1 {
			t.Fatalf("publish %d: routed %d, %v", i, res.Routed, err)
		}
		pending = append(pending, res)
	}
	for _, p := range pending {
		qtWait(t, p)
	}
	q := qtQueue(t, b, "pdeep")
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	if r := q.ResidentBytes(); r > limit+256*int64(len(body(0))) {
		t.Fatalf("%d bytes resident with a limit of %d", r, limit)
	}
	var want []string
	for p := 9; p >= 0; p-- {
		for i := p; i < n; i += 10 {
			want = append(want, body(i))
		}
	}
	// The first 20 (priority 9, read back from the log when paged out)
	// are taken and acknowledged.
	for i := range 20 {
		d := qtGet(t, q, false)
		if got := string(d.Message.Body); got != want[i] {
			t.Fatalf("message %d: got %.10q, want %.10q", i, got, want[i])
		}
		q.Ack([]Delivery{d})
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = open()
	defer b.Close()
	q = qtQueue(t, b, "pdeep")
	if r := q.ResidentBytes(); r != 0 {
		t.Fatalf("%d bytes resident after recovery, want none: recovered messages stay paged out", r)
	}
	if got := qtDrain(q); !slices.Equal(got, want[20:]) {
		t.Fatalf("recovered %d messages, want %d (first difference at %d)", len(got), len(want)-20, firstDiff(got, want[20:]))
	}
}
