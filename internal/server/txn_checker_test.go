//go:build unix

package server

// The transaction consistency checker runs a randomized transactional
// workload against a server in a child process that it kills with SIGKILL
// and restarts: producers commit, abort, fail or abandon transactions of
// random records over random partitions while a read_committed reader
// tails the topic. Afterwards it reads the whole topic at both isolation
// levels and counts anomalies, all of which must be zero:
//
//   - lost writes: a record of a transaction whose commit was
//     acknowledged is missing from the read_committed log;
//   - aborted reads (G1a): a record of a transaction whose abort was
//     acknowledged, or that its producer abandoned, is in the
//     read_committed log or was seen by the reader;
//   - uncommitted reads: the reader saw a record that the final
//     read_committed log does not hold;
//   - fractured transactions: part of a transaction is committed and part
//     is not;
//   - duplicates: a record stored twice, at either isolation level;
//   - inconsistent offsets: the reader saw a record at an offset where the
//     final log holds another;
//   - non-monotonic offsets: the reader saw a partition's offsets go back.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	checkerTopic      = "txn-check"
	checkerPartitions = 4
)

type txnOutcome int

const (
	outcomeUnknown   txnOutcome = iota // the end failed: it may or may not have committed
	outcomeCommitted                   // commit acknowledged
	outcomeAborted                     // abort acknowledged
	outcomeAbandoned                   // the producer went away mid-transaction
)

// checkedTxn is one transaction of the workload and what its producer was
// told.
type checkedTxn struct {
	values  []string
	outcome txnOutcome
}

// seenRecord is a record as a reader saw it.
type seenRecord struct {
	partition int32
	offset    int64
	value     string
}

func TestKafkaTxnConsistencyChecker(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	kills, producers, duration := 4, 3, 6*time.Second
	if longTests() {
		kills, duration = 25, 60*time.Second
	}
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	child := startServerChild(t, dir, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := kadm.NewClient(admin).CreateTopics(ctx, checkerPartitions, 1, nil, checkerTopic)
	if err == nil {
		err = resp.Error()
	}
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}

	workCtx, stopWork := context.WithCancel(ctx)
	var mu sync.Mutex // guards txns
	var txns []*checkedTxn
	var wg sync.WaitGroup
	for p := range producers {
		prng := rand.New(rand.NewPCG(rng.Uint64(), uint64(p)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tx := range checkerProducer(workCtx, addr, p, prng) {
				mu.Lock()
				txns = append(txns, tx)
				mu.Unlock()
			}
		}()
	}
	var seen []seenRecord
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		seen = tailCommitted(workCtx, addr)
	}()

	deadline := time.Now().Add(duration)
	for i := 0; i < kills || time.Now().Before(deadline); i++ {
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		if i < kills {
			child.kill()
			child = startServerChild(t, dir, addr)
		}
	}
	stopWork()
	wg.Wait()
	<-readerDone

	// The final logs, up to a plain sentinel per partition.
	plain, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(checkerPartitions) {
		if err := plain.ProduceSync(ctx, &kgo.Record{Topic: checkerTopic, Partition: p, Value: []byte("sentinel")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	plain.Close()
	committedLog := readToSentinels(ctx, t, addr, true)
	uncommittedLog := readToSentinels(ctx, t, addr, false)

	var problems []string
	count := map[string]int{}
	report := func(kind, format string, args ...any) {
		count[kind]++
		if len(problems) < 30 {
			problems = append(problems, kind+": "+fmt.Sprintf(format, args...))
		}
	}
	inCommitted := map[string]int{}
	for _, r := range committedLog {
		inCommitted[r.value]++
	}
	at := map[[2]int64]string{}
	inUncommitted := map[string]int{}
	for _, r := range uncommittedLog {
		inUncommitted[r.value]++
		at[[2]int64{int64(r.partition), r.offset}] = r.value
	}
	for v, n := range inCommitted {
		if n > 1 {
			report("duplicates", "%s read_committed %d times", v, n)
		}
	}
	for v, n := range inUncommitted {
		if n > 1 {
			report("duplicates", "%s stored %d times", v, n)
		}
	}
	seenValues := map[string]bool{}
	last := map[int32]int64{}
	for _, r := range seen {
		seenValues[r.value] = true
		if prev, ok := last[r.partition]; ok && r.offset <= prev {
			report("non-monotonic offsets", "partition %d: offset %d after %d", r.partition, r.offset, prev)
		}
		last[r.partition] = r.offset
		if v, ok := at[[2]int64{int64(r.partition), r.offset}]; !ok || v != r.value {
			report("inconsistent offsets", "%s seen at %d/%d, where the log holds %q", r.value, r.partition, r.offset, v)
		}
		if inCommitted[r.value] == 0 {
			report("uncommitted reads", "%s seen at %d/%d is not committed", r.value, r.partition, r.offset)
		}
	}
	outcomes := map[txnOutcome]int{}
	for _, tx := range txns {
		outcomes[tx.outcome]++
		visible := 0
		for _, v := range tx.values {
			if inCommitted[v] > 0 {
				visible++
			}
		}
		switch {
		case tx.outcome == outcomeCommitted && visible < len(tx.values):
			report("lost writes", "%d of %d records of a committed transaction missing (%s...)", len(tx.values)-visible, len(tx.values), tx.values[0])
		case (tx.outcome == outcomeAborted || tx.outcome == outcomeAbandoned) && visible > 0:
			report("aborted reads", "%d records of an aborted transaction committed (%s...)", visible, tx.values[0])
		case visible > 0 && visible < len(tx.values):
			report("fractured transactions", "%d of %d records committed (%s...)", visible, len(tx.values), tx.values[0])
		}
		if tx.outcome == outcomeAborted || tx.outcome == outcomeAbandoned {
			for _, v := range tx.values {
				if seenValues[v] {
					report("aborted reads", "%s of an aborted transaction seen by the reader", v)
				}
			}
		}
	}
	kinds := []string{"lost writes", "aborted reads", "uncommitted reads", "fractured transactions", "duplicates", "inconsistent offsets", "non-monotonic offsets"}
	var summary []string
	for _, k := range kinds {
		summary = append(summary, fmt.Sprintf("%s=%d", strings.ReplaceAll(k, " ", "_"), count[k]))
	}
	t.Logf("txn-checker: kills=%d transactions=%d committed=%d aborted=%d abandoned=%d unknown=%d records_committed=%d records_stored=%d seen=%d %s",
		kills, len(txns), outcomes[outcomeCommitted], outcomes[outcomeAborted], outcomes[outcomeAbandoned], outcomes[outcomeUnknown],
		len(committedLog), len(uncommittedLog), len(seen), strings.Join(summary, " "))
	if outcomes[outcomeCommitted] == 0 || outcomes[outcomeAborted] == 0 {
		t.Errorf("the workload committed %d and aborted %d transactions; it must do both", outcomes[outcomeCommitted], outcomes[outcomeAborted])
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		for _, p := range problems {
			t.Error(p)
		}
	}
	child.stop()
}

// checkerProducer runs random transactions until ctx ends and returns them
// with their outcomes. After any failure, or after abandoning a
// transaction, it starts a new client under the same transactional id.
func checkerProducer(ctx context.Context, addr string, id int, rng *rand.Rand) []*checkedTxn {
	var out []*checkedTxn
	var cl *kgo.Client
	newClient := func() {
		if cl != nil {
			cl.Close()
		}
		var err error
		cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(fmt.Sprintf("checker-%d", id)),
			kgo.TransactionTimeout(5*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
			// A produce that cannot be delivered within this fails (the
			// transaction is then aborted or its outcome unknown) instead
			// of retrying forever: one run hung in ProduceSync after kills.
			kgo.RecordDeliveryTimeout(20*time.Second))
		if err != nil {
			panic(err) // only invalid options fail here
		}
	}
	newClient()
	defer func() { cl.Close() }()
	for n := 0; ctx.Err() == nil; n++ {
		tx := &checkedTxn{}
		var recs []*kgo.Record
		for r := range 1 + rng.IntN(6) {
			v := fmt.Sprintf("p%d-t%d-r%d", id, n, r)
			tx.values = append(tx.values, v)
			recs = append(recs, &kgo.Record{Topic: checkerTopic, Partition: int32(rng.IntN(checkerPartitions)), Value: []byte(v)})
		}
		if err := cl.BeginTransaction(); err != nil {
			newClient()
			continue
		}
		out = append(out, tx)
		// The records are unknown until the end is: a failed produce may
		// still have written some of them.
		perr := cl.ProduceSync(ctx, recs...).FirstErr()
		switch roll := rng.IntN(20); {
		case perr != nil:
			if cl.EndTransaction(ctx, kgo.TryAbort) == nil {
				tx.outcome = outcomeAborted
			}
			newClient()
		case roll == 0:
			// Abandoned: the next client under the id aborts it.
			tx.outcome = outcomeAbandoned
			newClient()
		case roll < 6:
			if cl.EndTransaction(ctx, kgo.TryAbort) == nil {
				tx.outcome = outcomeAborted
			} else {
				newClient()
			}
		default:
			if cl.EndTransaction(ctx, kgo.TryCommit) == nil {
				tx.outcome = outcomeCommitted
			} else {
				newClient()
			}
		}
	}
	return out
}

// tailCommitted reads the topic read_committed from its start until ctx
// ends and returns every record it saw, in the order seen.
func tailCommitted(ctx context.Context, addr string) []seenRecord {
	offsets := map[int32]kgo.Offset{}
	for p := range int32(checkerPartitions) {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{checkerTopic: offsets}))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	var out []seenRecord
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			out = append(out, seenRecord{r.Partition, r.Offset, string(r.Value)})
		})
	}
	return out
}

// readToSentinels reads every partition from its start at an isolation
// level up to its sentinel record.
func readToSentinels(ctx context.Context, t *testing.T, addr string, committed bool) []seenRecord {
	t.Helper()
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	offsets := map[int32]kgo.Offset{}
	for p := range int32(checkerPartitions) {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(level),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{checkerTopic: offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []seenRecord
	done := map[int32]bool{}
	for len(done) < checkerPartitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading to the sentinels (read_committed %v): %d of %d partitions done", committed, len(done), checkerPartitions)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "sentinel" {
				done[r.Partition] = true
				return
			}
			if !done[r.Partition] {
				out = append(out, seenRecord{r.Partition, r.Offset, string(r.Value)})
			}
		})
	}
	return out
}
