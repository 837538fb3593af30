package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaOptions is one Kafka workload.
type KafkaOptions struct {
	Brokers     []string
	Topic       string        // created if missing; a fresh name is best
	Partitions  int32         // of the created topic
	RecordSize  int           // bytes of value, at least 16
	Count       int64         // records to produce; 0 means run for Duration
	Duration    time.Duration // used when Count is 0
	Acks        string        // all, leader or none
	Compression string        // none, gzip, snappy, lz4 or zstd
	Producers   int
	Rate        int           // records per second over all producers; 0 is unlimited
	Drain       time.Duration // how long to wait for consumers after producing
	Linger      time.Duration // producer linger; 0 sends as soon as a request can go
	// Security are client options (TLS, SASL) every client of the run
	// gets.
	Security []kgo.Opt
}

// KafkaResult is what one run measured.
type KafkaResult struct {
	Target            string  `json:"target"`
	Records           int64   `json:"records_acked"`
	Received          int64   `json:"records_received"`
	Lost              int64   `json:"lost"`
	Duplicates        int64   `json:"duplicates"`
	ProduceErrors     int64   `json:"produce_errors"`
	MsgsPerSec        float64 `json:"msgs_per_sec"`
	MBPerSec          float64 `json:"mb_per_sec"`
	ProduceMsgsPerSec float64 `json:"produce_msgs_per_sec"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
	MaxMs             float64 `json:"max_ms"`
	Seconds           float64 `json:"seconds"`
	RecordSize        int     `json:"record_size"`
	Partitions        int32   `json:"partitions"`
	Producers         int     `json:"producers"`
	Acks              string  `json:"acks"`
	Compression       string  `json:"compression"`
	Rate              int     `json:"target_rate"`
	LingerMs          float64 `json:"linger_ms"`
}

const headerBytes = 16 // send time (unix ns) and record id

func (o KafkaOptions) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.DefaultProduceTopic(o.Topic), kgo.MaxBufferedRecords(1 << 16),
		kgo.ProducerLinger(o.Linger)}
	opts = append(opts, o.Security...)
	switch o.Acks {
	case "all", "-1", "":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader", "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none", "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("acks %q: want all, leader or none", o.Acks)
	}
	codecs := map[string]kgo.CompressionCodec{"": kgo.NoCompression(), "none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	codec, ok := codecs[o.Compression]
	if !ok {
		return nil, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", o.Compression)
	}
	return append(opts, kgo.ProducerBatchCompression(codec)), nil
}

// RunKafka produces and consumes the workload against o.Brokers and
// reports end-to-end throughput and latency. Consumers read every
// partition from the start while producers write.
func RunKafka(ctx context.Context, target string, o KafkaOptions) (KafkaResult, error) {
	res := KafkaResult{Target: target, RecordSize: o.RecordSize, Partitions: o.Partitions, Producers: o.Producers,
		Acks: o.Acks, Compression: o.Compression, Rate: o.Rate, LingerMs: float64(o.Linger.Microseconds()) / 1000}
	if o.RecordSize < headerBytes {
		return res, fmt.Errorf("record size %d: must be at least %d", o.RecordSize, headerBytes)
	}
	if o.Producers < 1 || o.Partitions < 1 || (o.Count <= 0 && o.Duration <= 0) {
		return res, errors.New("need at least one producer and partition, and a count or a duration")
	}
	copts, err := o.clientOpts()
	if err != nil {
		return res, err
	}
	admin, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...)}, o.Security...)...)
	if err != nil {
		return res, err
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, o.Partitions, 1, nil, o.Topic); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		return res, fmt.Errorf("creating topic %s: %w", o.Topic, err)
	}

	// Consumer: every partition from the start.
	parts := map[int32]kgo.Offset{}
	for p := range o.Partitions {
		parts[p] = kgo.NewOffset().AtStart()
	}
	consumer, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: parts}),
		kgo.FetchMaxWait(500 * time.Millisecond)}, o.Security...)...)
	if err != nil {
		return res, err
	}
	defer consumer.Close()
	var (
		seen      = map[uint64]struct{}{} // record ids; only the consumer goroutine uses it
		received  atomic.Int64
		dups      atomic.Int64
		latMu     sync.Mutex
		latencies []time.Duration
		lastRecv  atomic.Int64
	)
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for {
			fs := consumer.PollFetches(cctx)
			if cctx.Err() != nil {
				return
			}
			now := time.Now()
			var batch []time.Duration
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Value) < headerBytes {
					return
				}
				sent := int64(binary.BigEndian.Uint64(r.Value))
				id := binary.BigEndian.Uint64(r.Value[8:])
				if _, dup := seen[id]; dup {
					dups.Add(1)
					return
				}
				seen[id] = struct{}{}
				received.Add(1)
				batch = append(batch, now.Sub(time.Unix(0, sent)))
			})
			if len(batch) > 0 {
				lastRecv.Store(now.UnixNano())
				latMu.Lock()
				latencies = append(latencies, batch...)
				latMu.Unlock()
			}
		}
	}()

	// Producers.
	payload := make([]byte, 1<<20+o.RecordSize)
	rng := rand.New(rand.NewChaCha8([32]byte{1, 2, 3}))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	var acked, produceErrs atomic.Int64
	start := time.Now()
	deadline := start.Add(o.Duration)
	perProducer := o.Count / int64(o.Producers)
	var wg sync.WaitGroup
	for pi := range o.Producers {
		cl, err := kgo.NewClient(copts...)
		if err != nil {
			return res, err
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := perProducer
			if pi == 0 {
				n += o.Count % int64(o.Producers)
			}
			var interval time.Duration
			if o.Rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(o.Producers) / float64(o.Rate))
			}
			next := time.Now()
			for seq := int64(0); ; seq++ {
				if o.Count > 0 && seq >= n || o.Count <= 0 && !time.Now().Before(deadline) || ctx.Err() != nil {
					break
				}
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					next = next.Add(interval)
				}
				off := int(seq*7919) % (len(payload) - o.RecordSize)
				v := make([]byte, o.RecordSize)
				copy(v[headerBytes:], payload[off:off+o.RecordSize-headerBytes])
				binary.BigEndian.PutUint64(v[8:], uint64(pi)<<40|uint64(seq))
				binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
				cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
					if err != nil {
						produceErrs.Add(1)
						return
					}
					acked.Add(1)
				})
			}
			if err := cl.Flush(ctx); err != nil {
				produceErrs.Add(1)
			}
		}()
	}
	wg.Wait()
	produced := time.Since(start)

	// Drain: wait until the consumer has everything that was acknowledged.
	drainEnd := time.Now().Add(o.Drain)
	for received.Load() < acked.Load() && time.Now().Before(drainEnd) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stopConsumer()
	<-consumed

	res.Records, res.Received, res.Duplicates, res.ProduceErrors = acked.Load(), received.Load(), dups.Load(), produceErrs.Load()
	res.Lost = max(0, res.Records-res.Received)
	end := time.Unix(0, lastRecv.Load())
	if lastRecv.Load() == 0 {
		end = time.Now()
	}
	elapsed := end.Sub(start)
	res.Seconds = elapsed.Seconds()
	res.MsgsPerSec = float64(res.Received) / elapsed.Seconds()
	res.MBPerSec = res.MsgsPerSec * float64(o.RecordSize) / 1e6
	res.ProduceMsgsPerSec = float64(res.Records) / produced.Seconds()
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		res.P50Ms, res.P99Ms, res.MaxMs = ms(latencies[n/2]), ms(latencies[(n*99)/100]), ms(latencies[n-1])
	}
	return res, nil
}
