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

// TestAMQPConfirmedMessagesSurviveSIGKILL publishes persistent messages with
// publisher confirms to a durable queue while a consumer acks some of them,
// kills the server with SIGKILL at a random moment, and does it again over
// several rounds. At the end every message that was confirmed and never
// acked must be in the queue, exactly once; transient messages published
// alongside must all be gone. Acked messages may come back (acks reach disk
// once a second), but never twice.
func TestAMQPConfirmedMessagesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	rounds := 4
	if longTests() {
		rounds = 20
	}
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	url := "amqp://guest:guest@" + addr + "/"
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))

	confirmed := map[string]bool{} // persistent bodies confirmed
	acked := map[string]bool{}     // bodies acked by the consumer
	for round := range rounds {
		child := startServerChildEnv(t, dir, addr, childAMQPEnv+"="+addr)
		delay := time.Duration(50+rng.IntN(300)) * time.Millisecond
		n := publishUntilKilled(t, child, url, round, delay, confirmed, acked)
		if n == 0 {
			t.Fatalf("round %d: nothing confirmed", round)
		}
	}

	child := startServerChildEnv(t, dir, addr, childAMQPEnv+"="+addr)
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for {
		m, ok, err := ch.Get("crash", true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		seen[string(m.Body)]++
	}
	conn.Close()
	child.stop()

	var problems []string
	var present, comeBack int
	for body := range confirmed {
		switch {
		case seen[body] > 1:
			problems = append(problems, fmt.Sprintf("%s stored %d times", body, seen[body]))
		case seen[body] == 1 && acked[body]:
			comeBack++
		case seen[body] == 1:
			present++
		case !acked[body]:
			problems = append(problems, fmt.Sprintf("%s confirmed, never acked, and lost", body))
		}
	}
	for body := range seen {
		if strings.HasPrefix(body, "transient-") {
			problems = append(problems, fmt.Sprintf("transient message %s survived a crash", body))
		}
	}
	t.Logf("%d rounds: %d confirmed, %d acked; after the last crash %d unacked present, %d acked came back, %d messages in the queue",
		rounds, len(confirmed), len(acked), present, comeBack, len(seen))
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 20 {
			problems = problems[:20]
		}
		t.Fatalf("%d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}

// publishUntilKilled publishes (confirmed, persistent) and consumes (acking
// every other message) until the child is killed after delay. It records
// confirmed and acked bodies and returns how many were confirmed.
func publishUntilKilled(t *testing.T, child *serverChild, url string, round int, delay time.Duration, confirmed, acked map[string]bool) int {
	t.Helper()
	pub, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pch, err := pub.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pch.QueueDeclare("crash", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	sub, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sch, err := sub.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Qos(50, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := sch.Consume("crash", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	n := 0
	wg.Add(2)
	go func() { // the consumer acks every other message it gets
		defer wg.Done()
		i := 0
		for d := range deliveries {
			i++
			if i%2 == 0 && d.Ack(false) == nil {
				// An ack is only sure to be sent; count it as acked anyway:
				// acked messages may or may not come back.
				mu.Lock()
				acked[string(d.Body)] = true
				mu.Unlock()
			}
		}
	}()
	go func() {
		defer wg.Done()
		ctx := context.Background()
		for i := 0; ; i++ {
			body := fmt.Sprintf("r%d-m%d", round, i)
			if i%5 == 4 { // a transient one now and then: gone after any crash
				if pch.PublishWithContext(ctx, "", "crash", false, false, amqp091.Publishing{Body: []byte("transient-" + body)}) != nil {
					return
				}
				continue
			}
			dc, err := pch.PublishWithDeferredConfirmWithContext(ctx, "", "crash", false, false,
				amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(body)})
			if err != nil {
				return
			}
			ok, err := dc.WaitContext(ctx)
			if err != nil || !ok {
				return
			}
			mu.Lock()
			confirmed[body] = true
			n++
			mu.Unlock()
		}
	}()
	time.Sleep(delay)
	child.kill()
	wg.Wait()
	return n
}
