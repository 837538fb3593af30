package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Bridges publish Kafka records into AMQP exchanges. A rule names a topic
// and an exchange; every record of every partition of the topic is read as
// an AMQP message (MessageFromRecord, crossing.go) and published into the
// exchange through the same routing as any publish, so classic queues,
// alternate exchanges and exchange-to-exchange bindings behave as for an
// AMQP publisher.
//
// Each partition is tailed by its own goroutine, which, for each chunk of
// records it reads: publishes every record, waits until each is durable in
// every durable queue it reached (PublishResult.Wait), and only then
// commits the offset after the chunk, durably, as the committed offset of
// the rule's internal consumer group (BridgeGroup) in the offsets store. On
// start, and after a crash, a rule resumes at its committed offsets: no
// record is skipped, and the records of the chunk in flight when the
// process stopped may be published again (at-least-once).
//
// A record whose x-amqp-exchange header names the rule's exchange came from
// that exchange (an AMQP message written to the topic) and is skipped, so
// that a rule never feeds an exchange its own messages back in a loop.

// BridgeGroupPrefix starts the name of the consumer group that holds a
// bridge rule's committed offsets: the rule's name follows it.
const BridgeGroupPrefix = "__wharf_bridge."

// Headers a bridge adds to each message it publishes: where the record came
// from. With at-least-once delivery, a consumer can drop duplicates by them.
const (
	HeaderKafkaTopic     = "x-kafka-topic"     // long string
	HeaderKafkaPartition = "x-kafka-partition" // int32
	HeaderKafkaOffset    = "x-kafka-offset"    // int64
)

// bridgeReadBytes is about how many bytes of batches a bridge reads, and so
// publishes before it commits, at a time.
const bridgeReadBytes = 1 << 20

// bridgeOffsetRetention keeps a rule's committed offsets however long its
// topic stays quiet: the offsets retention of groups without members does
// not apply to them.
const bridgeOffsetRetention = 100 * 365 * 24 * time.Hour

// BridgeRule is one bridge: the records of Topic (every partition) are
// published into Exchange of Vhost.
type BridgeRule struct {
	// Name identifies the rule; its committed offsets are kept under it.
	Name string
	// Topic is the Kafka topic read.
	Topic string
	// Vhost is the exchange's vhost; empty means DefaultVhost.
	Vhost string
	// Exchange receives the records; it may not be the default exchange.
	Exchange string
	// RoutingKey, when not empty, is every record's routing key; otherwise
	// the routing key is the record's key (crossing.go).
	RoutingKey string
	// FromEarliest starts a partition that has no committed offset at its
	// log start offset instead of its high watermark.
	FromEarliest bool
}

// BridgeOptions configures the bridges.
type BridgeOptions struct {
	// Decompress returns the records section of a compressed batch
	// decompressed; codec is one of the Compression constants. Without it
	// compressed batches cannot be bridged and their partition stops.
	Decompress func(codec int, records []byte) ([]byte, error)
	// RetryInterval is how often a rule waiting for its topic or exchange
	// looks again, and how long a failed publish waits before it is
	// retried; zero means one second.
	RetryInterval time.Duration
}

// BridgeStats counts what a rule did since the process started.
type BridgeStats struct {
	Rule string
	// Bridged counts records published into the exchange (including
	// those that reached no queue).
	Bridged int64
	// Unroutable counts published records that reached no queue (and no
	// alternate exchange's queue): they are dropped.
	Unroutable int64
	// Looped counts records skipped because they came from the rule's
	// exchange.
	Looped int64
	// Rejected counts records a full queue refused (x-overflow
	// reject-publish); like a publisher's nacked message, they are not
	// published again.
	Rejected int64
	// Lag is the records of the topic not yet bridged, over the partitions
	// being bridged.
	Lag int64
}

// Bridges runs bridge rules inside a broker. It stops when the broker
// closes.
type Bridges struct {
	b      *Broker
	opts   BridgeOptions
	logger *slog.Logger
	rules  []*bridgeRule
}

// bridgeRule is one running rule.
type bridgeRule struct {
	BridgeRule
	bridged, unroutable, looped, rejected atomic.Int64

	mu    sync.Mutex
	parts map[bridgePartKey]*bridgePart
	// stopped holds, by partition, why its goroutine last stopped, so that
	// a partition that keeps failing the same way (a batch that cannot be
	// read) is logged once, not at every restart.
	stopped map[int32]string
	// began is the id of the topic incarnation the rule has begun on:
	// partitions of it found later start at their log start, whatever
	// the rule's start, so that records produced to a new partition
	// before it was found are bridged too.
	began TopicID
}

// bridgePartKey names a partition of one incarnation of the topic.
type bridgePartKey struct {
	id    TopicID
	index int32
}

// bridgePart is a partition being bridged.
type bridgePart struct {
	p    *Partition
	next atomic.Int64 // the next offset to bridge
	done chan struct{}
}

// StartBridges starts the rules; each waits for its topic and exchange to
// exist. They run until the broker closes, which waits for them.
func (b *Broker) StartBridges(rules []BridgeRule, opts BridgeOptions) (*Bridges, error) {
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = time.Second
	}
	bs := &Bridges{b: b, opts: opts, logger: b.logger.With("component", "bridge")}
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Name == "" || r.Topic == "" || r.Exchange == "" {
			return nil, fmt.Errorf("bridge rule %q: a name, a topic and an exchange other than the default one are needed", r.Name)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("bridge rule %q: the name is used twice", r.Name)
		}
		seen[r.Name] = true
		if r.Vhost == "" {
			r.Vhost = DefaultVhost
		}
		bs.rules = append(bs.rules, &bridgeRule{BridgeRule: r, parts: map[bridgePartKey]*bridgePart{}, stopped: map[int32]string{}})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		<-b.stop
		cancel()
	}()
	for _, r := range bs.rules {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			bs.supervise(ctx, r)
		}()
	}
	return bs, nil
}

// BridgeGroup returns the consumer group holding a rule's offsets.
func BridgeGroup(rule string) string { return BridgeGroupPrefix + rule }

// Stats returns each rule's counters, in rule order.
func (bs *Bridges) Stats() []BridgeStats {
	out := make([]BridgeStats, 0, len(bs.rules))
	for _, r := range bs.rules {
		st := BridgeStats{Rule: r.Name, Bridged: r.bridged.Load(), Unroutable: r.unroutable.Load(), Looped: r.looped.Load(), Rejected: r.rejected.Load()}
		r.mu.Lock()
		for _, bp := range r.parts {
			_, hw, _ := bp.p.Offsets()
			st.Lag += max(0, hw-bp.next.Load())
		}
		r.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// supervise runs a rule: it waits until the topic and the exchange exist and
// keeps one goroutine bridging each partition of the topic, including
// partitions added later and those of a topic deleted and created again.
func (bs *Bridges) supervise(ctx context.Context, r *bridgeRule) {
	var wg sync.WaitGroup
	defer wg.Wait()
	log := bs.logger.With("rule", r.Name, "topic", r.Topic, "vhost", r.Vhost, "exchange", r.Exchange)
	waiting := ""
	t := time.NewTicker(bs.opts.RetryInterval)
	defer t.Stop()
	for {
		now := bs.waitingFor(r)
		if now != waiting {
			if now != "" {
				log.Warn("bridge waiting for its " + now + " to exist")
			} else {
				log.Info("bridge running")
			}
			waiting = now
		}
		if now == "" {
			bs.startParts(ctx, r, &wg, log)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitingFor names what a rule lacks: "topic", "exchange" or nothing.
func (bs *Bridges) waitingFor(r *bridgeRule) string {
	if _, ok := bs.b.Topic(r.Topic); !ok {
		return "topic"
	}
	if _, ok := bs.b.LookupExchange(r.Vhost, r.Exchange); !ok {
		return "exchange"
	}
	return ""
}

// startParts starts a goroutine for each partition of the topic that has
// none, and forgets those whose goroutine ended.
func (bs *Bridges) startParts(ctx context.Context, r *bridgeRule, wg *sync.WaitGroup, log *slog.Logger) {
	bs.b.topicsMu.RLock()
	t := bs.b.topics[r.Topic]
	var parts []*Partition
	if t != nil {
		parts = t.Partitions
	}
	bs.b.topicsMu.RUnlock()
	if t == nil {
		return
	}
	// A rule has begun on the topic if it did so in this process or
	// committed offsets for it in an earlier one.
	begun := false
	for tp := range bs.b.CommittedOffsets(BridgeGroup(r.Name)) {
		begun = begun || tp.Topic == r.Topic
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	begun = begun || r.began == t.ID
	r.began = t.ID
	fromStart := r.FromEarliest || begun
	for k, bp := range r.parts {
		select {
		case <-bp.done:
			delete(r.parts, k)
		default:
		}
	}
	for _, p := range parts {
		k := bridgePartKey{p.TopicID, p.Index}
		if _, ok := r.parts[k]; ok {
			continue
		}
		bp := &bridgePart{p: p, done: make(chan struct{})}
		r.parts[k] = bp
		wg.Go(func() {
			defer close(bp.done)
			err := bs.runPart(ctx, r, bp, fromStart)
			if err == nil || ctx.Err() != nil {
				return
			}
			r.mu.Lock()
			repeated := r.stopped[p.Index] == err.Error()
			r.stopped[p.Index] = err.Error()
			r.mu.Unlock()
			if !repeated {
				log.Warn("bridge stopped reading a partition; retrying", "partition", p.Index, "err", err)
			}
		})
	}
}

// runPart bridges one partition until ctx ends or the partition's log
// closes (its topic was deleted). fromStart starts a partition without a
// committed offset at its log start rather than its high watermark.
func (bs *Bridges) runPart(ctx context.Context, r *bridgeRule, bp *bridgePart, fromStart bool) error {
	next, err := bs.startOffset(ctx, r, bp.p, fromStart)
	if err != nil {
		return err
	}
	bp.next.Store(next)
	for {
		if err := bp.p.Wait(ctx, next); err != nil {
			return err
		}
		res, err := bp.p.Read(next, bridgeReadBytes)
		if errors.Is(err, ErrOffsetOutOfRange) {
			start, hw, _ := bp.p.Offsets()
			to := min(max(next, start), hw)
			bs.logger.Warn("bridge position out of the log's range; moving", "rule", r.Name, "topic", r.Topic, "partition", bp.p.Index, "from", next, "to", to)
			next = to
			bp.next.Store(next)
			continue
		}
		if err != nil {
			return err
		}
		buf, err := res.AppendTo(nil)
		res.Release()
		if err != nil {
			return err
		}
		if len(buf) == 0 {
			continue
		}
		recs, after, err := bs.decode(buf, next)
		if err != nil {
			return fmt.Errorf("reading %s-%d at %d: %w", r.Topic, bp.p.Index, next, err)
		}
		if err := bs.publishAll(ctx, r, bp.p, recs); err != nil {
			return err
		}
		if err := bs.commit(ctx, r, bp.p, after); err != nil {
			return err
		}
		next = after
		bp.next.Store(next)
	}
}

// startOffset returns where a partition resumes: its committed offset
// (at most the high watermark), or, for a partition the rule has not read
// before, the log start (fromStart) or the high watermark, which it
// commits at once so that a restart resumes there too.
func (bs *Bridges) startOffset(ctx context.Context, r *bridgeRule, p *Partition, fromStart bool) (int64, error) {
	tp := TopicPartition{Topic: r.Topic, Partition: p.Index}
	start, hw, _ := p.Offsets()
	if c, ok := bs.b.CommittedOffsets(BridgeGroup(r.Name))[tp]; ok {
		bs.logger.Info("bridge resumes a partition", "rule", r.Name, "topic", r.Topic, "partition", p.Index, "offset", c.Offset)
		if c.Offset > hw {
			// The log lost records it had not fsynced (fsync policy
			// interval or never): go on from its end.
			bs.logger.Warn("bridge position past the log's end; moving", "rule", r.Name, "topic", r.Topic, "partition", p.Index, "from", c.Offset, "to", hw)
			return hw, bs.commit(ctx, r, p, hw)
		}
		return c.Offset, nil
	}
	from := hw
	if fromStart {
		from = start
	}
	bs.logger.Info("bridge starts a partition", "rule", r.Name, "topic", r.Topic, "partition", p.Index, "offset", from)
	return from, bs.commit(ctx, r, p, from)
}

// commit stores a partition's next offset durably.
func (bs *Bridges) commit(ctx context.Context, r *bridgeRule, p *Partition, next int64) error {
	if t, ok := bs.b.Topic(r.Topic); !ok || t.ID != p.TopicID {
		return fmt.Errorf("committing the bridge's offset %d of %s-%d: %w", next, r.Topic, p.Index, ErrLogClosed)
	}
	errs, persisted := bs.b.CommitOffsets(OffsetCommitRequest{
		Group: BridgeGroup(r.Name), Generation: -1,
		Offsets: []OffsetCommit{{Topic: r.Topic, Partition: p.Index, Offset: next, LeaderEpoch: -1, Retention: bridgeOffsetRetention}},
	})
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("committing the bridge's offset %d of %s-%d: %w", next, r.Topic, p.Index, err)
		}
	}
	if err := persisted.Wait(ctx); err != nil {
		return fmt.Errorf("committing the bridge's offset %d of %s-%d: %w", next, r.Topic, p.Index, err)
	}
	return nil
}

// decode returns the records at or after from in buf, decompressing
// batches as needed, and the offset after the last batch. Control batches
// are skipped.
func (bs *Bridges) decode(buf []byte, from int64) ([]Record, int64, error) {
	var recs []Record
	next := from
	var derr error
	err := SplitBatches(buf, func(b Batch) bool {
		next = max(next, b.NextOffset())
		if b.IsControl() {
			return true
		}
		records := b.Records()
		if c := b.Compression(); c != CompressionNone {
			if bs.opts.Decompress == nil {
				derr = fmt.Errorf("batch at offset %d is compressed (codec %d) and no decompressor is set", b.BaseOffset(), c)
				return false
			}
			records, derr = bs.opts.Decompress(c, records)
			if derr != nil {
				derr = fmt.Errorf("decompressing the batch at offset %d: %w", b.BaseOffset(), derr)
				return false
			}
		}
		derr = DecodeRecordsIn(b, records, func(rec Record) bool {
			if rec.Offset >= from {
				recs = append(recs, rec)
			}
			return true
		})
		return derr == nil
	})
	if err == nil {
		err = derr
	}
	return recs, next, err
}

// publishAll publishes records in order and returns once every one is
// durable in the queues it reached. A publish that fails for want of the
// exchange, during a resource alarm or on a storage error is retried until
// it succeeds or ctx ends; a chunk one of whose appends failed for good is
// published again whole.
func (bs *Bridges) publishAll(ctx context.Context, r *bridgeRule, p *Partition, recs []Record) error {
	type outgoing struct {
		msg     *Message
		headers Table
	}
	out := make([]outgoing, 0, len(recs))
	for _, rec := range recs {
		msg, headers, skip, err := r.message(rec, p.Index)
		if err != nil {
			bs.logger.Warn("bridge cannot read a record's properties; publishing it without them", "rule", r.Name, "topic", r.Topic, "partition", p.Index, "offset", rec.Offset, "err", err)
		}
		if skip {
			r.looped.Add(1)
			continue
		}
		out = append(out, outgoing{msg, headers})
	}
	results := make([]PublishResult, 0, len(out))
	for {
		results = results[:0]
		for _, o := range out {
			res, err := bs.publish(ctx, r, o.msg, o.headers)
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		failed := false
		for _, res := range results {
			err := res.Wait(ctx)
			switch {
			case err == nil:
			case errors.Is(err, ErrQueueFull):
				r.rejected.Add(1)
			case ctx.Err() != nil:
				return ctx.Err()
			default:
				if !failed {
					bs.logger.Warn("bridged message not stored; publishing the chunk again", "rule", r.Name, "topic", r.Topic, "partition", p.Index, "err", err)
				}
				failed = true
			}
		}
		if !failed {
			return nil
		}
		if err := sleepCtx(ctx, bs.opts.RetryInterval); err != nil {
			return err
		}
	}
}

// publish publishes one message, retrying until it is routed or ctx ends.
func (bs *Bridges) publish(ctx context.Context, r *bridgeRule, msg *Message, headers Table) (PublishResult, error) {
	key := msg.RoutingKey
	if r.RoutingKey != "" {
		key = r.RoutingKey
	}
	logged := false
	for {
		err := bs.b.alarms.Err()
		if err == nil {
			var res PublishResult
			res, err = bs.b.Publish(r.Vhost, r.Exchange, []string{key}, headers, msg)
			if err == nil {
				r.bridged.Add(1)
				if res.Routed == 0 {
					r.unroutable.Add(1)
				}
				return res, nil
			}
		}
		if !logged {
			bs.logger.Warn("bridge cannot publish; retrying", "rule", r.Name, "vhost", r.Vhost, "exchange", r.Exchange, "err", err)
			logged = true
		}
		if err := sleepCtx(ctx, bs.opts.RetryInterval); err != nil {
			return PublishResult{}, err
		}
	}
}

// message returns the message a record is published as, with its headers
// for routing, or skip for a record that came from the rule's exchange.
// err reports properties that did not decode: the message then goes
// without the provenance headers.
func (r *bridgeRule) message(rec Record, partition int32) (msg *Message, headers Table, skip bool, err error) {
	msg = MessageFromRecord(rec)
	if msg.Exchange == r.Exchange {
		return nil, nil, true, nil
	}
	msg.Exchange = r.Exchange
	if r.RoutingKey != "" {
		msg.RoutingKey = r.RoutingKey
	}
	props, headers, err := withHeaders(msg.Properties, Table{
		HeaderKafkaTopic:     r.Topic,
		HeaderKafkaPartition: partition,
		HeaderKafkaOffset:    rec.Offset,
	})
	if err != nil {
		return msg, nil, false, err
	}
	msg.Properties = props
	return msg, headers, false, nil
}

// withHeaders returns encoded properties with the application headers in
// add set, and the resulting headers table.
func withHeaders(props []byte, add Table) ([]byte, Table, error) {
	bp, err := splitProperties(props)
	if err != nil {
		return nil, nil, err
	}
	h, err := bp.headers()
	if err != nil {
		return nil, nil, err
	}
	if h == nil {
		h = make(Table, len(add))
	}
	for k, v := range add {
		h[k] = v
	}
	enc, err := appendWireTable(nil, h, 1)
	if err != nil {
		return nil, nil, err
	}
	bp.fields[propIndexHeaders] = enc
	return bp.encode(), h, nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Rules returns the rules, in the order Stats reports them.
func (bs *Bridges) Rules() []BridgeRule {
	out := make([]BridgeRule, len(bs.rules))
	for i, r := range bs.rules {
		out[i] = r.BridgeRule
	}
	return out
}
