//go:build unix

package server

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/broker"
)

// TestBridgeSurvivesSIGKILL produces records over Kafka while a bridge rule
// publishes them into a durable queue, kills the server with SIGKILL in the
// middle, and starts it again: every record whose produce was acknowledged
// reaches the queue; some may reach it twice (at-least-once), and the test
// reports how many did.
func TestBridgeSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	kafkaAddr, amqpAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	env := []string{childKafkaEnv + "=" + kafkaAddr, childAMQPEnv + "=" + amqpAddr, childBridgeEnv + "=crash,crash-in,crash.x"}
	child := startServerChildEnv(t, dir, kafkaAddr, env...)
	ch := amqpChannel(t, amqpDial(t, amqpAddr))
	declareBridgeTarget(t, ch, "crash.x", "k", map[string]string{"crash-q": "classic"})

	// Produce, one record per request, until the server dies.
	var mu sync.Mutex
	acked := map[string]bool{}
	cl := kafkaClient(t, kafkaAddr, kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(10*time.Second))
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := 0; ; i++ {
			v := strconv.Itoa(i)
			if cl.ProduceSync(ctx, &kgo.Record{Topic: "crash-in", Key: []byte("k"), Value: []byte(v)}).FirstErr() != nil {
				return
			}
			mu.Lock()
			acked[v] = true
			mu.Unlock()
		}
	})
	// The rule's offsets are those of a consumer group Kafka clients can
	// read: kill once the rule has committed some way into the topic.
	adm := kadm.NewClient(kafkaClient(t, kafkaAddr))
	var committed int64
	waitUntil(t, "the rule commits past 300", func() bool {
		os, err := adm.FetchOffsets(context.Background(), broker.BridgeGroup("crash"))
		if err != nil {
			return false
		}
		o, ok := os.Lookup("crash-in", 0)
		committed = o.At
		return ok && committed >= 300
	})
	child.kill()
	cl.Close() // fails the produce in flight, if any
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no produce was acknowledged")
	}

	child = startServerChildEnv(t, dir, kafkaAddr, env...)
	ch = amqpChannel(t, amqpDial(t, amqpAddr))
	ctx := bridgeCtx(t)
	ds, err := ch.ConsumeWithContext(ctx, "crash-q", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	missing := func() int {
		n := 0
		for v := range acked {
			if seen[v] == 0 {
				n++
			}
		}
		return n
	}
	dup := 0
	for missing() > 0 {
		select {
		case d := <-ds:
			if seen[string(d.Body)]++; seen[string(d.Body)] > 1 {
				dup++
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d acknowledged records never reached the queue", missing(), len(acked))
		}
	}
	t.Logf("%d acknowledged records, all bridged across SIGKILL; %d delivered twice (committed %d before the kill)", len(acked), dup, committed)
	if int64(dup) > int64(len(seen))-committed {
		t.Errorf("%d duplicates: the rule did not resume at or after its committed offset %d", dup, committed)
	}
	if !strings.Contains(child.out.String(), "bridge resumes a partition") {
		t.Errorf("the restarted server did not log resuming; output:\n%s", child.out.String())
	}
}
