package broker

import (
	"errors"
	"slices"
	"testing"
)

// TestQueueLengthLimits: reject-publish refuses what would go over
// x-max-length-bytes (counting requeued messages, not unacknowledged
// ones), and the result's Wait says ErrQueueFull.
func TestQueueLengthLimits(t *testing.T) {
	c := newTestClock()
	b := openClockBroker(t, t.TempDir(), c)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true,
		Arguments: Table{"x-max-length-bytes": int64(6), "x-overflow": "reject-publish"}})
	q := qtQueue(t, b, "q")
	publish := func(body string) PublishResult {
		t.Helper()
		res, err := b.Publish(DefaultVhost, "", []string{"q"}, nil, &Message{RoutingKey: "q", Body: []byte(body), Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, body := range []string{"abc", "def"} {
		if res := publish(body); res.Rejected != 0 {
			t.Fatalf("%s refused", body)
		}
	}
	res := publish("g")
	if err := res.Wait(t.Context()); res.Rejected != 1 || !errors.Is(err, ErrQueueFull) {
		t.Fatalf("over the limit: rejected %d, wait %v", res.Rejected, err)
	}
	d := qtGet(t, q, false) // "abc" out: 3 bytes of room
	if res := publish("xyz"); res.Rejected != 0 {
		t.Fatal("refused with room")
	}
	q.Requeue([]Delivery{d}) // back: over the limit again, nothing dropped
	if res := publish("h"); res.Rejected != 1 {
		t.Fatal("accepted over the limit")
	}
	if got := qtDrain(q); !slices.Equal(got, []string{"abc", "def", "xyz"}) {
		t.Fatalf("drained %q", got)
	}
	q.mu.Lock()
	rb := q.readyBytes
	q.mu.Unlock()
	if rb != 0 {
		t.Fatalf("readyBytes %d on an empty queue", rb)
	}
}
