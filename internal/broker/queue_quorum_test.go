package broker

import (
	"encoding/binary"
	"hash/crc32"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wharfmq/wharf/internal/storage"
)

// qtDeliveryCount is a delivery's x-delivery-count header, -1 if absent.
func qtDeliveryCount(t testing.TB, d Delivery) int64 {
	t.Helper()
	bp, err := splitProperties(d.Message.Properties)
	if err != nil {
		t.Fatal(err)
	}
	h, err := bp.headers()
	if err != nil {
		t.Fatal(err)
	}
	v, ok := h[deliveryCountHeader]
	if !ok {
		return -1
	}
	n, ok := v.(int64)
	if !ok {
		t.Fatalf("x-delivery-count is %T", v)
	}
	return n
}

// TestQueueDeliveryCountsRecovered: the delivery counts of a durable
// quorum queue's returned messages come back after a restart, whether the
// messages are recovered in memory or paged out; settled messages leave
// no count behind.
func TestQueueDeliveryCountsRecovered(t *testing.T) {
	for _, limit := range []int64{0, 1} {
		dir := t.TempDir()
		open := func() *Broker {
			b, err := Open(Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig(), QueueMemoryBytes: limit})
			if err != nil {
				t.Fatalf("open broker: %v", err)
			}
			return b
		}
		b := open()
		mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "qq", Durable: true, Arguments: Table{"x-queue-type": "quorum"}})
		for _, body := range []string{"a", "b", "c"} {
			qtWait(t, qtPublish(t, b, "qq", body, true))
		}
		q := qtQueue(t, b, "qq")
		// a is returned twice, b once; c is returned once, then acked.
		for range 2 {
			q.Requeue([]Delivery{qtGet(t, q, false)})
		}
		da, db, dc := qtGet(t, q, false), qtGet(t, q, false), qtGet(t, q, false)
		q.Requeue([]Delivery{da, db, dc})
		for _, d := range []Delivery{qtGet(t, q, false), qtGet(t, q, false), qtGet(t, q, false)} {
			if string(d.Message.Body) == "c" {
				q.Ack([]Delivery{d})
			} else {
				q.Requeue([]Delivery{d})
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b = open()
		q = qtQueue(t, b, "qq")
		want := map[string]int64{"a": 4, "b": 2}
		for range 2 {
			d := qtGet(t, q, false)
			if got := qtDeliveryCount(t, d); got != want[string(d.Message.Body)] {
				t.Fatalf("limit %d: %s has x-delivery-count %d, want %d", limit, d.Message.Body, got, want[string(d.Message.Body)])
			}
		}
		qtCounts(t, q, 0, 0)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueueAcksFileWithoutCounts: an acks file written before delivery
// counts were kept (WQA1) is still read.
func TestQueueAcksFileWithoutCounts(t *testing.T) {
	dir := t.TempDir()
	b := []byte(acksMagicNoCounts)
	b = binary.BigEndian.AppendUint64(b, 3)
	b = binary.BigEndian.AppendUint64(b, 7)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint64(b, 5)
	b = binary.BigEndian.AppendUint64(b, 2)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	fs := storage.OSFS{}
	if err := storage.WriteFileAtomic(fs, filepath.Join(dir, acksFile), b); err != nil {
		t.Fatal(err)
	}
	s := &queueStore{fs: fs, dir: dir}
	if err := s.readAcks(); err != nil {
		t.Fatal(err)
	}
	if s.low != 3 || s.delivered != 7 || len(s.acked) != 2 || len(s.returns) != 0 {
		t.Fatalf("low %d delivered %d acked %v returns %v", s.low, s.delivered, s.acked, s.returns)
	}
}

// TestQueueQuorumSingleActivePriority: in a quorum queue with a single
// active consumer, a consumer of higher priority takes over once the
// active one has settled what it holds, whether by ack or by requeue (the
// requeued message then goes to the new active one); a classic queue
// keeps its first consumer.
func TestQueueQuorumSingleActivePriority(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "qq", Durable: true,
		Arguments: Table{"x-queue-type": "quorum", "x-single-active-consumer": true}})
	q := qtQueue(t, b, "qq")
	low, lowSink := qtConsumer("low", nil)
	low.Priority = 1
	if err := q.Consume(low); err != nil {
		t.Fatal(err)
	}
	qtPublish(t, b, "qq", "m0", false)
	held := lowSink.take()
	if got := qtBodies(held); !slices.Equal(got, []string{"m0"}) {
		t.Fatalf("low got %v, want [m0]", got)
	}
	high, highSink := qtConsumer("high", nil)
	high.Priority = 9
	if err := q.Consume(high); err != nil {
		t.Fatal(err)
	}
	qtPublish(t, b, "qq", "m1", false)
	if got := append(lowSink.take(), highSink.take()...); len(got) != 0 {
		t.Fatalf("delivered %v while low still held m0, want nothing", qtBodies(got))
	}
	qtCounts(t, q, 1, 2)
	// low gives m0 back: high becomes active and gets both, m0 first.
	q.Requeue(held)
	if got := qtBodies(highSink.take()); !slices.Equal(got, []string{"m0", "m1"}) {
		t.Fatalf("high got %v, want [m0 m1]", got)
	}
	if got := lowSink.take(); len(got) != 0 {
		t.Fatalf("low got %v after the switch", qtBodies(got))
	}

	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "cq", Arguments: Table{"x-single-active-consumer": true}})
	cq := qtQueue(t, b, "cq")
	first, firstSink := qtConsumer("first", nil)
	second, secondSink := qtConsumer("second", nil)
	second.Priority = 9
	for _, c := range []*Consumer{first, second} {
		if err := cq.Consume(c); err != nil {
			t.Fatal(err)
		}
	}
	qtPublish(t, b, "cq", "c0", false)
	if got := qtBodies(firstSink.take()); !slices.Equal(got, []string{"c0"}) || len(secondSink.take()) != 0 {
		t.Fatalf("classic queue: first got %v, want [c0] and nothing for second", got)
	}
}
