//go:build unix

package server

// The transactional crash test runs a three-stage consume-transform-produce
// chain (franz-go's GroupTransactSession, read_committed) against a server
// in a child process, kills the server with SIGKILL at random moments and
// restarts it on the same data and address, and now and then abandons a
// stage in the middle of a transaction and starts a new one under the same
// transactional id (a client crash: the new one fences the old and aborts
// its transaction). Once the chain has drained, the read_committed output
// must hold every input exactly once, in order per key.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	txnChainPartitions = 3
	txnChainKeys       = 6
)

func TestKafkaTxnChainSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	kills, perKey := 5, 400
	if longTests() {
		kills, perKey = 20, 1000
	}
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	var mu sync.Mutex // guards child
	child := startServerChild(t, dir, addr)

	setup, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(setup).CreateTopics(ctx, txnChainPartitions, 1, nil, "tx-in", "tx-mid", "tx-mid2", "tx-out")
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	// The input arrives throughout the kills, from an idempotent producer
	// that retries across them.
	inputDone := make(chan error, 1)
	go func() {
		defer setup.Close()
		for i := range perKey {
			var recs []*kgo.Record
			for k := range txnChainKeys {
				recs = append(recs, &kgo.Record{Topic: "tx-in", Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "%d", i)})
			}
			if err := setup.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				inputDone <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		inputDone <- nil
	}()

	stageCtx, stopStages := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var restarts atomic.Int64
	for _, s := range []struct{ name, in, out string }{{"s1", "tx-in", "tx-mid"}, {"s2", "tx-mid", "tx-mid2"}, {"s3", "tx-mid2", "tx-out"}} {
		wg.Add(1)
		stageRng := rand.New(rand.NewPCG(rng.Uint64(), 4))
		go func() {
			defer wg.Done()
			crashingStage(stageCtx, addr, s.name, s.in, s.out, stageRng, &restarts)
		}()
	}

	for range kills {
		time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
		mu.Lock()
		child.kill()
		child = startServerChild(t, dir, addr)
		mu.Unlock()
	}
	if err := <-inputDone; err != nil {
		t.Fatalf("producing the input: %v", err)
	}

	// Drain: read the output until every input has come through.
	want := txnChainKeys * perKey
	out, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeTopics("tx-out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for seen < want {
		fs := out.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the chain did not drain: %d of %d outputs after the deadline", seen, want)
		}
		seen += fs.NumRecords()
	}
	out.Close()
	stopStages()
	wg.Wait()

	// Everything read_committed holds, up to a plain sentinel written to
	// each partition after the stages stopped.
	plain, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for p := range int32(txnChainPartitions) {
		if err := plain.ProduceSync(ctx, &kgo.Record{Topic: "tx-out", Partition: p, Value: []byte("sentinel")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	final, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeTopics("tx-out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer final.Close()
	got := map[string][]string{}
	sentinels := 0
	for sentinels < txnChainPartitions {
		fs := final.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading the output: %v", ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "sentinel" {
				sentinels++
				return
			}
			got[string(r.Key)] = append(got[string(r.Key)], string(r.Value))
		})
	}
	total := 0
	for k := range txnChainKeys {
		key := fmt.Sprintf("k%d", k)
		wantValues := make([]string, perKey)
		for i := range wantValues {
			wantValues[i] = fmt.Sprintf("%d-s1-s2-s3", i)
		}
		total += len(got[key])
		if !slices.Equal(got[key], wantValues) {
			t.Errorf("key %s: %d outputs, want each of %d inputs exactly once in order; first difference at %d",
				key, len(got[key]), perKey, firstDifference(got[key], wantValues))
		}
	}
	t.Logf("%d kills, %d stage restarts: %d outputs for %d inputs", kills, restarts.Load(), total, want)
	mu.Lock()
	child.stop()
	mu.Unlock()
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// crashingStage runs a stage until ctx ends. Any error ends the session
// and a new one takes over under the same transactional id; now and then
// the stage abandons its session in the middle of a transaction, records
// produced and nothing ended, as a crashed client does.
func crashingStage(ctx context.Context, addr, name, in, out string, rng *rand.Rand, restarts *atomic.Int64) {
	for ctx.Err() == nil {
		if err := runTxnStage(ctx, addr, name, in, out, rng); err != nil && ctx.Err() == nil {
			restarts.Add(1)
		}
	}
}

var errAbandoned = errors.New("session abandoned mid-transaction")

func runTxnStage(ctx context.Context, addr, name, in, out string, rng *rand.Rand) error {
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr), kgo.TransactionalID("tx-"+name),
		kgo.TransactionTimeout(10*time.Second), kgo.ConsumerGroup("tx-group-"+name), kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequireStableFetchOffsets(), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	abandon := false
	defer func() {
		if !abandon {
			sess.Close()
			return
		}
		// A crashed client ends nothing: its connections just go away.
		sess.Client().Close()
	}()
	for ctx.Err() == nil {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fs.Err(); err != nil {
			return err
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return err
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, &kgo.Record{Topic: out, Key: r.Key, Value: fmt.Appendf(nil, "%s-%s", r.Value, name)})
		})
		if err := sess.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			if _, eerr := sess.End(ctx, kgo.TryAbort); eerr != nil {
				return eerr
			}
			return err
		}
		if rng.IntN(40) == 0 {
			abandon = true
			return errAbandoned
		}
		if _, err := sess.End(ctx, kgo.TryCommit); err != nil {
			return err
		}
	}
	return ctx.Err()
}
