//go:build unix

package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestAMQPDedupSurvivesSIGKILL publishes persistent messages with a
// message_id, with publisher confirms, to a deduplicating durable queue and
// through a deduplicating durable exchange, and kills the server with
// SIGKILL at a random moment, over several rounds. After each restart it
// publishes every confirmed message again: each must be acked as a
// duplicate and not stored, so at the end every confirmed message is in its
// queue exactly once.
func TestAMQPDedupSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	rounds := 3
	if longTests() {
		rounds = 10
	}
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	url := "amqp://guest:guest@" + addr + "/"
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

	var confirmed []string
	for round := range rounds {
		child := startServerChildEnv(t, dir, addr, childAMQPEnv+"="+addr)
		ch := dedupCrashChannel(t, url)
		for _, id := range confirmed {
			if !dedupCrashPublish(ch, id) {
				t.Fatalf("round %d: the duplicate %s was not acked", round, id)
			}
		}
		ch.Close()
		delay := time.Duration(50+rng.IntN(250)) * time.Millisecond
		got := dedupPublishUntilKilled(t, child, url, round, delay)
		if len(got) == 0 {
			t.Fatalf("round %d: nothing confirmed", round)
		}
		confirmed = append(confirmed, got...)
	}

	child := startServerChildEnv(t, dir, addr, childAMQPEnv+"="+addr)
	ch := dedupCrashChannel(t, url)
	for _, id := range confirmed {
		if !dedupCrashPublish(ch, id) {
			t.Fatalf("the duplicate %s was not acked", id)
		}
	}
	seen := map[string]int{}
	for _, q := range []string{"dedup-crash", "dedup-crash-x"} {
		for {
			m, ok, err := ch.Get(q, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			seen[q+"/"+string(m.Body)]++
		}
	}
	ch.Close()
	child.stop()

	var problems []string
	for _, id := range confirmed {
		for _, q := range []string{"dedup-crash", "dedup-crash-x"} {
			if n := seen[q+"/"+id]; n != 1 {
				problems = append(problems, fmt.Sprintf("%s stored %d times in %s", id, n, q))
			}
		}
	}
	t.Logf("%d rounds: %d confirmed ids, %d messages stored", rounds, len(confirmed), len(seen))
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("%d problems:\n%s", len(problems), strings.Join(problems[:min(20, len(problems))], "\n"))
	}
}

// dedupCrashChannel connects, declares the deduplicating queue and exchange
// and returns a channel in confirm mode.
func dedupCrashChannel(t *testing.T, url string) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	args := amqp091.Table{"x-message-deduplication": true, "x-deduplication-window-size": int32(1_000_000)}
	if _, err := ch.QueueDeclare("dedup-crash", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("dedup-crash-x", "fanout", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("dedup-crash-x", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("dedup-crash-x", "", "dedup-crash-x", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return ch
}

// dedupCrashPublish publishes id (as message_id and body) to the
// deduplicating queue and through the deduplicating exchange, and reports
// whether both were acked.
func dedupCrashPublish(ch *amqp091.Channel, id string) bool {
	ctx := context.Background()
	p := amqp091.Publishing{DeliveryMode: amqp091.Persistent, MessageId: id, Body: []byte(id)}
	d1, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "dedup-crash", false, false, p)
	if err != nil {
		return false
	}
	d2, err := ch.PublishWithDeferredConfirmWithContext(ctx, "dedup-crash-x", "", false, false, p)
	if err != nil {
		return false
	}
	ok1, err1 := d1.WaitContext(ctx)
	ok2, err2 := d2.WaitContext(ctx)
	return ok1 && ok2 && err1 == nil && err2 == nil
}

// dedupPublishUntilKilled publishes new ids until the child is killed after
// delay, and returns those confirmed.
func dedupPublishUntilKilled(t *testing.T, child *serverChild, url string, round int, delay time.Duration) []string {
	t.Helper()
	ch := dedupCrashChannel(t, url)
	var mu sync.Mutex
	var confirmed []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			id := fmt.Sprintf("r%d-m%d", round, i)
			if !dedupCrashPublish(ch, id) {
				return
			}
			mu.Lock()
			confirmed = append(confirmed, id)
			mu.Unlock()
		}
	}()
	time.Sleep(delay)
	child.kill()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return confirmed
}
