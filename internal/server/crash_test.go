//go:build unix

package server

// The Kafka crash test produces to a server in a child process with
// idempotent acks=all producers, kills the server with SIGKILL at a random
// moment, restarts it on the same data and does it again, and finally checks
// that every acknowledged record is stored where its acknowledgement said.
// SIGKILL tests process crashes: the kernel's page cache survives them, so
// written but unsynced data is still there afterwards. Power loss, which
// loses the page cache, is covered by the fsync-before-acknowledge
// discipline (acks=all is answered only after the group-commit fsync that
// covers the batch; see the storage fault tests), not by this test.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	crashTopic      = "crash"
	crashPartitions = 3
	crashProducers  = 3
)

func longTests() bool { return os.Getenv("WHARF_LONG_TESTS") == "1" }

// ackedAt is where an acknowledged record was stored.
type ackedAt struct {
	partition int32
	offset    int64
}

func (a ackedAt) String() string { return fmt.Sprintf("%d/%d", a.partition, a.offset) }

func TestKafkaAckedRecordsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	rounds := 5
	if longTests() {
		rounds = 30
	}
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))

	acked := map[string]ackedAt{} // value -> where its produce was acknowledged
	for round := range rounds {
		child := startServerChild(t, dir, addr)
		if round == 0 {
			createCrashTopic(t, addr)
		}
		checkCrashTopic(t, addr, round)
		delay := time.Duration(10+rng.IntN(300)) * time.Millisecond
		n := produceUntilKilled(t, child, round, delay, acked)
		if n == 0 {
			t.Fatalf("round %d: no produce acknowledged", round)
		}
	}

	child := startServerChild(t, dir, addr)
	checkCrashTopic(t, addr, rounds)
	stored := consumeCrashTopic(t, addr)

	// Where each value is stored; a value stored twice is a duplicate.
	where := map[string][]ackedAt{}
	for p, values := range stored {
		for o, v := range values {
			where[v] = append(where[v], ackedAt{int32(p), int64(o)})
		}
	}
	var present, lost, duplicated int
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for v, at := range acked {
		values := stored[at.partition]
		switch {
		case at.offset >= int64(len(values)):
			lost++
			report("%q acknowledged at %v is missing: partition %d ends at %d", v, at, at.partition, len(values))
		case values[at.offset] != v:
			lost++
			report("%q acknowledged at %v, but %q is stored there (%q is stored at %v)", v, at, values[at.offset], v, where[v])
		default:
			present++
		}
		if len(where[v]) > 1 {
			duplicated++
			report("%q acknowledged at %v is stored at %v", v, at, where[v])
		}
	}
	// Records whose produce was not acknowledged may or may not be stored;
	// they are counted only for the summary.
	var total, storedTwice int
	for _, values := range stored {
		total += len(values)
	}
	for _, at := range where {
		if len(at) > 1 {
			storedTwice++
		}
	}
	t.Logf("%d rounds: %d records acknowledged, %d present, %d lost, %d duplicated; %d records stored, %d values stored more than once",
		rounds, len(acked), present, lost, duplicated, total, storedTwice)
	if len(problems) > 0 {
		sort.Strings(problems)
		for _, p := range problems {
			t.Error(p)
		}
		t.FailNow()
	}
	child.stop()
}

// crashClient is a client of the child server; the caller closes it.
func crashClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func createCrashTopic(t *testing.T, addr string) {
	t.Helper()
	cl := crashClient(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, crashPartitions, 1, nil, crashTopic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", crashTopic, err)
	}
}

// checkCrashTopic checks that the topic came back whole from the crash.
func checkCrashTopic(t *testing.T, addr string, round int) {
	t.Helper()
	cl := crashClient(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, crashTopic)
	if err != nil {
		t.Fatalf("round %d: listing topics: %v", round, err)
	}
	d, ok := topics[crashTopic]
	if !ok || d.Err != nil || len(d.Partitions) != crashPartitions {
		t.Fatalf("round %d: topic %s after restart: present %v, error %v, %d partitions, want %d",
			round, crashTopic, ok, d.Err, len(d.Partitions), crashPartitions)
	}
}

// produceUntilKilled produces from several idempotent acks=all producers
// until delay after the first acknowledgement, then kills the server and
// closes the producers. It adds every acknowledged record to acked and
// returns how many it added.
func produceUntilKilled(t *testing.T, child *serverChild, round int, delay time.Duration, acked map[string]ackedAt) int {
	t.Helper()
	var (
		mu       sync.Mutex
		added    int
		problems []string
	)
	firstAck := make(chan struct{})
	var firstOnce sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var producers, promises sync.WaitGroup
	clients := make([]*kgo.Client, crashProducers)
	for p := range clients {
		cl := crashClient(t, child.addr,
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.MaxBufferedRecords(512),
		)
		clients[p] = cl
		producers.Go(func() {
			for seq := 0; ctx.Err() == nil; seq++ {
				v := fmt.Sprintf("r%d-p%d-%d", round, p, seq)
				rec := &kgo.Record{Topic: crashTopic, Partition: int32(seq % crashPartitions), Value: []byte(v)}
				promises.Add(1)
				cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
					defer promises.Done()
					if err != nil {
						return
					}
					at := ackedAt{r.Partition, r.Offset}
					mu.Lock()
					if prev, dup := acked[v]; dup {
						problems = append(problems, fmt.Sprintf("%q acknowledged twice, at %v and %v", v, prev, at))
					}
					acked[v] = at
					added++
					mu.Unlock()
					firstOnce.Do(func() { close(firstAck) })
				})
			}
		})
	}

	// stopProducers stops the producers and lets Close fail whatever they
	// still hold. It runs on every way out, so a failing test leaves no
	// producer behind.
	var stopOnce sync.Once
	stopProducers := func() {
		stopOnce.Do(func() {
			cancel()
			producers.Wait()
			for _, cl := range clients {
				cl.Close()
			}
		})
	}
	defer stopProducers()

	select {
	case <-firstAck:
		time.Sleep(delay)
	case <-child.done:
		t.Fatalf("round %d: server exited while producing: %v\n%s", round, child.err, child.out.String())
	case <-time.After(time.Minute):
		t.Errorf("round %d: no produce acknowledged within a minute", round)
	}
	child.kill()
	if t.Failed() {
		t.FailNow()
	}

	// The producers now see only errors.
	stopProducers()
	closed := make(chan struct{})
	go func() {
		promises.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatalf("round %d: produce promises still pending a minute after closing the clients", round)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("round %d: %s", round, p)
	}
	if t.Failed() {
		t.FailNow()
	}
	return added
}

// consumeCrashTopic reads every partition of the topic from its start to its
// high watermark and returns the values by partition and offset. It fails
// the test unless offsets start at 0 and are dense.
func consumeCrashTopic(t *testing.T, addr string) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	adm := crashClient(t, addr)
	defer adm.Close()
	starts, err := kadm.NewClient(adm).ListStartOffsets(ctx, crashTopic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("listing start offsets: %v", err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, crashTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("listing end offsets: %v", err)
	}
	end := make([]int64, crashPartitions)
	from := map[int32]kgo.Offset{}
	for p := range int32(crashPartitions) {
		s, ok1 := starts.Lookup(crashTopic, p)
		e, ok2 := ends.Lookup(crashTopic, p)
		if !ok1 || !ok2 || s.Offset != 0 || e.Offset < 0 {
			t.Fatalf("partition %d: offsets [%d, %d) (listed: %v, %v), want a log starting at 0", p, s.Offset, e.Offset, ok1, ok2)
		}
		end[p] = e.Offset
		from[p] = kgo.NewOffset().AtStart()
	}

	cl := crashClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{crashTopic: from}))
	defer cl.Close()
	stored := make([][]string, crashPartitions)
	done := func() bool {
		for p := range stored {
			if int64(len(stored[p])) < end[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		fetches := cl.PollFetches(ctx)
		for _, fe := range fetches.Errors() {
			t.Fatalf("consuming %s/%d: %v (read so far: %v of %v)", fe.Topic, fe.Partition, fe.Err, lens(stored), end)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			p := r.Partition
			if p < 0 || int(p) >= crashPartitions {
				t.Fatalf("record from partition %d", p)
			}
			if want := int64(len(stored[p])); r.Offset != want {
				t.Fatalf("partition %d: record at offset %d follows %d records: offsets are not dense", p, r.Offset, want)
			}
			if r.Offset >= end[p] {
				t.Fatalf("partition %d: record at offset %d, past the high watermark %d", p, r.Offset, end[p])
			}
			stored[p] = append(stored[p], string(r.Value))
		})
	}
	return stored
}

func lens(s [][]string) []int {
	n := make([]int, len(s))
	for i := range s {
		n[i] = len(s[i])
	}
	return n
}
