package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPOptions is one AMQP 0-9-1 workload: publishers to a queue through the
// default exchange, consumers on that queue.
type AMQPOptions struct {
	URL           string
	Queue         string // declared durable when Persistent, else transient; purged first
	MessageSize   int    // bytes of body, at least 16
	Count         int64  // messages to publish; 0 means run for Duration
	Duration      time.Duration
	Persistent    bool // delivery_mode 2 to a durable queue
	Confirms      bool // publisher confirms
	ConfirmWindow int  // outstanding unconfirmed messages per publisher
	ManualAck     bool // consumers ack each message; otherwise auto-ack
	Prefetch      int  // basic.qos prefetch count per consumer (manual ack)
	Rate          int  // messages per second over all publishers; 0 is unlimited
	Producers     int
	Consumers     int
	Drain         time.Duration // how long to wait for consumers after publishing
}

// AMQPResult is what one AMQP run measured.
type AMQPResult struct {
	Target        string  `json:"target"`
	Published     int64   `json:"published"` // confirmed when confirms are on
	Received      int64   `json:"received"`
	Lost          int64   `json:"lost"`
	Duplicates    int64   `json:"duplicates"`
	PublishErrors int64   `json:"publish_errors"`
	MsgsPerSec    float64 `json:"msgs_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	Seconds       float64 `json:"seconds"`
	MessageSize   int     `json:"message_size"`
	Persistent    bool    `json:"persistent"`
	Confirms      bool    `json:"confirms"`
	ManualAck     bool    `json:"manual_ack"`
	Producers     int     `json:"producers"`
	Consumers     int     `json:"consumers"`
	Rate          int     `json:"target_rate"`
}

// RunAMQP publishes and consumes the workload against o.URL and reports
// end-to-end throughput and latency.
func RunAMQP(ctx context.Context, target string, o AMQPOptions) (AMQPResult, error) {
	res := AMQPResult{Target: target, MessageSize: o.MessageSize, Persistent: o.Persistent, Confirms: o.Confirms,
		ManualAck: o.ManualAck, Producers: o.Producers, Consumers: o.Consumers, Rate: o.Rate}
	if o.MessageSize < headerBytes {
		return res, fmt.Errorf("message size %d: must be at least %d", o.MessageSize, headerBytes)
	}
	if o.Producers < 1 || o.Consumers < 1 || (o.Count <= 0 && o.Duration <= 0) {
		return res, errors.New("need at least one producer and consumer, and a count or a duration")
	}
	admin, err := amqp.Dial(o.URL)
	if err != nil {
		return res, fmt.Errorf("connecting to %s: %w", o.URL, err)
	}
	defer admin.Close()
	ch, err := admin.Channel()
	if err != nil {
		return res, err
	}
	if _, err := ch.QueueDeclare(o.Queue, o.Persistent, false, false, false, nil); err != nil {
		return res, fmt.Errorf("declaring %s: %w", o.Queue, err)
	}
	if _, err := ch.QueuePurge(o.Queue, false); err != nil {
		return res, fmt.Errorf("purging %s: %w", o.Queue, err)
	}

	var (
		mu        sync.Mutex
		seen      = map[uint64]struct{}{}
		latencies []time.Duration
		received  atomic.Int64
		dups      atomic.Int64
		lastRecv  atomic.Int64
	)
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var cwg sync.WaitGroup
	for range o.Consumers {
		conn, err := amqp.Dial(o.URL)
		if err != nil {
			return res, err
		}
		defer conn.Close()
		cch, err := conn.Channel()
		if err != nil {
			return res, err
		}
		if o.ManualAck && o.Prefetch > 0 {
			if err := cch.Qos(o.Prefetch, 0, false); err != nil {
				return res, err
			}
		}
		deliveries, err := cch.ConsumeWithContext(cctx, o.Queue, "", !o.ManualAck, false, false, false, nil)
		if err != nil {
			return res, err
		}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for d := range deliveries {
				now := time.Now()
				if o.ManualAck {
					d.Ack(false)
				}
				if len(d.Body) < headerBytes {
					continue
				}
				sent := int64(binary.BigEndian.Uint64(d.Body))
				id := binary.BigEndian.Uint64(d.Body[8:])
				mu.Lock()
				if _, dup := seen[id]; dup {
					mu.Unlock()
					dups.Add(1)
					continue
				}
				seen[id] = struct{}{}
				latencies = append(latencies, now.Sub(time.Unix(0, sent)))
				mu.Unlock()
				received.Add(1)
				lastRecv.Store(now.UnixNano())
			}
		}()
	}

	payload := make([]byte, 1<<20+o.MessageSize)
	rng := rand.New(rand.NewChaCha8([32]byte{4, 5, 6}))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	var published, pubErrs atomic.Int64
	start := time.Now()
	deadline := start.Add(o.Duration)
	var pwg sync.WaitGroup
	for pi := range o.Producers {
		conn, err := amqp.Dial(o.URL)
		if err != nil {
			return res, err
		}
		defer conn.Close()
		pch, err := conn.Channel()
		if err != nil {
			return res, err
		}
		if o.Confirms {
			if err := pch.Confirm(false); err != nil {
				return res, err
			}
		}
		n := o.Count / int64(o.Producers)
		if pi == 0 {
			n += o.Count % int64(o.Producers)
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			publish(ctx, pch, o, pi, n, deadline, payload, &published, &pubErrs)
		}()
	}
	pwg.Wait()

	drainEnd := time.Now().Add(o.Drain)
	for received.Load() < published.Load() && time.Now().Before(drainEnd) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stopConsumers()
	cwg.Wait()

	res.Published, res.Received, res.Duplicates, res.PublishErrors = published.Load(), received.Load(), dups.Load(), pubErrs.Load()
	res.Lost = max(0, res.Published-res.Received)
	end := time.Now()
	if t := lastRecv.Load(); t != 0 {
		end = time.Unix(0, t)
	}
	elapsed := end.Sub(start)
	res.Seconds = elapsed.Seconds()
	res.MsgsPerSec = float64(res.Received) / elapsed.Seconds()
	res.MBPerSec = res.MsgsPerSec * float64(o.MessageSize) / 1e6
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		res.P50Ms, res.P99Ms, res.MaxMs = ms(latencies[n/2]), ms(latencies[(n*99)/100]), ms(latencies[n-1])
	}
	return res, nil
}

// publish sends n messages (or until deadline when counting by time) on ch,
// keeping at most o.ConfirmWindow unconfirmed when confirms are on.
func publish(ctx context.Context, ch *amqp.Channel, o AMQPOptions, producer int, n int64, deadline time.Time,
	payload []byte, published, pubErrs *atomic.Int64) {
	mode := amqp.Transient
	if o.Persistent {
		mode = amqp.Persistent
	}
	window := max(o.ConfirmWindow, 1)
	var outstanding []*amqp.DeferredConfirmation
	settle := func(keep int) {
		for len(outstanding) > keep {
			dc := outstanding[0]
			outstanding = outstanding[1:]
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				pubErrs.Add(1)
				continue
			}
			published.Add(1)
		}
	}
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.Producers) / float64(o.Rate))
	}
	next := time.Now()
	body := make([]byte, o.MessageSize)
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
		off := int(seq*7919) % (len(payload) - o.MessageSize)
		copy(body[headerBytes:], payload[off:off+o.MessageSize-headerBytes])
		binary.BigEndian.PutUint64(body[8:], uint64(producer)<<40|uint64(seq))
		binary.BigEndian.PutUint64(body, uint64(time.Now().UnixNano()))
		msg := amqp.Publishing{DeliveryMode: mode, Body: body}
		if o.Confirms {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", o.Queue, false, false, msg)
			if err != nil {
				pubErrs.Add(1)
				continue
			}
			outstanding = append(outstanding, dc)
			settle(window - 1)
			continue
		}
		if err := ch.PublishWithContext(ctx, "", o.Queue, false, false, msg); err != nil {
			pubErrs.Add(1)
			continue
		}
		published.Add(1)
	}
	settle(0)
}
