package broker

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// streamSpec is the declaration of a stream queue.
func streamSpec(name string, args Table) QueueSpec {
	a := Table{"x-queue-type": "stream"}
	for k, v := range args {
		a[k] = v
	}
	return QueueSpec{Name: name, Durable: true, Arguments: a}
}

// openStreamBroker opens a broker on dir, closed at the end of the test.
func openStreamBroker(t *testing.T, dir string) *Broker {
	b := openTestBroker(t, dir)
	t.Cleanup(func() { b.Close() })
	return b
}

// hiddenTopics lists the hidden stream topics in the state.
func hiddenTopics(b *Broker) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, ts := range b.state.Topics() {
		if hiddenTopic(ts.Name) {
			out = append(out, ts.Name)
		}
	}
	return out
}

// TestStreamTopicsFollowQueues: a stream queue outside the default vhost
// has a hidden topic that goes with it, also when its vhost is deleted;
// one in the default vhost with a name Kafka cannot use has one too.
func TestStreamTopicsFollowQueues(t *testing.T) {
	ctx := context.Background()
	b := openStreamBroker(t, t.TempDir())
	if err := b.CreateVhost(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	q := mustDeclareQueue(t, b, "v", "", streamSpec("s", nil))
	if got := hiddenTopics(b); len(got) != 1 || got[0] != StreamTopicName("v", "s", q.ID) {
		t.Fatalf("hidden topics %v", got)
	}
	mustDeclareQueue(t, b, DefaultVhost, "", streamSpec("not a topic name", nil))
	if got := hiddenTopics(b); len(got) != 2 {
		t.Fatalf("hidden topics %v, want 2", got)
	}
	if len(b.Topics()) != 0 {
		t.Fatalf("hidden topics are listed: %v", b.Topics())
	}
	if err := b.DeleteVhost(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if got := hiddenTopics(b); len(got) != 1 {
		t.Fatalf("hidden topics after deleting the vhost: %v", got)
	}
}

// TestStreamReconcileOnOpen: what a crash between the two halves of a
// declaration or a deletion leaves is removed on the next open.
func TestStreamReconcileOnOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openStreamBroker(t, dir)
	if err := b.CreateVhost(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	// A declaration that created its hidden topic and never logged the
	// queue.
	b.mu.Lock()
	if err := b.createTopicLocked(ctx, streamTopicPrefix+"00112233445566778899aabbccddeeff", 1, nil); err != nil {
		t.Fatal(err)
	}
	b.mu.Unlock()
	// A deletion over Kafka that removed the topic and not the queue.
	mustDeclareQueue(t, b, DefaultVhost, "", streamSpec("orders", nil))
	kept := mustDeclareQueue(t, b, "v", "", streamSpec("kept", nil))
	b.mu.Lock()
	if err := b.deleteTopicLocked(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	b.mu.Unlock()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openStreamBroker(t, dir)
	if _, ok := b.LookupQueue(DefaultVhost, "orders"); ok {
		t.Fatal("the stream queue whose topic was deleted is still there")
	}
	if _, ok := b.LookupQueue("v", "kept"); !ok {
		t.Fatal("a stream queue with its topic was deleted")
	}
	if got := hiddenTopics(b); len(got) != 1 || got[0] != StreamTopicName("v", "kept", kept.ID) {
		t.Fatalf("hidden topics after reopening: %v", got)
	}
}

// TestStreamAdoptsTopic: declaring a stream queue named as an existing
// topic adopts it, partitions and records included, and merges its
// retention arguments into the topic's configs.
func TestStreamAdoptsTopic(t *testing.T) {
	ctx := context.Background()
	b := openStreamBroker(t, t.TempDir())
	if _, err := b.CreateTopic(ctx, "t3", 3, map[string]string{"cleanup.policy": "delete"}); err != nil {
		t.Fatal(err)
	}
	mustDeclareQueue(t, b, DefaultVhost, "", streamSpec("t3", Table{"x-max-age": "1D"}))
	ti, ok := b.Topic("t3")
	if !ok || ti.Partitions != 3 {
		t.Fatalf("topic %+v", ti)
	}
	b.mu.Lock()
	ts, _ := b.state.Topic("t3")
	b.mu.Unlock()
	if ts.Configs["retention.ms"] != "86400000" || ts.Configs["cleanup.policy"] != "delete" {
		t.Fatalf("configs %v", ts.Configs)
	}
	s, ok, err := b.Stream(DefaultVhost, "", "t3")
	if err != nil || !ok || s.Partitions() != 3 {
		t.Fatalf("stream: %v %v", ok, err)
	}
}

func TestParseStreamOffset(t *testing.T) {
	now := time.Unix(10_000, 0)
	for _, c := range []struct {
		v    any
		want StreamOffset
	}{
		{nil, StreamNext}, {"next", StreamNext}, {"first", StreamFirst}, {"last", StreamLast},
		{int64(5), StreamAtOffset(5)}, {int8(0), StreamAtOffset(0)}, {uint32(7), StreamAtOffset(7)},
		{time.Unix(9_000, 0), StreamAtTime(time.Unix(9_000, 0))},
		{"30m", StreamAtTime(now.Add(-30 * time.Minute))}, {"1D", StreamAtTime(now.Add(-24 * time.Hour))},
		{"2Y", StreamAtTime(now.Add(-2 * 365 * 24 * time.Hour))}, {"1M", StreamAtTime(now.Add(-30 * 24 * time.Hour))},
		{"10s", StreamAtTime(now.Add(-10 * time.Second))}, {"3h", StreamAtTime(now.Add(-3 * time.Hour))},
	} {
		got, err := ParseStreamOffset(c.v, now)
		if err != nil || got != c.want {
			t.Errorf("ParseStreamOffset(%#v) = %+v, %v; want %+v", c.v, got, err, c.want)
		}
	}
	for _, bad := range []any{"", "0m", "5", "5x", "forever", int64(-1), 1.5, true} {
		if got, err := ParseStreamOffset(bad, now); err == nil {
			t.Errorf("ParseStreamOffset(%#v) = %+v, want an error", bad, got)
		}
	}
}

// TestStreamTopicLimit: a stream queue that would need a topic over
// MaxTopics is refused with 406, and nothing is left behind.
func TestStreamTopicLimit(t *testing.T) {
	b, err := Open(Options{DataDir: t.TempDir(), MaxTopics: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	mustDeclareQueue(t, b, DefaultVhost, "", streamSpec("one", nil))
	_, _, err = b.DeclareQueue(context.Background(), DefaultVhost, "", streamSpec("two", nil))
	if !errors.Is(err, ErrPreconditionFailed) || !errors.Is(err, ErrLimitReached) {
		t.Fatalf("second stream over the topic limit: %v", err)
	}
	if _, ok := b.LookupQueue(DefaultVhost, "two"); ok {
		t.Fatal("the refused stream queue exists")
	}
}

// TestStreamReaderWaitsAndEnds: a reader of a 3-partition stream waits for
// any partition, reads records appended to each, ends with ctx's error
// when cancelled and with ErrStreamClosed when the stream is deleted,
// leaving no goroutine behind.
func TestStreamReaderWaitsAndEnds(t *testing.T) {
	ctx := context.Background()
	b := openStreamBroker(t, t.TempDir())
	if _, err := b.CreateTopic(ctx, "three", 3, nil); err != nil {
		t.Fatal(err)
	}
	mustDeclareQueue(t, b, DefaultVhost, "", streamSpec("three", nil))
	s, _, err := b.Stream(DefaultVhost, "", "three")
	if err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	r, err := s.NewReader(StreamNext, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan StreamRecord)
	errs := make(chan error, 1)
	next := func(ctx context.Context) {
		rec, err := r.Next(ctx)
		if err != nil {
			errs <- err
			return
		}
		got <- rec
	}
	for _, key := range []string{"a", "b", "c", "d"} {
		go next(ctx)
		if _, err := b.Publish(DefaultVhost, "", []string{"three"}, nil, &Message{RoutingKey: key, Body: []byte(key)}); err != nil {
			t.Fatal(err)
		}
		select {
		case rec := <-got:
			if string(rec.Message.Body) != key || rec.Partition != PartitionForKey([]byte(key), 3) {
				t.Fatalf("read %q from partition %d, want %q from %d", rec.Message.Body, rec.Partition, key, PartitionForKey([]byte(key), 3))
			}
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("no record within 10s")
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	go next(cctx)
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", err)
	}
	go next(ctx)
	if _, err := b.DeleteQueue(ctx, DefaultVhost, "", "three", QueueDeleteCheck{}); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Next after deletion: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the reader", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
