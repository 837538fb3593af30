package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/crashcopy"
	"github.com/wharfmq/wharf/internal/storage"
)

// qtSink records what a consumer is handed. Deliver runs under the queue's
// lock, so it only appends.
type qtSink struct {
	mu        sync.Mutex
	got       []Delivery
	cancelled atomic.Int32
}

func (s *qtSink) deliver(d Delivery) {
	s.mu.Lock()
	s.got = append(s.got, d)
	s.mu.Unlock()
}

// take returns the deliveries since the last take.
func (s *qtSink) take() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

// qtConsumer returns a consumer that records into a new sink.
func qtConsumer(tag string, limit *Credit) (*Consumer, *qtSink) {
	s := &qtSink{}
	return &Consumer{Tag: tag, Limit: limit, Deliver: s.deliver, Cancelled: func() { s.cancelled.Add(1) }}, s
}

func qtBodies(ds []Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Message.Body)
	}
	return out
}

// qtPublish publishes body to queue through the default exchange and checks
// that it was routed to exactly that queue. A stored message is delivered
// only once durable, so for one it waits for the fsync and then dispatches
// (as the queue's own waiter would, a moment later): the message is then
// where an unstored one would be right after Publish.
func qtPublish(t testing.TB, b *Broker, queue, body string, persistent bool) PublishResult {
	t.Helper()
	res, err := b.Publish(DefaultVhost, "", []string{queue}, nil,
		&Message{RoutingKey: queue, Body: []byte(body), Persistent: persistent, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatalf("publish %q to %q: %v", body, queue, err)
	}
	if res.Routed != 1 {
		t.Fatalf("publish %q to %q: routed to %d queues", body, queue, res.Routed)
	}
	if res.Durable() {
		qtWait(t, res)
		qtQueue(t, b, queue).Kick()
	}
	return res
}

func qtWait(t testing.TB, res PublishResult) {
	t.Helper()
	if err := res.Wait(t.Context()); err != nil {
		t.Fatalf("waiting for a publish: %v", err)
	}
}

func qtQueue(t testing.TB, b *Broker, name string) *Queue {
	t.Helper()
	q, err := b.Queue(DefaultVhost, "c1", name)
	if err != nil {
		t.Fatalf("queue %q: %v", name, err)
	}
	return q
}

func qtGet(t testing.TB, q *Queue, noAck bool) Delivery {
	t.Helper()
	d, ok := q.Get(t.Context(), noAck)
	if !ok {
		t.Fatalf("get from %s: empty", q.Name)
	}
	return d
}

// qtDrain gets every ready message with no-ack and returns their bodies.
func qtDrain(q *Queue) []string {
	var out []string
	for {
		d, ok := q.Get(context.Background(), true)
		if !ok {
			return out
		}
		out = append(out, string(d.Message.Body))
	}
}

func qtCounts(t testing.TB, q *Queue, messages, consumers int) {
	t.Helper()
	if m, c := q.Counts(); m != messages || c != consumers {
		t.Fatalf("counts of %s: %d messages %d consumers, want %d and %d", q.Name, m, c, messages, consumers)
	}
}

func qtSegments(t testing.TB, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestQueueFIFO(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q"})
	q := qtQueue(t, b, "q")
	if _, ok := q.Get(t.Context(), false); ok {
		t.Fatal("get on a new queue returned a message")
	}
	const n = 40 // more than the deque's first buffer, so it grows
	var want []string
	for i := range n {
		body := fmt.Sprintf("m%02d", i)
		want = append(want, body)
		res := qtPublish(t, b, "q", body, false)
		if res.Durable() {
			t.Fatal("a transient message to a transient queue is durable")
		}
	}
	qtCounts(t, q, n, 0)
	var got []string
	for i := range n {
		d := qtGet(t, q, i%2 == 0)
		if d.Redelivered || d.Consumer != nil || d.Queue != q {
			t.Fatalf("delivery %d: %+v", i, d)
		}
		if d.Remaining != n-1-i {
			t.Fatalf("delivery %d: remaining %d, want %d", i, d.Remaining, n-1-i)
		}
		if d.Message.RoutingKey != "q" || d.Message.Exchange != "" {
			t.Fatalf("delivery %d: exchange %q key %q", i, d.Message.Exchange, d.Message.RoutingKey)
		}
		got = append(got, string(d.Message.Body))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("order %q, want %q", got, want)
	}
	if _, ok := q.Get(t.Context(), false); ok {
		t.Fatal("get on an empty queue returned a message")
	}
	qtCounts(t, q, 0, 0)
	if u := q.Unacked(); u != n/2 {
		t.Fatalf("unacked %d, want %d", u, n/2)
	}
	// Publishing to a queue that does not exist routes nowhere; to an
	// exchange that does not exist is ErrNotFound.
	if res, err := b.Publish(DefaultVhost, "", []string{"nope"}, nil, &Message{Body: []byte("x")}); err != nil || res.Routed != 0 {
		t.Fatalf("publish to a missing queue: %+v %v", res, err)
	}
	if _, err := b.Publish(DefaultVhost, "nope", []string{"q"}, nil, &Message{Body: []byte("x")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("publish to a missing exchange: %v", err)
	}
}

func TestQueueRequeueOrder(t *testing.T) {
	for _, together := range []bool{false, true} {
		t.Run(fmt.Sprintf("together=%v", together), func(t *testing.T) {
			b := openTestBroker(t, t.TempDir())
			defer b.Close()
			mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
			q := qtQueue(t, b, "q")
			for i := 1; i <= 8; i++ {
				qtPublish(t, b, "q", fmt.Sprint(i), i%2 == 0)
			}
			var ds []Delivery
			for range 5 {
				ds = append(ds, qtGet(t, q, false))
			}
			if got := qtBodies(ds); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
				t.Fatalf("got %q", got)
			}
			if together {
				q.Requeue([]Delivery{ds[3], ds[1]})
			} else {
				q.Requeue([]Delivery{ds[3]})
				q.Requeue([]Delivery{ds[1]})
			}
			qtCounts(t, q, 5, 0)
			if u := q.Unacked(); u != 3 {
				t.Fatalf("unacked %d, want 3", u)
			}
			var got []string
			for {
				d, ok := q.Get(t.Context(), true)
				if !ok {
					break
				}
				body := string(d.Message.Body)
				want := body == "2" || body == "4"
				if d.Redelivered != want {
					t.Fatalf("message %s: redelivered %v, want %v", body, d.Redelivered, want)
				}
				got = append(got, body)
			}
			if want := []string{"2", "4", "6", "7", "8"}; !slices.Equal(got, want) {
				t.Fatalf("after requeue got %q, want %q", got, want)
			}
			// Requeued ahead of messages published after the requeue too.
			q.Requeue([]Delivery{ds[4], ds[0]})
			qtPublish(t, b, "q", "9", true)
			if got, want := qtDrain(q), []string{"1", "5", "9"}; !slices.Equal(got, want) {
				t.Fatalf("second requeue got %q, want %q", got, want)
			}
			q.Ack([]Delivery{ds[2]})
			if u := q.Unacked(); u != 0 {
				t.Fatalf("unacked %d, want 0", u)
			}
		})
	}
}

func TestQueueConsumersRoundRobin(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q"})
	q := qtQueue(t, b, "q")

	t.Run("unlimited", func(t *testing.T) {
		ca, sa := qtConsumer("a", nil)
		cb, sb := qtConsumer("b", nil)
		for _, c := range []*Consumer{ca, cb} {
			if err := q.Consume(c); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 6 {
			qtPublish(t, b, "q", fmt.Sprint(i), false)
		}
		da, db := sa.take(), sb.take()
		if got := qtBodies(da); !slices.Equal(got, []string{"0", "2", "4"}) {
			t.Fatalf("a got %q", got)
		}
		if got := qtBodies(db); !slices.Equal(got, []string{"1", "3", "5"}) {
			t.Fatalf("b got %q", got)
		}
		for _, d := range da {
			if d.Consumer != ca || d.Queue != q || d.Redelivered {
				t.Fatalf("delivery %+v", d)
			}
		}
		q.Ack(da)
		q.Ack(db)
		if err := b.CancelConsumer(t.Context(), q, ca); err != nil {
			t.Fatal(err)
		}
		if err := b.CancelConsumer(t.Context(), q, cb); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.LookupQueue(DefaultVhost, "q"); !ok {
			t.Fatal("cancelling the consumers of a queue that is not auto-delete deleted it")
		}
		qtCounts(t, q, 0, 0)
	})

	t.Run("prefetch 1", func(t *testing.T) {
		ca, sa := qtConsumer("a", NewCredit(1))
		cb, sb := qtConsumer("b", NewCredit(1))
		for _, c := range []*Consumer{ca, cb} {
			if err := q.Consume(c); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 5 {
			qtPublish(t, b, "q", fmt.Sprint(i), false)
		}
		da, db := sa.take(), sb.take()
		if len(da) != 1 || len(db) != 1 || string(da[0].Message.Body) != "0" || string(db[0].Message.Body) != "1" {
			t.Fatalf("a got %q, b got %q", qtBodies(da), qtBodies(db))
		}
		qtCounts(t, q, 3, 2)
		if ca.Limit.Used() != 1 || cb.Limit.Used() != 1 {
			t.Fatalf("credit used %d and %d", ca.Limit.Used(), cb.Limit.Used())
		}
		// At its limit, a consumer gets nothing more until it acks.
		qtPublish(t, b, "q", "5", false)
		if got := append(sa.take(), sb.take()...); len(got) != 0 {
			t.Fatalf("a consumer at its limit got %q", qtBodies(got))
		}
		q.Ack(db)
		if got := sa.take(); len(got) != 0 {
			t.Fatalf("a got %q when b acked", qtBodies(got))
		}
		db = sb.take()
		if got := qtBodies(db); !slices.Equal(got, []string{"2"}) {
			t.Fatalf("b got %q after acking, want [2]", got)
		}
		q.Ack(da)
		da = sa.take()
		if got := qtBodies(da); !slices.Equal(got, []string{"3"}) {
			t.Fatalf("a got %q after acking, want [3]", got)
		}
		// A requeue gives credit back too, and the requeued message goes
		// first, to the consumer that has room.
		q.Requeue(da)
		if got := sa.take(); len(got) != 1 || string(got[0].Message.Body) != "3" || !got[0].Redelivered {
			t.Fatalf("a got %q after requeueing, want 3 redelivered", qtBodies(got))
		}
		qtCounts(t, q, 2, 2)
		// Raising the limit takes effect at the next dispatch.
		cb.Limit.SetLimit(3)
		q.Kick()
		if got := qtBodies(sb.take()); !slices.Equal(got, []string{"4", "5"}) {
			t.Fatalf("b got %q after its limit rose, want [4 5]", got)
		}
		qtCounts(t, q, 0, 2)
		for _, c := range []*Consumer{ca, cb} {
			if err := b.CancelConsumer(t.Context(), q, c); err != nil {
				t.Fatal(err)
			}
		}
		if u := q.Unacked(); u != 4 {
			t.Fatalf("unacked after cancel %d, want 4 (deliveries stay out)", u)
		}
	})
}

func TestQueueConsumerPriority(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q"})
	q := qtQueue(t, b, "q")
	lo, slo := qtConsumer("lo", NewCredit(1))
	hi, shi := qtConsumer("hi", NewCredit(2))
	hi.Priority = 10
	lo2, slo2 := qtConsumer("lo2", NewCredit(1))
	for _, c := range []*Consumer{lo, hi, lo2} {
		if err := q.Consume(c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		qtPublish(t, b, "q", fmt.Sprint(i), false)
	}
	dhi := shi.take()
	if got := qtBodies(dhi); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatalf("high priority got %q, want [0 1]", got)
	}
	dlo, dlo2 := slo.take(), slo2.take()
	lows := qtBodies(append(slices.Clone(dlo), dlo2...))
	slices.Sort(lows)
	if len(dlo) != 1 || len(dlo2) != 1 || !slices.Equal(lows, []string{"2", "3"}) {
		t.Fatalf("low priority consumers got %q and %q, want 2 and 3", qtBodies(dlo), qtBodies(dlo2))
	}
	qtCounts(t, q, 1, 3)
	// Credit comes back to the high-priority consumer: it gets the next.
	q.Ack(dhi[:1])
	if got := qtBodies(shi.take()); !slices.Equal(got, []string{"4"}) {
		t.Fatalf("high priority got %q after acking, want [4]", got)
	}
	// While it has credit, everything new goes to it.
	q.Ack(dlo)
	q.Ack(dlo2)
	q.Ack(dhi[1:])
	qtPublish(t, b, "q", "5", false)
	if got := qtBodies(shi.take()); !slices.Equal(got, []string{"5"}) {
		t.Fatalf("high priority got %q, want [5]", got)
	}
	if got := append(slo.take(), slo2.take()...); len(got) != 0 {
		t.Fatalf("low priority got %q while high had credit", qtBodies(got))
	}
}

func TestQueueBusyConsumer(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q"})
	q := qtQueue(t, b, "q")
	var busy atomic.Bool
	busy.Store(true)
	c, s := qtConsumer("c", nil)
	c.NoAck = true
	c.Busy = busy.Load
	if err := q.Consume(c); err != nil {
		t.Fatal(err)
	}
	qtPublish(t, b, "q", "a", false)
	qtPublish(t, b, "q", "b", false)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("a busy consumer got %q", qtBodies(got))
	}
	qtCounts(t, q, 2, 1)
	q.Kick() // still busy: nothing
	if got := s.take(); len(got) != 0 {
		t.Fatalf("a busy consumer got %q on a kick", qtBodies(got))
	}
	busy.Store(false)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("a consumer got %q before the kick", qtBodies(got))
	}
	q.Kick()
	if got := qtBodies(s.take()); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after the kick got %q", got)
	}
	qtCounts(t, q, 0, 1)
	if u := q.Unacked(); u != 0 {
		t.Fatalf("no-ack deliveries left %d unacked", u)
	}
	// A busy consumer is skipped in favour of one that is not.
	busy.Store(true)
	other, so := qtConsumer("other", nil)
	other.NoAck = true
	if err := q.Consume(other); err != nil {
		t.Fatal(err)
	}
	qtPublish(t, b, "q", "c", false)
	if got := qtBodies(so.take()); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("the idle consumer got %q", got)
	}
	if got := s.take(); len(got) != 0 {
		t.Fatalf("the busy consumer got %q", qtBodies(got))
	}
}

func TestQueueExclusiveConsumer(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q"})
	q := qtQueue(t, b, "q")
	ex, sex := qtConsumer("ex", nil)
	ex.Exclusive = true
	if err := q.Consume(ex); err != nil {
		t.Fatal(err)
	}
	other, _ := qtConsumer("other", nil)
	wantModelError(t, q.Consume(other), ErrAccessRefused, "queue 'q' in vhost '/' in exclusive use")
	ex2, _ := qtConsumer("ex2", nil)
	ex2.Exclusive = true
	wantModelError(t, q.Consume(ex2), ErrAccessRefused, "")
	qtCounts(t, q, 0, 1)
	qtPublish(t, b, "q", "a", false)
	if got := qtBodies(sex.take()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("exclusive consumer got %q", got)
	}
	if err := b.CancelConsumer(t.Context(), q, ex); err != nil {
		t.Fatal(err)
	}
	// Once it is gone, others may consume, and then no one may take
	// exclusive use.
	if err := q.Consume(other); err != nil {
		t.Fatalf("consume after the exclusive consumer left: %v", err)
	}
	wantModelError(t, q.Consume(ex2), ErrAccessRefused, "")
	if err := b.CancelConsumer(t.Context(), q, other); err != nil {
		t.Fatal(err)
	}
	if err := q.Consume(ex2); err != nil {
		t.Fatalf("exclusive consume of an unused queue: %v", err)
	}
}

func TestQueueChannelCredit(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q1"})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q2"})
	q1, q2 := qtQueue(t, b, "q1"), qtQueue(t, b, "q2")
	ch := NewCredit(1)
	c1, s1 := qtConsumer("c1", nil)
	c2, s2 := qtConsumer("c2", nil)
	c1.Channel, c2.Channel = ch, ch
	if err := q1.Consume(c1); err != nil {
		t.Fatal(err)
	}
	if err := q2.Consume(c2); err != nil {
		t.Fatal(err)
	}
	qtPublish(t, b, "q1", "a", false)
	qtPublish(t, b, "q2", "b", false)
	d1 := s1.take()
	if got := qtBodies(d1); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("c1 got %q", got)
	}
	if got := s2.take(); len(got) != 0 {
		t.Fatalf("c2 got %q beyond the channel's credit", qtBodies(got))
	}
	if ch.Used() != 1 {
		t.Fatalf("channel credit used %d, want 1", ch.Used())
	}
	qtCounts(t, q2, 1, 1)
	q1.Ack(d1)
	if ch.Used() != 0 {
		t.Fatalf("channel credit used %d after the ack, want 0", ch.Used())
	}
	// q2 does not know the credit came back until it is kicked.
	if got := s2.take(); len(got) != 0 {
		t.Fatalf("c2 got %q without a kick", qtBodies(got))
	}
	q2.Kick()
	d2 := s2.take()
	if got := qtBodies(d2); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("c2 got %q after the kick", got)
	}
	// Now q1 is the one that must wait.
	qtPublish(t, b, "q1", "c", false)
	if got := s1.take(); len(got) != 0 {
		t.Fatalf("c1 got %q beyond the channel's credit", qtBodies(got))
	}
	q2.Ack(d2)
	q1.Kick()
	if got := qtBodies(s1.take()); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("c1 got %q after the kick", got)
	}
	// A consumer's own limit and the channel's both apply.
	ch.SetLimit(0)
	qtPublish(t, b, "q2", "d", false)
	qtPublish(t, b, "q2", "e", false)
	if got := qtBodies(s2.take()); !slices.Equal(got, []string{"d", "e"}) {
		t.Fatalf("c2 got %q with an unlimited channel", got)
	}
	if ch.Used() != 3 {
		t.Fatalf("channel credit used %d, want 3", ch.Used())
	}
}

func TestQueueAutoDeleteOnCancel(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "ad", AutoDelete: true})
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "x", Type: "fanout"})
	mustBindQueue(t, b, DefaultVhost, "x", "ad", "", nil)
	q := qtQueue(t, b, "ad")
	ca, sa := qtConsumer("a", nil)
	cb, sb := qtConsumer("b", nil)
	for _, c := range []*Consumer{ca, cb} {
		if err := q.Consume(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.CancelConsumer(ctx, q, ca); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.LookupQueue(DefaultVhost, "ad"); !ok {
		t.Fatal("auto-delete queue deleted while it still has a consumer")
	}
	qtCounts(t, q, 0, 1)
	if err := b.CancelConsumer(ctx, q, cb); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.LookupQueue(DefaultVhost, "ad"); ok {
		t.Fatal("auto-delete queue still exists after its last consumer was cancelled")
	}
	if _, err := b.Queue(DefaultVhost, "c1", "ad"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Queue of a deleted queue: %v", err)
	}
	if got := bindingNames(t, b, DefaultVhost); len(got) != 0 {
		t.Fatalf("bindings of a deleted queue remain: %q", got)
	}
	// Cancelled consumers are not told the queue went: they had left.
	if sa.cancelled.Load() != 0 || sb.cancelled.Load() != 0 {
		t.Fatal("cancelled consumers were told of the deletion")
	}
	if res, err := b.Publish(DefaultVhost, "x", nil, nil, &Message{Body: []byte("x")}); err != nil || res.Routed != 0 {
		t.Fatalf("publish to the deleted queue's exchange: %+v %v", res, err)
	}
	wantModelError(t, q.Consume(ca), ErrNotFound, "")

	// An auto-delete queue that never had a consumer is not deleted by a
	// cancel of a consumer that was never added.
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "ad2", AutoDelete: true})
	q2 := qtQueue(t, b, "ad2")
	stray, _ := qtConsumer("stray", nil)
	if err := b.CancelConsumer(ctx, q2, stray); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.LookupQueue(DefaultVhost, "ad2"); !ok {
		t.Fatal("an auto-delete queue that never had a consumer was deleted")
	}
}

func TestQueueDeleteCancelsConsumers(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
	q := qtQueue(t, b, "q")
	ca, sa := qtConsumer("a", NewCredit(1))
	cb, sb := qtConsumer("b", NewCredit(1))
	for _, c := range []*Consumer{ca, cb} {
		if err := q.Consume(c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		qtPublish(t, b, "q", fmt.Sprint(i), true)
	}
	da := sa.take()
	n, err := b.DeleteQueue(t.Context(), DefaultVhost, "c1", "q", QueueDeleteCheck{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("delete reported %d messages, want 1 ready", n)
	}
	if sa.cancelled.Load() != 1 || sb.cancelled.Load() != 1 {
		t.Fatalf("Cancelled called %d and %d times, want once each", sa.cancelled.Load(), sb.cancelled.Load())
	}
	// Settling a delivery of the deleted queue gives the credit back and
	// does nothing else.
	q.Ack(da)
	if ca.Limit.Used() != 0 {
		t.Fatalf("credit used %d after acking on a deleted queue", ca.Limit.Used())
	}
	if _, ok := q.Get(t.Context(), true); ok {
		t.Fatal("get from a deleted queue")
	}
	qtCounts(t, q, 0, 0)
	if res, err := b.Publish(DefaultVhost, "", []string{"q"}, nil, &Message{Body: []byte("x")}); err != nil || res.Routed != 0 {
		t.Fatalf("publish to the deleted queue: %+v %v", res, err)
	}
}

func TestQueuePurgeAndDeleteChecks(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
	q := qtQueue(t, b, "q")
	for i := range 6 {
		qtPublish(t, b, "q", fmt.Sprint(i), i%2 == 0)
	}
	d0, d1 := qtGet(t, q, false), qtGet(t, q, false)
	q.Requeue([]Delivery{d1})
	d1 = qtGet(t, q, false) // the requeued one is ready again, then out again
	if string(d1.Message.Body) != "1" || !d1.Redelivered {
		t.Fatalf("got %q redelivered=%v", d1.Message.Body, d1.Redelivered)
	}
	d2 := qtGet(t, q, false)
	q.Requeue([]Delivery{d2}) // a requeued message is purged like any ready one
	if got := q.Purge(); got != 4 {
		t.Fatalf("purge returned %d, want 4", got)
	}
	qtCounts(t, q, 0, 0)
	if u := q.Unacked(); u != 2 {
		t.Fatalf("unacked after purge %d, want 2", u)
	}
	if got := q.Purge(); got != 0 {
		t.Fatalf("second purge returned %d", got)
	}
	// Unacked messages survive the purge and come back when requeued.
	q.Requeue([]Delivery{d1, d0})
	if got := qtDrain(q); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatalf("after purge and requeue got %q, want [0 1]", got)
	}

	for i := range 3 {
		qtPublish(t, b, "q", fmt.Sprint("again", i), true)
	}
	// The runtime's counts decide if-empty and if-unused.
	_, err := b.DeleteQueue(ctx, DefaultVhost, "c1", "q", QueueDeleteCheck{IfEmpty: true})
	wantModelError(t, err, ErrPreconditionFailed, "queue 'q' in vhost '/' not empty")
	c, _ := qtConsumer("c", NewCredit(1))
	if err := q.Consume(c); err != nil {
		t.Fatal(err)
	}
	_, err = b.DeleteQueue(ctx, DefaultVhost, "c1", "q", QueueDeleteCheck{IfUnused: true})
	wantModelError(t, err, ErrPreconditionFailed, "queue 'q' in vhost '/' in use")
	if _, ok := b.LookupQueue(DefaultVhost, "q"); !ok {
		t.Fatal("a refused delete deleted the queue")
	}
	qtCounts(t, q, 2, 1)
	n, err := b.DeleteQueue(ctx, DefaultVhost, "c1", "q", QueueDeleteCheck{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("delete returned %d messages, want 2", n)
	}
	if _, ok := b.LookupQueue(DefaultVhost, "q"); ok {
		t.Fatal("queue still there")
	}

	// An empty queue with only unacked messages passes if-empty.
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "e"})
	qtPublish(t, b, "e", "x", false)
	e := qtQueue(t, b, "e")
	qtGet(t, e, false)
	if n, err := b.DeleteQueue(ctx, DefaultVhost, "c1", "e", QueueDeleteCheck{IfEmpty: true, IfUnused: true}); err != nil || n != 0 {
		t.Fatalf("delete if-empty of a queue with nothing ready: %d %v", n, err)
	}
}

func TestQueuePublishResult(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "tq"})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq2", Durable: true})
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "fan", Type: "fanout"})
	for _, q := range []string{"dq", "tq", "dq2"} {
		mustBindQueue(t, b, DefaultVhost, "fan", q, "", nil)
	}
	for _, c := range []struct {
		queue      string
		persistent bool
		durable    bool
	}{
		{"dq", true, true},
		{"dq", false, false},
		{"tq", true, false},
		{"tq", false, false},
	} {
		res := qtPublish(t, b, c.queue, "x", c.persistent)
		if res.Durable() != c.durable {
			t.Fatalf("%s persistent=%v: Durable() = %v", c.queue, c.persistent, res.Durable())
		}
		if err := res.Wait(t.Context()); err != nil {
			t.Fatalf("%s persistent=%v: Wait: %v", c.queue, c.persistent, err)
		}
	}
	res, err := b.Publish(DefaultVhost, "fan", []string{"k"}, nil, &Message{Exchange: "fan", RoutingKey: "k", Body: []byte("f"), Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Routed != 3 || !res.Durable() || len(res.pending) != 2 {
		t.Fatalf("fanout publish: routed %d durable %v pending %d", res.Routed, res.Durable(), len(res.pending))
	}
	qtWait(t, res)
}

// qtMsg is a message with every field set, distinct per i.
func qtMsg(exchange, key string, i int, persistent bool) *Message {
	return &Message{
		Exchange:   exchange,
		RoutingKey: key,
		Properties: []byte{0x90, 0x00, 0x0a, byte(i)},
		Body:       []byte(fmt.Sprintf("body-%d-%s", i, strings.Repeat("x", i))),
		Persistent: persistent,
		Timestamp:  1_700_000_000_000 + int64(i)*1001,
	}
}

func qtSameMessage(t testing.TB, got, want *Message) {
	t.Helper()
	if got.Exchange != want.Exchange || got.RoutingKey != want.RoutingKey || !bytes.Equal(got.Properties, want.Properties) ||
		!bytes.Equal(got.Body, want.Body) || got.Timestamp != want.Timestamp || got.Persistent != want.Persistent {
		t.Fatalf("message\n got: %+v\nwant: %+v", *got, *want)
	}
}

func TestQueueDurability(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq2", Durable: true})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "tq"})
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "ex", Type: "direct", Durable: true})
	mustBindQueue(t, b, DefaultVhost, "ex", "dq", "rk", nil)
	mustBindQueue(t, b, DefaultVhost, "ex", "dq2", "rk", nil)
	mustBindQueue(t, b, DefaultVhost, "ex", "tq", "rk", nil)

	// 0, 1 persistent; 2 transient; 3..6 persistent; 7 empty body and
	// properties.
	var msgs []*Message
	for i := range 8 {
		m := qtMsg("ex", "rk", i, i != 2)
		if i == 7 {
			m.Body, m.Properties = []byte{}, nil
		}
		msgs = append(msgs, m)
		res, err := b.Publish(DefaultVhost, "ex", []string{"rk"}, nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if res.Routed != 3 || res.Durable() != m.Persistent {
			t.Fatalf("publish %d: routed %d durable %v", i, res.Routed, res.Durable())
		}
		qtWait(t, res)
	}
	dq := qtQueue(t, b, "dq")
	d0 := qtGet(t, dq, false)
	d1 := qtGet(t, dq, false)
	d2 := qtGet(t, dq, false)
	d3 := qtGet(t, dq, true) // no-ack: settled
	d4 := qtGet(t, dq, false)
	dq.Ack([]Delivery{d0})
	dq.Discard([]Delivery{d4})
	for i, d := range []Delivery{d0, d1, d2, d3, d4} {
		qtSameMessage(t, d.Message, msgs[i])
	}
	qtCounts(t, dq, 3, 0)
	// d1 and d2 (transient) stay unsettled; dq2 is left alone: everything
	// persistent in it comes back, not redelivered.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openTestBroker(t, dir)
	defer b.Close()
	if _, ok := b.LookupQueue(DefaultVhost, "tq"); ok {
		t.Fatal("a transient queue survived a restart")
	}
	if _, err := b.Queue(DefaultVhost, "c1", "tq"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Queue of a transient queue after restart: %v", err)
	}
	dq = qtQueue(t, b, "dq")
	qtCounts(t, dq, 4, 0)
	// 0 was acked, 3 delivered with no-ack and 4 discarded: gone. 1 was
	// delivered and not settled: redelivered. 2 was transient. 5, 6 and 7
	// were never delivered.
	for _, want := range []struct {
		i           int
		redelivered bool
	}{{1, true}, {5, false}, {6, false}, {7, false}} {
		d := qtGet(t, dq, false)
		qtSameMessage(t, d.Message, msgs[want.i])
		if d.Redelivered != want.redelivered {
			t.Fatalf("message %d: redelivered %v, want %v", want.i, d.Redelivered, want.redelivered)
		}
		dq.Ack([]Delivery{d})
	}
	qtCounts(t, dq, 0, 0)
	dq2 := qtQueue(t, b, "dq2")
	var got []int
	for {
		d, ok := dq2.Get(t.Context(), false)
		if !ok {
			break
		}
		if d.Redelivered {
			t.Fatalf("dq2 message %q redelivered", d.Message.Body)
		}
		i := slices.IndexFunc(msgs, func(m *Message) bool { return bytes.Equal(m.Body, d.Message.Body) })
		if i < 0 {
			t.Fatalf("dq2 got unknown message %q", d.Message.Body)
		}
		qtSameMessage(t, d.Message, msgs[i])
		got = append(got, i)
	}
	if want := []int{0, 1, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("dq2 recovered %v, want %v", got, want)
	}
}

func TestQueueDurabilityEmptyMessage(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	want := &Message{Exchange: "", RoutingKey: "dq", Body: []byte{}, Persistent: true, Timestamp: 42}
	res, err := b.Publish(DefaultVhost, "", []string{"dq"}, nil, want)
	if err != nil {
		t.Fatal(err)
	}
	qtWait(t, res)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	d := qtGet(t, qtQueue(t, b, "dq"), true)
	if d.Message.Body == nil || len(d.Message.Body) != 0 || len(d.Message.Properties) != 0 ||
		d.Message.RoutingKey != "dq" || d.Message.Timestamp != 42 || !d.Message.Persistent || d.Redelivered {
		t.Fatalf("recovered %+v redelivered=%v", *d.Message, d.Redelivered)
	}
}

// TestQueueFlushThenCrash checks that FlushQueues persists settlements: a
// copy of the data directory taken right after it (a crash, no Close)
// recovers exactly the unsettled messages, every one flagged redelivered
// (after a crash the broker cannot know which went out).
func TestQueueFlushThenCrash(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	var msgs []*Message
	for i := range 6 {
		m := qtMsg("", "dq", i, true)
		msgs = append(msgs, m)
		res, err := b.Publish(DefaultVhost, "", []string{"dq"}, nil, m)
		if err != nil {
			t.Fatal(err)
		}
		qtWait(t, res)
	}
	dq := qtQueue(t, b, "dq")
	var ds []Delivery
	for range 4 {
		ds = append(ds, qtGet(t, dq, false))
	}
	dq.Ack([]Delivery{ds[0], ds[2]})
	b.FlushQueues()
	crashed := t.TempDir()
	crashcopy.Into(t, dir, crashed)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openTestBroker(t, crashed)
	defer b.Close()
	dq = qtQueue(t, b, "dq")
	qtCounts(t, dq, 4, 0)
	for _, want := range []struct {
		i           int
		redelivered bool
	}{{1, true}, {3, true}, {4, true}, {5, true}} {
		d := qtGet(t, dq, false)
		qtSameMessage(t, d.Message, msgs[want.i])
		if d.Redelivered != want.redelivered {
			t.Fatalf("message %d: redelivered %v, want %v", want.i, d.Redelivered, want.redelivered)
		}
	}
}

// TestQueueCrashFlagsDeliveredRedelivered covers messages delivered after
// the last flush of the delivery mark, then a crash: they must come back
// flagged redelivered, not as new. It crashes twice: once after a run that
// followed a crash, once after a run that followed a clean shutdown (whose
// mark must not survive the start that read it). A clean shutdown keeps
// the exact flags.
func TestQueueCrashFlagsDeliveredRedelivered(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	for i := range 6 {
		qtWait(t, qtPublish(t, b, "dq", fmt.Sprint(i), true))
	}
	b.FlushQueues()
	dq := qtQueue(t, b, "dq")
	d0 := qtGet(t, dq, false) // delivered after the flush, never settled
	crashed := t.TempDir()
	crashcopy.Into(t, dir, crashed)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if string(d0.Message.Body) != "0" || d0.Redelivered {
		t.Fatalf("first delivery %q redelivered=%v", d0.Message.Body, d0.Redelivered)
	}

	// The clean run: only what went out comes back flagged.
	b = openTestBroker(t, dir)
	dq = qtQueue(t, b, "dq")
	for i := range 3 {
		d := qtGet(t, dq, false)
		if want := fmt.Sprint(i); string(d.Message.Body) != want || d.Redelivered != (i == 0) {
			t.Fatalf("after a clean shutdown: %q redelivered=%v, want %s redelivered=%v", d.Message.Body, d.Redelivered, want, i == 0)
		}
	}
	// Crash this run too: 1 and 2 went out after a clean start.
	crashedAgain := t.TempDir()
	crashcopy.Into(t, dir, crashedAgain)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []string{crashed, crashedAgain} {
		b = openTestBroker(t, c)
		dq = qtQueue(t, b, "dq")
		qtCounts(t, dq, 6, 0)
		for i := range 6 {
			d := qtGet(t, dq, false)
			if want := fmt.Sprint(i); string(d.Message.Body) != want || !d.Redelivered {
				t.Fatalf("after a crash: %q redelivered=%v, want %s redelivered", d.Message.Body, d.Redelivered, want)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueueRestartTwice checks that settlements made after a restart are
// kept by the next one, and that FlushQueues before Close changes nothing.
func TestQueueRestartTwice(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	for i := range 10 {
		qtWait(t, qtPublish(t, b, "dq", fmt.Sprint(i), true))
	}
	dq := qtQueue(t, b, "dq")
	for range 3 {
		qtGet(t, dq, true)
	}
	d := qtGet(t, dq, false)
	b.FlushQueues()
	dq.Requeue([]Delivery{d})
	b.FlushQueues()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Each round settles the first message, which is the one left
	// unsettled by the round before, and leaves the next one unsettled.
	for round := range 3 {
		b = openTestBroker(t, dir)
		dq = qtQueue(t, b, "dq")
		qtCounts(t, dq, 7-round, 0)
		first := qtGet(t, dq, true)
		second := qtGet(t, dq, false)
		if want := fmt.Sprint(3 + round); string(first.Message.Body) != want || !first.Redelivered {
			t.Fatalf("round %d: first %q redelivered=%v, want %s redelivered", round, first.Message.Body, first.Redelivered, want)
		}
		if want := fmt.Sprint(4 + round); string(second.Message.Body) != want || second.Redelivered {
			t.Fatalf("round %d: second %q redelivered=%v, want %s", round, second.Message.Body, second.Redelivered, want)
		}
		if round == 1 {
			b.FlushQueues()
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	if got := qtDrain(qtQueue(t, b, "dq")); !slices.Equal(got, []string{"6", "7", "8", "9"}) {
		t.Fatalf("left %q, want [6 7 8 9]", got)
	}
}

func TestQueueSegmentsDeletedWhenAcked(t *testing.T) {
	dir := t.TempDir()
	cfg := storage.DefaultLogConfig()
	cfg.SegmentBytes = 1024
	if got := queueLogConfig(cfg).SegmentBytes; got != 1024 {
		t.Fatalf("queue segment bytes %d, want 1024", got)
	}
	if got := queueLogConfig(storage.DefaultLogConfig()).SegmentBytes; got != 64<<20 {
		t.Fatalf("default queue segment bytes %d, want 64MiB", got)
	}
	open := func() *Broker {
		b, err := Open(Options{DataDir: dir, LogDefaults: cfg})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open()
	info := mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	qdir := filepath.Join(dir, "queues", info.ID.String())
	const n = 200
	body := strings.Repeat("b", 100)
	for i := range n {
		qtWait(t, qtPublish(t, b, "dq", fmt.Sprint(i, body), true))
	}
	before := qtSegments(t, qdir)
	if before < 10 {
		t.Fatalf("only %d segments for %d messages of 1KiB segments", before, n)
	}
	dq := qtQueue(t, b, "dq")
	// Settling all but the first deletes nothing: the low mark stays.
	var first Delivery
	for i := range n {
		d := qtGet(t, dq, false)
		if i == 0 {
			first = d
		} else {
			dq.Ack([]Delivery{d})
		}
	}
	b.FlushQueues()
	if got := qtSegments(t, qdir); got != before {
		t.Fatalf("%d segments with the first message unsettled, want %d", got, before)
	}
	dq.Ack([]Delivery{first})
	b.FlushQueues()
	after := qtSegments(t, qdir)
	if after >= before || after != 1 {
		t.Fatalf("%d segments after everything was acked, %d before; want 1", after, before)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open()
	defer b.Close()
	dq = qtQueue(t, b, "dq")
	qtCounts(t, dq, 0, 0)
	// New messages after the restart are kept, and go in turn.
	qtWait(t, qtPublish(t, b, "dq", "new", true))
	if got := qtDrain(dq); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("after restart got %q", got)
	}
}

func TestQueueRedeclaredIsEmpty(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	ctx := t.Context()
	old := mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
	oldDir := filepath.Join(dir, "queues", old.ID.String())
	if _, err := os.Stat(oldDir); err != nil {
		t.Fatalf("queue directory: %v", err)
	}
	for i := range 3 {
		qtWait(t, qtPublish(t, b, "q", fmt.Sprint(i), true))
	}
	oldQ := qtQueue(t, b, "q")
	n, err := b.DeleteQueue(ctx, DefaultVhost, "c1", "q", QueueDeleteCheck{})
	if err != nil || n != 3 {
		t.Fatalf("delete: %d %v", n, err)
	}
	if _, err := os.Stat(oldDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("deleted queue's directory: %v", err)
	}
	cur := mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
	if cur.ID == old.ID {
		t.Fatal("redeclared queue has the old id")
	}
	q := qtQueue(t, b, "q")
	if q == oldQ {
		t.Fatal("redeclared queue has the old runtime")
	}
	qtCounts(t, q, 0, 0)
	if _, ok := q.Get(t.Context(), true); ok {
		t.Fatal("redeclared queue has a message")
	}
	qtWait(t, qtPublish(t, b, "q", "fresh", true))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	if got := qtDrain(qtQueue(t, b, "q")); !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("after restart got %q, want [fresh]", got)
	}
	if _, err := os.Stat(oldDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("deleted queue's directory after restart: %v", err)
	}
}

// TestQueueStaleDirectoryRemoved checks that a queue directory the model
// does not know (a delete that crashed before removing it) goes at start.
func TestQueueStaleDirectoryRemoved(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	info := mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "queues", QueueID{1}.String())
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale queue directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "queues", info.ID.String())); err != nil {
		t.Fatalf("live queue directory: %v", err)
	}
}

// TestQueueAcksAheadOfLog covers a crash that loses the tail of a queue's
// log after the acks file recorded settlements in it (a consumer acked a
// message before its fsync, and the flusher wrote the acks file): the
// offsets past the log's end are reused by new messages, which must not be
// taken as settled.
func TestQueueAcksAheadOfLog(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	info := mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	for i := range 2 {
		qtWait(t, qtPublish(t, b, "dq", fmt.Sprint("old", i), true))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The acks file as written when offsets 0..4 were settled and 4 was
	// the last delivered, though only 0 and 1 reached the disk.
	s := &queueStore{low: 3, delivered: 4, acked: map[int64]struct{}{4: {}}, dirty: true}
	snap, ok := s.snapshot()
	if !ok {
		t.Fatal("no snapshot")
	}
	if err := os.WriteFile(filepath.Join(dir, "queues", info.ID.String(), acksFile), snap.data, 0o644); err != nil {
		t.Fatal(err)
	}

	b = openTestBroker(t, dir)
	dq := qtQueue(t, b, "dq")
	qtCounts(t, dq, 0, 0)
	for i := range 4 {
		qtWait(t, qtPublish(t, b, "dq", fmt.Sprint("new", i), true))
	}
	qtCounts(t, dq, 4, 0)
	d := qtGet(t, dq, false)
	if d.Redelivered {
		t.Fatal("a new message is redelivered")
	}
	dq.Ack([]Delivery{d})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	dq = qtQueue(t, b, "dq")
	var got []string
	for {
		d, ok := dq.Get(t.Context(), true)
		if !ok {
			break
		}
		if d.Redelivered {
			t.Fatalf("message %q never delivered comes back redelivered", d.Message.Body)
		}
		got = append(got, string(d.Message.Body))
	}
	if want := []string{"new1", "new2", "new3"}; !slices.Equal(got, want) {
		t.Fatalf("after restart got %q, want %q", got, want)
	}
}

// TestQueueLargeMessageRecovery checks that a message larger than the
// recovery read size comes back.
func TestQueueLargeMessageRecovery(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "dq", Durable: true})
	big := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16)
	qtWait(t, qtPublish(t, b, "dq", "small", true))
	res, err := b.Publish(DefaultVhost, "", []string{"dq"}, nil, &Message{RoutingKey: "dq", Body: big, Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	qtWait(t, res)
	qtWait(t, qtPublish(t, b, "dq", "after", true))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTestBroker(t, dir)
	defer b.Close()
	dq := qtQueue(t, b, "dq")
	qtCounts(t, dq, 3, 0)
	qtGet(t, dq, true)
	if d := qtGet(t, dq, true); !bytes.Equal(d.Message.Body, big) {
		t.Fatalf("large message body of %d bytes, want %d", len(d.Message.Body), len(big))
	}
	if d := qtGet(t, dq, true); string(d.Message.Body) != "after" {
		t.Fatalf("got %q after the large message", d.Message.Body)
	}
}

func TestQueueConcurrentPublishConsume(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "cq", Durable: true})
	q := qtQueue(t, b, "cq")
	const publishers, per = 4, 300
	const total = publishers * per
	const maxRequeues = 25

	type arrival struct {
		who string
		d   Delivery
	}
	// Deliver runs under the queue's lock and must not block: the channel
	// holds every delivery there can be.
	arrivals := make(chan arrival, total+maxRequeues)
	chCredit := NewCredit(20)
	var consumers []*Consumer
	for i := range 2 {
		tag := fmt.Sprint("c", i)
		c := &Consumer{Tag: tag, Limit: NewCredit(8), Channel: chCredit, Deliver: func(d Delivery) { arrivals <- arrival{tag, d} }}
		consumers = append(consumers, c)
		if err := q.Consume(c); err != nil {
			t.Fatal(err)
		}
	}

	done := make(chan struct{})
	var pubs, bg sync.WaitGroup
	defer func() {
		select {
		case <-done:
		default:
			close(done)
		}
		pubs.Wait()
		bg.Wait()
	}()
	for p := range publishers {
		pubs.Go(func() {
			for i := range per {
				res, err := b.Publish(DefaultVhost, "", []string{"cq"}, nil,
					&Message{RoutingKey: "cq", Body: fmt.Appendf(nil, "%d/%d", p, i), Persistent: i%2 == 0})
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				if res.Routed != 1 {
					t.Errorf("publish routed to %d queues", res.Routed)
					return
				}
				if i%100 == 0 {
					if err := res.Wait(t.Context()); err != nil {
						t.Errorf("wait: %v", err)
					}
				}
			}
		})
	}
	// Settlements are flushed and the queue kicked while all this goes on.
	bg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			b.FlushQueues()
			q.Kick()
		}
	})
	// A basic.get poller competes with the consumers.
	bg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if d, ok := q.Get(t.Context(), false); ok {
				arrivals <- arrival{"get", d}
			}
		}
	})

	acked := make(map[string]bool, total)
	requeued := map[string]bool{}
	last := map[string]int{} // receiver and publisher -> last index seen first-time
	deadline := time.After(60 * time.Second)
	for len(acked) < total {
		var a arrival
		select {
		case a = <-arrivals:
		case <-deadline:
			t.Fatalf("timed out with %d of %d acked", len(acked), total)
		}
		body := string(a.d.Message.Body)
		if acked[body] {
			t.Fatalf("%s delivered to %s after it was acked", body, a.who)
		}
		if a.d.Redelivered {
			if !requeued[body] {
				t.Fatalf("%s redelivered to %s but never requeued", body, a.who)
			}
		} else {
			if requeued[body] {
				t.Fatalf("%s delivered again to %s without the redelivered flag", body, a.who)
			}
			// First deliveries reach each receiver in publish order.
			var p, i int
			if _, err := fmt.Sscanf(body, "%d/%d", &p, &i); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			key := fmt.Sprint(a.who, "/", p)
			if prev, ok := last[key]; ok && i <= prev {
				t.Fatalf("%s got %s after %d/%d", a.who, body, p, prev)
			}
			last[key] = i
			// Requeue a few, to exercise requeueing under load.
			if len(requeued) < maxRequeues && i%37 == 5 {
				requeued[body] = true
				q.Requeue([]Delivery{a.d})
				continue
			}
		}
		acked[body] = true
		q.Ack([]Delivery{a.d})
	}
	close(done)
	pubs.Wait()
	bg.Wait()
	select {
	case a := <-arrivals:
		t.Fatalf("extra delivery of %q to %s", a.d.Message.Body, a.who)
	default:
	}
	if m, _ := q.Counts(); m != 0 {
		t.Fatalf("%d messages left", m)
	}
	if u := q.Unacked(); u != 0 {
		t.Fatalf("%d unacked", u)
	}
	if len(requeued) == 0 {
		t.Fatal("nothing was requeued")
	}
	if chCredit.Used() != 0 {
		t.Fatalf("channel credit used %d at the end", chCredit.Used())
	}
	for _, c := range consumers {
		if c.Limit.Used() != 0 {
			t.Fatalf("%s credit used %d at the end", c.Tag, c.Limit.Used())
		}
	}
}

func TestQueueDeleteVhost(t *testing.T) {
	dir := t.TempDir()
	b := openTestBroker(t, dir)
	defer b.Close()
	ctx := t.Context()
	if err := b.CreateVhost(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	info, _, err := b.DeclareQueue(ctx, "v", "c1", QueueSpec{Name: "q", Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	qdir := filepath.Join(dir, "queues", info.ID.String())
	res, err := b.Publish("v", "", []string{"q"}, nil, &Message{RoutingKey: "q", Body: []byte("x"), Persistent: true})
	if err != nil || res.Routed != 1 {
		t.Fatalf("publish: %+v %v", res, err)
	}
	qtWait(t, res)
	q, err := b.Queue("v", "c1", "q")
	if err != nil {
		t.Fatal(err)
	}
	c, s := qtConsumer("c", nil)
	if err := q.Consume(c); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteVhost(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if s.cancelled.Load() != 1 {
		t.Fatalf("Cancelled called %d times", s.cancelled.Load())
	}
	if _, err := os.Stat(qdir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("queue directory of a deleted vhost: %v", err)
	}
}

// TestQueuePaging checks that a durable queue deeper than its memory limit
// keeps only about that many bytes of ready messages in memory, reads the
// rest back from its log in order, and recovers the same way after a
// restart.
func TestQueuePaging(t *testing.T) {
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
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "deep", Durable: true})
	body := func(i int) string { return fmt.Sprintf("%06d-%s", i, strings.Repeat("x", 1000)) }
	const n = 2000 // about 2 MB, 30 times the limit
	var pending []PublishResult
	for i := range n {
		// Every tenth message is transient: it stays in memory and keeps
		// its place in the order.
		pending = append(pending, qtPublish(t, b, "deep", body(i), i%10 != 9))
	}
	for _, p := range pending {
		qtWait(t, p)
	}
	q := qtQueue(t, b, "deep")
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	transient := int64(n / 10 * len(body(0)))
	if r := q.ResidentBytes(); r > limit+transient+256*int64(len(body(0))) {
		t.Fatalf("%d bytes resident with a limit of %d (%d of them transient)", r, limit, transient)
	}
	qtCounts(t, q, n, 0)

	// Take the first 100, requeue 10 of them (read back from the log when
	// paged out), ack the rest.
	var ds []Delivery
	for i := range 100 {
		d := qtGet(t, q, false)
		if got := string(d.Message.Body); got != body(i) {
			t.Fatalf("message %d: got %.10q, want %.10q", i, got, body(i))
		}
		ds = append(ds, d)
	}
	q.Requeue(ds[:10])
	q.Ack(ds[10:])
	for i := range 10 {
		d := qtGet(t, q, false)
		if got := string(d.Message.Body); got != body(i) || !d.Redelivered {
			t.Fatalf("requeued %d: got %.10q redelivered %v", i, got, d.Redelivered)
		}
		q.Ack([]Delivery{d})
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart the persistent ones from 100 on come back paged
	// out (recovery reads no body), read back as delivered.
	b = open()
	defer b.Close()
	q = qtQueue(t, b, "deep")
	if r := q.ResidentBytes(); r != 0 {
		t.Fatalf("%d bytes resident after recovery, want none: recovered messages are paged out", r)
	}
	var want []string
	for i := 100; i < n; i++ {
		if i%10 != 9 {
			want = append(want, body(i))
		}
	}
	if got := qtDrain(q); !slices.Equal(got, want) {
		t.Fatalf("recovered %d messages, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	if r := q.ResidentBytes(); r != 0 {
		t.Fatalf("%d bytes resident in an empty queue", r)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
