//go:build unix

package crashsuite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	kafkaTopic      = "crashsuite"
	kafkaGroup      = "crashsuite-group"
	kafkaPartitions = 4
	kafkaProducers  = 2
	kafkaMembers    = 2
	// Each producer sends kafkaBurst records every kafkaTick: about 500
	// records a second each, enough to have produce requests in flight at
	// any moment without drowning two cores.
	kafkaBurst = 10
	kafkaTick  = 20 * time.Millisecond
)

// kafkaLoad is the Kafka side of the suite: idempotent acks=all producers,
// a reader that tails every partition from offset 0, and a consumer group
// that commits after processing. The clients live through every restart
// of the server and reconnect on their own.
type kafkaLoad struct {
	t      *testing.T
	addr   string
	ledger *KafkaLedger

	ctx    context.Context // cancelled when the readers stop
	cancel context.CancelFunc

	stopProducing atomic.Bool
	producers     sync.WaitGroup // producing goroutines
	promises      sync.WaitGroup // produce promises not yet called
	readers       sync.WaitGroup

	acked     atomic.Int64 // produce acknowledgements
	failed    atomic.Int64 // records whose produce failed for good
	processed atomic.Int64 // records processed by the group

	mu       sync.Mutex
	tailNext []int64 // per partition: next offset the tail reader expects
	lastErr  error   // last produce failure, for the report

	clients   []*kgo.Client
	closeOnce sync.Once
}

func newKafkaClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.DialTimeout(2 * time.Second),
		// Refresh metadata soon after the server comes back.
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// createKafkaTopic creates the suite's topic.
func createKafkaTopic(t *testing.T, addr string) {
	t.Helper()
	cl := newKafkaClient(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, kafkaPartitions, 1, nil, kafkaTopic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", kafkaTopic, err)
	}
}

func startKafkaLoad(t *testing.T, addr string, ledger *KafkaLedger, seed uint64) *kafkaLoad {
	k := &kafkaLoad{t: t, addr: addr, ledger: ledger, tailNext: make([]int64, kafkaPartitions)}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	for p := range kafkaProducers {
		cl := newKafkaClient(t, addr,
			kgo.RequiredAcks(kgo.AllISRAcks()), // the default, and what idempotence needs
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.MaxBufferedRecords(10*kafkaBurst),
			kgo.ProducerLinger(0),
			kgo.UnknownTopicRetries(-1),
		)
		k.clients = append(k.clients, cl)
		rng := rand.New(rand.NewPCG(seed, uint64(p)))
		k.producers.Go(func() { k.produce(cl, p, rng) })
	}

	tail := newKafkaClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{kafkaTopic: allFromStart()}),
		kgo.FetchMaxWait(200*time.Millisecond))
	k.clients = append(k.clients, tail)
	k.readers.Go(func() { k.tail(tail) })

	for m := range kafkaMembers {
		cl := newKafkaClient(t, addr,
			kgo.ConsumerGroup(kafkaGroup),
			kgo.ConsumeTopics(kafkaTopic),
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(200*time.Millisecond),
			kgo.SessionTimeout(10*time.Second),
			kgo.HeartbeatInterval(time.Second),
		)
		k.clients = append(k.clients, cl)
		k.readers.Go(func() { k.consumeGroup(cl, fmt.Sprintf("group member %d", m)) })
	}
	return k
}

func allFromStart() map[int32]kgo.Offset {
	from := map[int32]kgo.Offset{}
	for p := range int32(kafkaPartitions) {
		from[p] = kgo.NewOffset().AtStart()
	}
	return from
}

// produce sends bursts of records until told to stop. A record is never
// sent again by the suite: the client retries it (with its sequence
// number) until the broker acknowledges it, which is what the idempotent
// producer must turn into exactly one copy.
func (k *kafkaLoad) produce(cl *kgo.Client, producer int, rng *rand.Rand) {
	tick := time.NewTicker(kafkaTick)
	defer tick.Stop()
	for seq := int64(0); !k.stopProducing.Load(); {
		for range kafkaBurst {
			id := ID{Proto: ProtoKafka, Producer: producer, Seq: seq}
			rec := &kgo.Record{
				Topic:     kafkaTopic,
				Partition: int32((seq + int64(producer)) % kafkaPartitions),
				Value:     Encode(id, rng.IntN(maxFiller+1)),
			}
			seq++
			k.promises.Add(1)
			// Background: a record, once buffered, must not be failed by a
			// cancellation; it is retried until acknowledged.
			cl.Produce(context.Background(), rec, k.promise)
		}
		<-tick.C
	}
}

func (k *kafkaLoad) promise(r *kgo.Record, err error) {
	defer k.promises.Done()
	if err != nil {
		k.failed.Add(1)
		k.mu.Lock()
		k.lastErr = err
		k.mu.Unlock()
		return
	}
	k.ledger.Acked(Position{r.Partition, r.Offset}, r.Value)
	k.acked.Add(1)
}

// tail reads every partition from offset 0 to its end, forever, checking
// that offsets are contiguous and every value intact.
func (k *kafkaLoad) tail(cl *kgo.Client) {
	for {
		fetches := cl.PollFetches(k.ctx)
		if k.ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachRecord(func(r *kgo.Record) {
			k.mu.Lock()
			want := k.tailNext[r.Partition]
			k.tailNext[r.Partition] = r.Offset + 1
			k.mu.Unlock()
			if r.Offset != want {
				k.ledger.Gap("tail reader", r.Partition, want, r.Offset)
			}
			k.ledger.Read("tail reader", Position{r.Partition, r.Offset}, r.Value)
		})
	}
}

// consumeGroup processes what the group assigns this member, committing
// each poll's offsets only after processing its records. Only commits the
// broker acknowledged, partition by partition, enter the ledger.
func (k *kafkaLoad) consumeGroup(cl *kgo.Client, name string) {
	for {
		fetches := cl.PollRecords(k.ctx, 500)
		if k.ctx.Err() != nil || fetches.IsClientClosed() {
			cl.AllowRebalance()
			return
		}
		offsets := map[int32]kgo.EpochOffset{}
		fetches.EachRecord(func(r *kgo.Record) {
			id, err := k.ledger.Read(name, Position{r.Partition, r.Offset}, r.Value)
			if err == nil {
				k.ledger.Processed(id)
				k.processed.Add(1)
			}
			offsets[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
		})
		if len(offsets) > 0 {
			ctx, cancel := context.WithTimeout(k.ctx, 20*time.Second)
			cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{kafkaTopic: offsets},
				func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
					if err != nil {
						return
					}
					for _, t := range resp.Topics {
						for _, p := range t.Partitions {
							if t.Topic == kafkaTopic && p.ErrorCode == 0 {
								if o, ok := offsets[p.Partition]; ok {
									k.ledger.Committed(p.Partition, o.Offset)
								}
							}
						}
					}
				})
			cancel()
		}
		cl.AllowRebalance()
	}
}

// stopAndFlush stops making new records and waits until every record
// produced has its answer; the server must be up.
func (k *kafkaLoad) stopAndFlush(deadline time.Duration) error {
	k.stopProducing.Store(true)
	k.producers.Wait()
	done := make(chan struct{})
	go func() {
		k.promises.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(deadline):
		return fmt.Errorf("produce promises still pending after %v", deadline)
	}
}

// fetchCommitted returns the group's committed offsets as the server
// reports them, -1 where there is none. It retries while the coordinator
// is not answering.
func fetchCommitted(ctx context.Context, addr string, t *testing.T) ([]int64, error) {
	cl := newKafkaClient(t, addr)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var lastErr error
	for ctx.Err() == nil {
		resp, err := adm.FetchOffsets(ctx, kafkaGroup)
		if err == nil {
			err = resp.Error()
		}
		if err == nil {
			out := make([]int64, kafkaPartitions)
			for p := range out {
				out[p] = -1
				if o, ok := resp.Lookup(kafkaTopic, int32(p)); ok {
					out[p] = o.At
				}
			}
			return out, nil
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	return nil, errors.Join(ctx.Err(), lastErr)
}

// endOffsets returns the high watermark of every partition.
func endOffsets(ctx context.Context, addr string, t *testing.T) ([]int64, error) {
	cl := newKafkaClient(t, addr)
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, kafkaTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	out := make([]int64, kafkaPartitions)
	for p := range out {
		o, ok := ends.Lookup(kafkaTopic, int32(p))
		if !ok {
			return nil, fmt.Errorf("no end offset for partition %d", p)
		}
		out[p] = o.Offset
	}
	return out, nil
}

// waitDrained waits until the group has committed, and the tail reader
// has read, every partition up to ends.
func (k *kafkaLoad) waitDrained(ends []int64, deadline time.Duration) error {
	until := time.Now().Add(deadline)
	for {
		committed := k.ledger.CommittedSnapshot()
		k.mu.Lock()
		tail := append([]int64(nil), k.tailNext...)
		k.mu.Unlock()
		done := true
		for p := range ends {
			if committed[p] < ends[p] || tail[p] < ends[p] {
				done = false
			}
		}
		if done {
			return nil
		}
		if time.Now().After(until) {
			return fmt.Errorf("not drained after %v: ends %v, committed %v, tail reader at %v", deadline, ends, committed, tail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// close stops the readers and closes every client; later calls do
// nothing.
func (k *kafkaLoad) close() {
	k.closeOnce.Do(func() {
		k.stopProducing.Store(true)
		k.cancel()
		k.readers.Wait()
		k.producers.Wait()
		for _, cl := range k.clients {
			cl.Close()
		}
	})
}

// readAll reads every partition from offset 0 to ends with a new client,
// passing each record through the ledger, and returns the values by
// partition and offset.
func readAll(ctx context.Context, t *testing.T, addr string, ledger *KafkaLedger, ends []int64) ([][][]byte, error) {
	cl := newKafkaClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{kafkaTopic: allFromStart()}))
	defer cl.Close()
	stored := make([][][]byte, kafkaPartitions)
	done := func() bool {
		for p := range stored {
			if int64(len(stored[p])) < ends[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the topic back: %w", err)
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			ferr = fmt.Errorf("reading %s/%d: %w", topic, p, err)
		})
		if ferr != nil {
			return nil, ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			p := r.Partition
			if want := int64(len(stored[p])); r.Offset != want {
				ledger.Gap("final read", p, want, r.Offset)
			}
			if r.Offset >= ends[p] {
				return
			}
			ledger.Read("final read", Position{p, r.Offset}, r.Value)
			for int64(len(stored[p])) < r.Offset {
				stored[p] = append(stored[p], nil) // a gap, counted above
			}
			stored[p] = append(stored[p], r.Value)
		})
	}
	return stored, nil
}
