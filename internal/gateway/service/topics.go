package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/broker"
)

// ProduceRecord is one record to produce. Partition -1 chooses it: by the
// murmur2 hash of the key, as Kafka's clients do, or round-robin for a
// record without a key. A zero Timestamp means now.
type ProduceRecord struct {
	Partition int32
	Key       []byte
	Value     []byte
	Headers   []broker.Header
	Timestamp int64
}

// Produced is where a record went.
type Produced struct {
	Partition int32
	Offset    int64
}

// FetchedRecord is a record read back from a partition.
type FetchedRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []broker.Header
	// Properties are the AMQP properties of a record written from an AMQP
	// message (its x-amqp-properties header, then left out of Headers);
	// nil for other records. Exchange is its x-amqp-exchange header.
	// See crossing.go.
	Properties *Properties
	Exchange   string
}

// topic returns a topic's description, creating it if allowed.
func (s *Service) topic(ctx context.Context, name string, create bool) (broker.TopicInfo, error) {
	if info, ok := s.b.Topic(name); ok {
		return info, nil
	}
	if !create || !s.opts.AutoCreateTopics {
		return broker.TopicInfo{}, Errorf(CodeNotFound, "no topic '%s'", name)
	}
	info, err := s.b.CreateTopic(ctx, name, s.opts.DefaultPartitions, nil)
	if errors.Is(err, broker.ErrTopicExists) {
		if info, ok := s.b.Topic(name); ok {
			return info, nil
		}
	}
	if err != nil {
		return broker.TopicInfo{}, AsError(err)
	}
	s.logger.Info("auto-created topic", "topic", name, "partitions", s.opts.DefaultPartitions)
	return info, nil
}

// Partitions returns the number of partitions of a topic.
func (s *Service) Partitions(name string) (int32, error) {
	info, ok := s.b.Topic(name)
	if !ok {
		return 0, Errorf(CodeNotFound, "no topic '%s'", name)
	}
	return info.Partitions, nil
}

// partition returns a partition of a topic, with a clear error.
func (s *Service) partition(topic string, index int32) (*broker.Partition, error) {
	p, err := s.b.Partition(topic, index)
	if err != nil {
		if errors.Is(err, broker.ErrUnknownPartition) {
			return nil, Errorf(CodeNotFound, "topic '%s' has no partition %d", topic, index)
		}
		if errors.Is(err, broker.ErrUnknownTopic) {
			return nil, Errorf(CodeNotFound, "no topic '%s'", topic)
		}
		return nil, AsError(err)
	}
	return p, nil
}

// Produce appends records to a topic, one batch per partition, and returns
// where each went once all of them are durable. Records for one partition
// keep their order.
func (s *Service) Produce(ctx context.Context, topic string, recs []ProduceRecord) ([]Produced, error) {
	pr, err := s.Append(ctx, topic, recs)
	if err != nil {
		return nil, err
	}
	return pr.Wait(ctx)
}

// Producing is an append under way: Wait says where the records went once
// they are durable.
type Producing struct {
	out   []Produced
	waits []producingPart
}

type producingPart struct {
	idx     []int
	res     broker.AppendResult
	pending broker.Pending
}

// Wait returns where each record went once all of them are durable.
func (p *Producing) Wait(ctx context.Context) ([]Produced, error) {
	for _, w := range p.waits {
		if err := w.pending.Wait(ctx); err != nil {
			return nil, AsError(fmt.Errorf("waiting for the records to be durable: %w", err))
		}
		for j, i := range w.idx {
			p.out[i].Offset = w.res.BaseOffset + int64(j)
		}
	}
	return p.out, nil
}

// Append is Produce without the wait: the records are appended, in order,
// before it returns, so two appends from one caller keep their order, and
// the caller waits for durability when it chooses.
func (s *Service) Append(ctx context.Context, topic string, recs []ProduceRecord) (*Producing, error) {
	if len(recs) == 0 {
		return nil, Errorf(CodeInvalid, "no records to produce")
	}
	if err := s.b.Alarms().Err(); err != nil {
		return nil, AsError(err)
	}
	info, err := s.topic(ctx, topic, true)
	if err != nil {
		return nil, err
	}
	out := make([]Produced, len(recs))
	byPart := map[int32][]int{}
	var order []int32
	now := s.opts.Now().UnixMilli()
	for i, r := range recs {
		if len(r.Value) > s.opts.MaxMessageBytes {
			return nil, Errorf(CodeTooLarge, "record %d has a value of %d bytes, more than the limit of %d", i, len(r.Value), s.opts.MaxMessageBytes)
		}
		p := r.Partition
		switch {
		case p >= 0:
			if p >= info.Partitions {
				return nil, Errorf(CodeNotFound, "topic '%s' has no partition %d (it has %d)", topic, p, info.Partitions)
			}
		case p != -1:
			return nil, Errorf(CodeInvalid, "partition %d: give -1 or a partition index", p)
		case r.Key != nil:
			p = broker.PartitionForKey(r.Key, info.Partitions)
		default:
			p = int32(s.rr.Add(1) % uint32(info.Partitions))
		}
		out[i].Partition = p
		if _, ok := byPart[p]; !ok {
			order = append(order, p)
		}
		byPart[p] = append(byPart[p], i)
	}
	pr := &Producing{out: out}
	for _, p := range order {
		idx := byPart[p]
		batch := make([]broker.Record, len(idx))
		for j, i := range idx {
			r := recs[i]
			ts := r.Timestamp
			if ts == 0 {
				ts = now
			}
			batch[j] = broker.Record{Timestamp: ts, Key: r.Key, Value: r.Value, Headers: r.Headers}
		}
		part, err := s.partition(topic, p)
		if err != nil {
			return nil, err
		}
		res, pending, err := part.Produce(broker.EncodeRecords(batch))
		if err != nil {
			return nil, AsError(fmt.Errorf("producing to %s-%d: %w", topic, p, err))
		}
		pr.waits = append(pr.waits, producingPart{idx: idx, res: res, pending: pending})
	}
	return pr, nil
}

// StartAt says where a subscription or fetch starts: Kind is "earliest",
// "latest", "offset" (Offset) or "timestamp" (Timestamp, milliseconds).
type StartAt struct {
	Kind      string
	Offset    int64
	Timestamp int64
}

// StartOffset resolves where to start reading a partition. An offset below
// the log start starts at the log start (retention removed what was
// there); one past the high watermark is out of range.
func (s *Service) StartOffset(topic string, partition int32, at StartAt) (int64, error) {
	p, err := s.partition(topic, partition)
	if err != nil {
		return 0, err
	}
	start, hw, _ := p.Offsets()
	switch at.Kind {
	case "", "latest":
		return hw, nil
	case "earliest":
		return start, nil
	case "offset":
		if at.Offset > hw {
			return 0, Errorf(CodeOutOfRange, "offset %d is past the end of %s-%d (%d)", at.Offset, topic, partition, hw)
		}
		return max(at.Offset, start), nil
	case "timestamp":
		off, _, err := p.OffsetForTime(at.Timestamp)
		if err != nil {
			return 0, AsError(err)
		}
		if off < 0 {
			return hw, nil
		}
		return max(off, start), nil
	}
	return 0, Errorf(CodeInvalid, "start %q: give earliest, latest, offset or timestamp", at.Kind)
}

// Offsets returns a partition's log start offset and high watermark.
func (s *Service) Offsets(topic string, partition int32) (start, hw int64, err error) {
	p, err := s.partition(topic, partition)
	if err != nil {
		return 0, 0, err
	}
	start, hw, _ = p.Offsets()
	return start, hw, nil
}

// Fetch reads records of a partition from offset, about maxBytes of stored
// batches (at least one batch). It returns the records at or after offset
// and the offset to fetch next; an empty result at the high watermark
// means there is nothing new yet (see Wait).
func (s *Service) Fetch(topic string, partition int32, offset int64, maxBytes int) ([]FetchedRecord, int64, error) {
	p, err := s.partition(topic, partition)
	if err != nil {
		return nil, offset, err
	}
	res, err := p.ReadStable(offset, maxBytes)
	if err != nil {
		return nil, offset, AsError(err)
	}
	buf, err := res.AppendTo(nil)
	res.Release()
	if err != nil {
		return nil, offset, AsError(err)
	}
	aborted := newAbortedFilter(p.AbortedTxns(offset, res.LastStable))
	var out []FetchedRecord
	next := offset
	var derr error
	err = broker.SplitBatches(buf, func(b broker.Batch) bool {
		next = max(next, b.NextOffset())
		if aborted.skip(b) {
			return true
		}
		records := b.Records()
		if c := b.Compression(); c != broker.CompressionNone {
			records, derr = s.decomp.Decompress(records, kgo.CompressionCodecType(c))
			if derr != nil {
				derr = fmt.Errorf("decompressing the batch at offset %d of %s-%d: %w", b.BaseOffset(), topic, partition, derr)
				return false
			}
		}
		derr = broker.DecodeRecordsIn(b, records, func(r broker.Record) bool {
			if r.Offset >= offset {
				props, exchange, headers := recordAMQP(r.Headers)
				out = append(out, FetchedRecord{Topic: topic, Partition: partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value,
					Headers: headers, Properties: props, Exchange: exchange})
			}
			return true
		})
		return derr == nil
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return out, next, AsError(err)
	}
	return out, next, nil
}

// Wait blocks until a partition has committed data at offset (its last
// stable offset is past it), or ctx ends.
func (s *Service) Wait(ctx context.Context, topic string, partition int32, offset int64) error {
	p, err := s.partition(topic, partition)
	if err != nil {
		return err
	}
	return p.WaitStable(ctx, offset)
}
