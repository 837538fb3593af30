package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stream queues (x-queue-type stream) are append-only logs read by offset,
// and their log is a topic:
//
//   - a stream queue in the default vhost whose name is a legal Kafka topic
//     name is the topic of that name. Declaring it creates the topic (one
//     partition, the retention arguments as topic configs) or adopts the
//     existing one, whatever its partition count; deleting it deletes the
//     topic; deleting the topic (over Kafka) deletes the queue;
//   - any other stream queue has a hidden topic, named by the queue's id
//     with a prefix no Kafka topic name can have ('#'): Kafka clients
//     neither list it nor can name it (the Broker's topic methods answer
//     ErrUnknownTopic for it). It is created and deleted with the queue.
//
// Topic first, queue second on declaration; queue first, topic second on
// deletion (a Kafka-side deletion goes topic first, then queue). A crash
// between the two leaves either a topic without its queue or a queue
// without its topic; reconcileStreams, on open, deletes both kinds of
// remains: a stream queue whose topic is gone and a hidden topic whose
// queue is gone. A legal-named topic left without its queue is an ordinary
// topic, as if Kafka had created it.

// streamTopicPrefix starts the names of hidden stream topics; '#' is not
// allowed in Kafka topic names.
const streamTopicPrefix = "#stream."

// The headers of a stream delivery. A message routed to a stream queue
// names the partition to append it to with HeaderKafkaPartition
// (x-kafka-partition, an integer), the header a bridge rule writes with
// the partition a record came from (bridge.go): a bridged message reaching
// a stream whose topic has that partition keeps its partition number.
const (
	// HeaderStreamOffset carries a delivery's offset in its partition.
	HeaderStreamOffset = "x-stream-offset"
	// HeaderStreamPartition carries a delivery's partition when the
	// stream's topic has more than one.
	HeaderStreamPartition = "x-stream-partition"
)

// ErrStreamClosed is a stream reader's stream being deleted (or the broker
// closing).
var ErrStreamClosed = errors.New("stream queue closed")

// StreamTopicName returns the topic holding the log of stream queue name
// (id) in vhost.
func StreamTopicName(vhost, name string, id QueueID) string {
	if vhost == DefaultVhost && ValidateTopicName(name) == nil {
		return name
	}
	return streamTopicPrefix + id.String()
}

// hiddenTopic reports whether a topic is a stream queue's hidden log.
func hiddenTopic(name string) bool { return strings.HasPrefix(name, streamTopicPrefix) }

// Stream is the runtime of a stream queue: where its log is and who reads
// it. It holds no lock of the broker; its readers and appenders work on
// the topic's partitions directly.
type Stream struct {
	Vhost string
	Name  string
	ID    QueueID
	// Topic is the topic holding the log (see StreamTopicName).
	Topic string

	b         *Broker
	done      chan struct{} // closed when the queue is deleted or the broker closes
	closeOnce sync.Once
	keyless   atomic.Uint32 // round robin of messages without a routing key
	consumers atomic.Int64
	msgsIn    atomic.Int64 // messages appended since start
	bytesIn   atomic.Int64 // bytes of their bodies
	msgsOut   atomic.Int64 // messages read by consumers since start
	bytesOut  atomic.Int64
}

// queueStats is the stream's QueueStats: the records its log holds are
// ready, none is unacknowledged (acks only give credit back).
func (s *Stream) queueStats() QueueStats {
	return QueueStats{Vhost: s.Vhost, Name: s.Name, Ready: int(s.Messages()), Consumers: s.Consumers(),
		MsgsIn: s.msgsIn.Load(), BytesIn: s.bytesIn.Load(), MsgsOut: s.msgsOut.Load(), BytesOut: s.bytesOut.Load()}
}

func (b *Broker) newStream(vhost, name string, id QueueID) *Stream {
	return &Stream{Vhost: vhost, Name: name, ID: id, Topic: StreamTopicName(vhost, name, id), b: b, done: make(chan struct{})}
}

// String names the queue as RabbitMQ does.
func (s *Stream) String() string { return rs("queue", s.Vhost, s.Name) }

func (s *Stream) close() { s.closeOnce.Do(func() { close(s.done) }) }

// Consumers returns the number of readers consuming the stream.
func (s *Stream) Consumers() int { return int(s.consumers.Load()) }

// AddConsumer and RemoveConsumer count the stream's consumers, for
// listings and queue.delete's if-unused.
func (s *Stream) AddConsumer()    { s.consumers.Add(1) }
func (s *Stream) RemoveConsumer() { s.consumers.Add(-1) }

// partitions returns the open partitions of the stream's topic.
func (s *Stream) partitions() ([]*Partition, error) {
	s.b.topicsMu.RLock()
	defer s.b.topicsMu.RUnlock()
	t, ok := s.b.topics[s.Topic]
	if !ok {
		return nil, fmt.Errorf("%w: the log of %s", ErrStreamClosed, s)
	}
	return t.Partitions, nil
}

// Partitions returns the number of partitions of the stream's topic.
func (s *Stream) Partitions() int {
	ps, _ := s.partitions()
	return len(ps)
}

// Messages returns the number of records the stream's log holds.
func (s *Stream) Messages() int64 {
	ps, _ := s.partitions()
	var n int64
	for _, p := range ps {
		start, hw, _ := p.Offsets()
		n += hw - start
	}
	return n
}

// append stores a message as one record of the stream's log and returns
// when it is durable. The partition is the one the x-kafka-partition
// header names when it is an integer in range, else murmur2 of the routing
// key (Kafka's default partitioner), else, for a message without a routing
// key, the next in round robin.
func (s *Stream) append(msg *Message) (Pending, error) {
	ps, err := s.partitions()
	if err != nil {
		return Pending{}, err
	}
	rec, err := RecordFromMessage(msg)
	if err != nil {
		return Pending{}, fmt.Errorf("making a record of a message: %w", err)
	}
	p := ps[s.choosePartition(msg, len(ps))]
	_, pending, err := p.Produce(EncodeRecords([]Record{rec}))
	if err == nil {
		s.msgsIn.Add(1)
		s.bytesIn.Add(int64(len(msg.Body)))
	}
	return pending, err
}

// choosePartition picks the partition of a message among n.
func (s *Stream) choosePartition(msg *Message, n int) int {
	if n == 1 {
		return 0
	}
	if i, ok := explicitPartition(msg.Properties); ok {
		if i >= 0 && i < int64(n) {
			return int(i)
		}
		s.b.logger.Debug("x-kafka-partition out of range; partitioning by routing key", "queue", s.Name, "partition", i, "partitions", n)
	}
	if msg.RoutingKey == "" {
		return int((s.keyless.Add(1) - 1) % uint32(n))
	}
	return int(PartitionForKey([]byte(msg.RoutingKey), int32(n)))
}

// explicitPartition reads the x-kafka-partition header: an integer, or a
// string of decimal digits.
func explicitPartition(props []byte) (int64, bool) {
	bp, err := splitProperties(props)
	if err != nil {
		return 0, false
	}
	h, err := bp.headers()
	if err != nil || h == nil {
		return 0, false
	}
	v, ok := h[HeaderKafkaPartition]
	if !ok {
		return 0, false
	}
	if s, ok := v.(string); ok {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if !isIntArg(v) {
		return 0, false
	}
	neg, mag, _ := intValue(v)
	if neg {
		return -int64(mag), true
	}
	return int64(mag), true
}

// ParseStreamInterval reads an x-max-age or an x-stream-offset interval:
// a positive count and one of the units Y (365 days), M (30 days), D, h, m
// and s, as RabbitMQ reads them.
func ParseStreamInterval(s string) (time.Duration, bool) {
	m := maxAgePattern().FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	unit := map[string]time.Duration{"Y": 365 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "D": 24 * time.Hour,
		"h": time.Hour, "m": time.Minute, "s": time.Second}[m[2]]
	if n > int64(1<<62)/int64(unit) {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// streamTopicConfigs maps a stream queue's retention arguments to topic
// configs: x-max-age to retention.ms, x-max-length-bytes to
// retention.bytes, x-stream-max-segment-size-bytes to segment.bytes.
func streamTopicConfigs(args Table) map[string]string {
	configs := map[string]string{}
	if v, ok := args["x-max-age"].(string); ok {
		if d, ok := ParseStreamInterval(v); ok {
			configs["retention.ms"] = strconv.FormatInt(d.Milliseconds(), 10)
		}
	}
	for arg, key := range map[string]string{"x-max-length-bytes": "retention.bytes", "x-stream-max-segment-size-bytes": "segment.bytes"} {
		if v, ok := args[arg]; ok && isIntArg(v) {
			_, mag, _ := intValue(v)
			configs[key] = strconv.FormatUint(uint64(mag), 10)
		}
	}
	return configs
}

// prepareStreamTopic creates or adopts the topic of a stream queue being
// declared, before the declaration is logged. It returns a function that
// undoes a creation, for when the declaration then fails. Callers hold
// b.mu.
func (b *Broker) prepareStreamTopic(ctx context.Context, vhost, name string, id QueueID, args Table) (undo func(), err error) {
	topic := StreamTopicName(vhost, name, id)
	res := rs("queue", vhost, name)
	configs := streamTopicConfigs(args)
	if _, err := topicLogConfig(b.opts.LogDefaults, configs); err != nil {
		return nil, modelErr(ErrPreconditionFailed, "invalid retention arguments for %s: %v", res, err)
	}
	if ts, ok := b.state.Topic(topic); ok {
		if len(configs) == 0 {
			return func() {}, nil
		}
		merged := map[string]string{}
		for k, v := range ts.Configs {
			merged[k] = v
		}
		for k, v := range configs {
			merged[k] = v
		}
		if err := b.setTopicConfigLocked(ctx, topic, merged); err != nil {
			return nil, fmt.Errorf("applying the retention arguments of %s to topic %q: %w", res, topic, err)
		}
		return func() {}, nil
	}
	if err := b.checkTopicLimit(topic); err != nil {
		// The queue is refused as a queue over the limit is: 406.
		return nil, &ModelError{Kind: errors.Join(ErrPreconditionFailed, ErrLimitReached),
			Text: fmt.Sprintf("cannot declare stream %s: %v", res, err)}
	}
	if err := b.createTopicLocked(ctx, topic, 1, configs); err != nil {
		return nil, fmt.Errorf("creating the log of %s: %w", res, err)
	}
	return func() {
		if err := b.deleteTopicLocked(ctx, topic); err != nil {
			b.logger.Warn("removing the log of a stream queue not declared", "queue", name, "topic", topic, "err", err)
		}
	}, nil
}

// createTopicLocked creates a topic whose name and configs the caller has
// checked. Callers hold b.mu.
func (b *Broker) createTopicLocked(ctx context.Context, name string, partitions int32, configs map[string]string) error {
	var id TopicID
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("making a topic id: %w", err)
	}
	if err := b.commit(ctx, Command{CreateTopic: &CreateTopic{Name: name, ID: id, Partitions: partitions, Configs: configs}}); err != nil {
		return err
	}
	ts, _ := b.state.Topic(name)
	return b.materialise(ts)
}

// setTopicConfigLocked replaces a topic's explicit configs. Callers hold
// b.mu.
func (b *Broker) setTopicConfigLocked(ctx context.Context, name string, configs map[string]string) error {
	cfg, err := topicLogConfig(b.opts.LogDefaults, configs)
	if err != nil {
		return err
	}
	if err := b.commit(ctx, Command{SetTopicConfig: &SetTopicConfig{Name: name, Configs: configs}}); err != nil {
		return err
	}
	b.topicsMu.RLock()
	t := b.topics[name]
	b.topicsMu.RUnlock()
	if t == nil {
		return nil
	}
	for _, p := range t.Partitions {
		if err := p.log.SetConfig(cfg); err != nil {
			return err
		}
	}
	return nil
}

// retireStreams ends the readers of deleted stream queues and deletes
// their topics. Callers hold b.mu.
func (b *Broker) retireStreams(ctx context.Context, gone []*Stream) {
	for _, s := range gone {
		s.close()
		if _, ok := b.state.Topic(s.Topic); !ok {
			continue
		}
		if err := b.deleteTopicLocked(ctx, s.Topic); err != nil {
			b.logger.Warn("deleting the log of a deleted stream queue", "queue", s.Name, "topic", s.Topic, "err", err)
		}
	}
}

// streamTopicDeleted deletes the stream queue whose log a topic deleted
// over Kafka was. Callers hold b.mu.
func (b *Broker) streamTopicDeleted(ctx context.Context, topic string) error {
	vh, err := b.state.amqp.vhost(DefaultVhost)
	if err != nil {
		return nil
	}
	q, ok := vh.queues[topic]
	if !ok || q.typ != QueueStream || StreamTopicName(DefaultVhost, topic, q.def.ID) != topic {
		return nil
	}
	p := newAMQPPlan()
	p.deleteQueue(q)
	return b.commitAMQP(ctx, p)
}

// reconcileStreams deletes what an interrupted declaration or deletion
// left: stream queues whose topic is gone and hidden topics whose queue
// is. It runs once, on open, before anything else can change the state.
func (b *Broker) reconcileStreams(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	claimed := map[string]bool{}
	p := newAMQPPlan()
	for _, vh := range b.state.amqp.vhosts {
		for _, q := range vh.queues {
			if q.typ != QueueStream {
				continue
			}
			topic := StreamTopicName(q.def.Vhost, q.def.Name, q.def.ID)
			if _, ok := b.state.Topic(topic); ok {
				claimed[topic] = true
				continue
			}
			b.logger.Warn("deleting a stream queue whose log is gone", "vhost", q.def.Vhost, "queue", q.def.Name, "topic", topic)
			p.deleteQueue(q)
		}
	}
	if err := b.commitAMQP(ctx, p); err != nil {
		return fmt.Errorf("deleting stream queues without a log: %w", err)
	}
	for _, ts := range b.state.Topics() {
		if hiddenTopic(ts.Name) && !claimed[ts.Name] {
			b.logger.Warn("deleting the log of a deleted stream queue", "topic", ts.Name)
			if err := b.deleteTopicLocked(ctx, ts.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stream returns the runtime of queue name in vhost when it is a stream
// queue: ok is false for a queue of another type. Errors are those of
// Queue: ErrNotFound, ErrResourceLocked.
func (b *Broker) Stream(vhost, connID, name string) (s *Stream, ok bool, err error) {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	vh, err := b.state.amqp.vhost(vhost)
	if err != nil {
		return nil, false, err
	}
	aq, found := vh.queues[name]
	if !found {
		return nil, false, modelErr(ErrNotFound, "no %s", rs("queue", vhost, name))
	}
	if err := checkExclusiveAccess(aq, connID, false); err != nil {
		return nil, false, err
	}
	if aq.typ != QueueStream {
		return nil, false, nil
	}
	s, found = b.queues.streams[aq.def.ID]
	if !found {
		return nil, false, modelErr(ErrNotFound, "no %s", rs("queue", vhost, name))
	}
	return s, true, nil
}

// streamQueueRefused is the refusal of an operation on a stream queue
// that only other queue types have (basic.get, queue.purge, a queue
// subscription of the gateway).
func streamQueueRefused(vhost, name string) error {
	return modelErr(ErrNotImplemented, "%s is a stream queue: read it with basic.consume and x-stream-offset, or as a Kafka topic", rs("queue", vhost, name))
}
