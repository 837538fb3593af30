//go:build unix

package crashsuite

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

var (
	killsFlag = flag.Int("crash.kills", 0, "SIGKILLs the crash suite deals the server (0: 15, or 100 with WHARF_LONG_TESTS=1)")
	seedFlag  = flag.Uint64("crash.seed", 0, "seed of the crash suite's random choices (0: from the clock)")
)

// kills returns how many times the suite kills the server.
func kills() int {
	switch {
	case *killsFlag > 0:
		return *killsFlag
	case os.Getenv("WHARF_LONG_TESTS") == "1":
		return 100
	default:
		return 15
	}
}

// TestCrashSuite runs Kafka and AMQP producers and consumers against a
// wharf server while killing it with SIGKILL at random moments and
// restarting it on the same data, then drains everything and checks that
// no acknowledged message was lost, duplicated where the protocol forbids
// it, reordered or corrupted. It prints one summary line:
//
//	crash-suite: kills=N acknowledged=N lost=N duplicated=N corrupt=N ...
//
// A kill is dealt either while the clients are busy (after each side made
// progress since the restart, plus a random delay) or, one time in four,
// at a random moment of the startup, while the server recovers its data.
// SIGKILL tests process crashes: the page cache survives them. Power loss
// is covered by the fsync-before-acknowledge discipline of the storage
// engine and its fault tests, not here.
func TestCrashSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wharf and kills it many times")
	}
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	n := kills()
	t.Logf("crash suite: %d kills, seed %d (rerun with -crash.seed=%d)", n, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	began := time.Now()

	dir := t.TempDir()
	bin := buildWharf(t, dir)
	srv := newWharfServer(t, bin, dir)
	srv.start()
	srv.waitReady()
	createKafkaTopic(t, srv.kafka)

	kledger := NewKafkaLedger(kafkaPartitions)
	aledger := NewAMQPLedger()
	kload := startKafkaLoad(t, srv.kafka, kledger, seed)
	defer kload.close()
	aload := startAMQPLoad(t, srv.amqp, aledger, seed)
	defer aload.close()

	killed := 0
	for killed < n {
		early := killed > 0 && rng.IntN(4) == 0
		roundStart := time.Now()
		var progressed time.Duration
		delay := time.Duration(rng.IntN(3000)) * time.Millisecond
		if !early {
			waitProgress(t, srv, kload, aload, killed)
			progressed = time.Since(roundStart)
			time.Sleep(delay)
		}
		if srv.exited() {
			t.Fatalf("wharf exited on its own: %v\n%s", srv.proc.err, srv.output(srv.proc))
		}
		srv.kill()
		killed++
		snapshot := kledger.CommittedSnapshot()
		srv.start()
		if early && killed < n {
			// Kill it again while it recovers (or soon after).
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			if !srv.exited() {
				srv.kill()
				killed++
				snapshot = kledger.CommittedSnapshot()
				srv.start()
			}
		}
		restarted := time.Now()
		srv.waitReady()
		ready := time.Since(restarted)
		checkCommitted(t, srv, kledger, snapshot, fmt.Sprintf("restart after kill %d", killed))
		t.Logf("kill %d: early %v, progress after %v, then %v; restart ready in %v",
			killed, early, progressed.Round(time.Millisecond), delay, ready.Round(time.Millisecond))
	}
	loadTime := time.Since(began)

	// Drain: no new messages; everything made so far acknowledged,
	// consumed, committed and acked.
	if err := kload.stopAndFlush(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := aload.stopPublishers(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ends, err := endOffsets(ctx, srv.kafka, t)
	if err != nil {
		t.Fatal(err)
	}
	if err := kload.waitDrained(ends, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := aload.waitDrained(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	checkCommitted(t, srv, kledger, kledger.CommittedSnapshot(), "end of the run")
	stored, err := readAll(ctx, t, srv.kafka, kledger, ends)
	if err != nil {
		t.Fatal(err)
	}
	kload.close()
	aload.close()

	// A clean restart keeps it all: the topic ends where it ended, and the
	// settlements written at shutdown leave the queue empty.
	srv.stop()
	srv.start()
	srv.waitReady()
	if again, err := endOffsets(ctx, srv.kafka, t); err != nil {
		t.Error(err)
	} else if fmt.Sprint(again) != fmt.Sprint(ends) {
		t.Errorf("after a clean restart the partitions end at %v, before it at %v", again, ends)
	}
	if depth, err := queueDepth("amqp://guest:guest@" + srv.amqp + "/"); err != nil || depth != 0 {
		t.Errorf("after a clean restart the drained queue holds %d messages (%v)", depth, err)
	}
	srv.stop()

	sum := Summary{Kills: killed, Kafka: kledger.Verify(stored), AMQP: aledger.Verify()}
	line := sum.Line()
	fmt.Println(line)
	t.Log(line)
	// go test shows nothing of a passing package run among others; CI asks
	// for the line in a file to print it.
	if path := os.Getenv("WHARF_CRASH_SUMMARY"); path != "" {
		if err := os.WriteFile(path, []byte(line+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Logf("load phase %v, whole run %v; %d server starts, %d AMQP connections, %d Kafka records failed for good (last error: %v)",
		loadTime.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), srv.runs, aload.dials.Load(), kload.failed.Load(), kload.lastErr)
	if sum.Failed() {
		for _, p := range sum.Kafka.Problems {
			t.Errorf("kafka: %s", p)
		}
		for _, p := range sum.AMQP.Problems {
			t.Errorf("amqp: %s", p)
		}
		t.Fatalf("guarantees broken; rerun with -crash.seed=%d (timing makes runs differ anyway)", seed)
	}
	if len(sum.AMQP.Problems) > 0 {
		t.Logf("amqp notes (allowed): %v", sum.AMQP.Problems)
	}
}

// waitProgress waits until, since the last restart, Kafka produces were
// acknowledged and AMQP publishes confirmed, and both sides' consumers got
// something.
func waitProgress(t *testing.T, srv *wharfServer, k *kafkaLoad, a *amqpLoad, killed int) {
	t.Helper()
	acked, processed := k.acked.Load(), k.processed.Load()
	confirmed, delivered := a.confirmed.Load(), a.delivered.Load()
	deadline := time.Now().Add(2 * time.Minute)
	for k.acked.Load() == acked || k.processed.Load() == processed ||
		a.confirmed.Load() == confirmed || a.delivered.Load() == delivered {
		if srv.exited() {
			t.Fatalf("wharf exited on its own: %v\n%s", srv.proc.err, srv.output(srv.proc))
		}
		if time.Now().After(deadline) {
			t.Fatalf("after kill %d: no progress in 2 minutes (kafka acked %d processed %d, amqp confirmed %d delivered %d)\n%s",
				killed, k.acked.Load(), k.processed.Load(), a.confirmed.Load(), a.delivered.Load(), srv.output(srv.proc))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkCommitted checks that the group's committed offsets, as the running
// server reports them, are at least those in snapshot.
func checkCommitted(t *testing.T, srv *wharfServer, l *KafkaLedger, snapshot []int64, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fetched, err := fetchCommitted(ctx, srv.kafka, t)
	if err != nil {
		t.Fatalf("%s: fetching the group's offsets: %v", when, err)
	}
	l.CheckCommitted(when, snapshot, fetched)
}
