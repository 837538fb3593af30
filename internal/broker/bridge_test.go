package broker

import (
	"context"
	"testing"
	"time"
)

// bridgeTestWait bounds the waits of these tests; outcomes come much sooner.
const bridgeTestWait = time.Minute

// produceValues appends one record per value to a partition.
func produceValues(t *testing.T, b *Broker, topic string, partition int32, values ...string) {
	t.Helper()
	p, err := b.Partition(topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for _, v := range values {
		recs = append(recs, Record{Key: []byte("k"), Value: []byte(v), Timestamp: 1})
	}
	if _, err := p.Append(t.Context(), EncodeRecords(recs)); err != nil {
		t.Fatal(err)
	}
}

// getBodies takes n messages from a queue, waiting for them.
func getBodies(t *testing.T, b *Broker, queue string, n int) []string {
	t.Helper()
	q, err := b.Queue(DefaultVhost, "c1", queue)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	deadline := time.Now().Add(bridgeTestWait)
	for len(out) < n {
		d, ok := q.Get(t.Context(), true)
		if ok {
			out = append(out, string(d.Message.Body))
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d messages (%v)", queue, len(out), n, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return out
}

func startTestBridge(t *testing.T, b *Broker, rule BridgeRule) *Bridges {
	t.Helper()
	bs, err := b.StartBridges([]BridgeRule{rule}, BridgeOptions{RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// TestBridgeFollowsTopicChanges: a rule starting at latest skips what the
// topic held before it began; partitions added to the topic later are
// bridged from their start, however soon records reach them; a topic
// deleted and created again is bridged anew.
func TestBridgeFollowsTopicChanges(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "x", Type: "fanout", Durable: true})
	mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
	mustBindQueue(t, b, DefaultVhost, "x", "q", "", nil)
	if _, err := b.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	produceValues(t, b, "t", 0, "before")
	startTestBridge(t, b, BridgeRule{Name: "r", Topic: "t", Exchange: "x"})
	committed := func() bool {
		_, ok := b.CommittedOffsets(BridgeGroup("r"))[TopicPartition{Topic: "t", Partition: 0}]
		return ok
	}
	waitFor(t, "the rule to begin", committed)
	produceValues(t, b, "t", 0, "a0")
	if got := getBodies(t, b, "q", 1); got[0] != "a0" {
		t.Fatalf("got %v, want a0 (start latest)", got)
	}

	if err := b.CreatePartitions(ctx, "t", 2); err != nil {
		t.Fatal(err)
	}
	produceValues(t, b, "t", 1, "b0", "b1")
	if got := getBodies(t, b, "q", 2); got[0] != "b0" || got[1] != "b1" {
		t.Fatalf("added partition: got %v", got)
	}

	if err := b.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted topic's offsets to go", func() bool { return !committed() })
	if _, err := b.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rule to begin on the new topic", committed)
	produceValues(t, b, "t", 0, "c0")
	if got := getBodies(t, b, "q", 1); got[0] != "c0" {
		t.Fatalf("recreated topic: got %v", got)
	}
}

// TestBridgeWaitsOutAMissingExchange: records that arrive while the
// exchange is gone wait, and are published once it is back; none is lost.
func TestBridgeWaitsOutAMissingExchange(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	if _, err := b.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	declare := func() {
		mustDeclareExchange(t, b, DefaultVhost, ExchangeSpec{Name: "x", Type: "fanout", Durable: true})
		mustDeclareQueue(t, b, DefaultVhost, "c1", QueueSpec{Name: "q", Durable: true})
		mustBindQueue(t, b, DefaultVhost, "x", "q", "", nil)
	}
	declare()
	bs := startTestBridge(t, b, BridgeRule{Name: "r", Topic: "t", Exchange: "x"})
	waitFor(t, "the rule to start", func() bool { return len(bs.Stats()) == 1 && bridgeParts(bs) == 1 })
	produceValues(t, b, "t", 0, "0")
	getBodies(t, b, "q", 1)

	if err := b.DeleteExchange(ctx, DefaultVhost, "x", false); err != nil {
		t.Fatal(err)
	}
	produceValues(t, b, "t", 0, "1", "2")
	declare()
	got := getBodies(t, b, "q", 2)
	if got[0] != "1" || got[1] != "2" {
		t.Fatalf("got %v, want 1 and 2", got)
	}
	waitFor(t, "the lag to reach zero", func() bool { return bs.Stats()[0].Lag == 0 })
	if st := bs.Stats()[0]; st.Bridged != 3 {
		t.Errorf("stats %+v, want 3 bridged", st)
	}
}

// TestBridgeRuleErrors: StartBridges refuses rules it cannot run.
func TestBridgeRuleErrors(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	for i, rules := range [][]BridgeRule{
		{{Name: "r", Topic: "t"}},
		{{Topic: "t", Exchange: "x"}},
		{{Name: "r", Topic: "t", Exchange: "x"}, {Name: "r", Topic: "u", Exchange: "y"}},
	} {
		if _, err := b.StartBridges(rules, BridgeOptions{}); err == nil {
			t.Errorf("rules %d accepted: %+v", i, rules)
		}
	}
	b.Close()
	if _, err := b.StartBridges([]BridgeRule{{Name: "r", Topic: "t", Exchange: "x"}}, BridgeOptions{}); err == nil {
		t.Error("a closed broker started a bridge")
	}
}

// bridgeParts counts the partitions being bridged.
func bridgeParts(bs *Bridges) int {
	n := 0
	for _, r := range bs.rules {
		r.mu.Lock()
		n += len(r.parts)
		r.mu.Unlock()
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bridgeTestWait)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
