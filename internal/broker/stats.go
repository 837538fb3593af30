package broker

import (
	"slices"
	"sync/atomic"
)

// flowCounters count what went into and out of a partition or queue since
// the broker started. Records out of a partition are not counted: reads
// serve stored batches without decoding them, so only their bytes are
// known.
type flowCounters struct {
	msgsIn, bytesIn, msgsOut, bytesOut atomic.Int64
}

func (f *flowCounters) in(msgs int64, bytes int) {
	f.msgsIn.Add(msgs)
	f.bytesIn.Add(int64(bytes))
}

func (f *flowCounters) out(msgs int64, bytes int) {
	f.msgsOut.Add(msgs)
	f.bytesOut.Add(int64(bytes))
}

// PartitionStats is a partition's state and traffic, for metrics.
type PartitionStats struct {
	Topic         string
	Partition     int32
	StartOffset   int64
	HighWatermark int64
	RecordsIn     int64 // records appended since start
	BytesIn       int64 // bytes of batches appended since start
	BytesOut      int64 // bytes of batches read since start
}

// PartitionStats returns every partition's stats, by topic and partition;
// the hidden logs of stream queues are not topics (stream.go).
func (b *Broker) PartitionStats() []PartitionStats {
	b.topicsMu.RLock()
	var out []PartitionStats
	for _, t := range b.topics {
		if hiddenTopic(t.Name) {
			continue // a stream queue's log: its traffic is in QueueStats
		}
		for _, p := range t.Partitions {
			start, hw, _ := p.Offsets()
			out = append(out, PartitionStats{
				Topic: t.Name, Partition: p.Index, StartOffset: start, HighWatermark: hw,
				RecordsIn: p.stats.msgsIn.Load(), BytesIn: p.stats.bytesIn.Load(), BytesOut: p.stats.bytesOut.Load(),
			})
		}
	}
	b.topicsMu.RUnlock()
	slices.SortFunc(out, func(a, b PartitionStats) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// QueueStats is a queue's state and traffic, for metrics.
type QueueStats struct {
	Vhost     string
	Name      string
	Ready     int
	Unacked   int
	Consumers int
	MsgsIn    int64 // messages enqueued since start
	BytesIn   int64 // bytes of their bodies
	MsgsOut   int64 // messages delivered or got since start (redeliveries count again)
	BytesOut  int64
}

// QueueStats returns every queue's stats.
func (b *Broker) QueueStats() []QueueStats {
	b.amqp.mu.RLock()
	qs := make([]*Queue, 0, len(b.queues.byID))
	for _, q := range b.queues.byID {
		qs = append(qs, q)
	}
	ss := make([]*Stream, 0, len(b.queues.streams))
	for _, s := range b.queues.streams {
		ss = append(ss, s)
	}
	b.amqp.mu.RUnlock()
	out := make([]QueueStats, 0, len(qs)+len(ss))
	for _, s := range ss {
		out = append(out, s.queueStats())
	}
	for _, q := range qs {
		q.mu.Lock()
		st := QueueStats{Vhost: q.Vhost, Name: q.Name, Ready: q.readyLocked(), Unacked: q.unacked, Consumers: len(q.consumers)}
		q.mu.Unlock()
		st.MsgsIn, st.BytesIn = q.stats.msgsIn.Load(), q.stats.bytesIn.Load()
		st.MsgsOut, st.BytesOut = q.stats.msgsOut.Load(), q.stats.bytesOut.Load()
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b QueueStats) int {
		if a.Vhost != b.Vhost {
			if a.Vhost < b.Vhost {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// GroupLag is how far a consumer group is behind on one partition.
type GroupLag struct {
	Group     string
	Topic     string
	Partition int32
	Committed int64
	Lag       int64 // high watermark minus committed offset, at least 0
}

// GroupLags returns the lag of every committed offset of every group on a
// partition that still exists.
func (b *Broker) GroupLags() []GroupLag {
	var out []GroupLag
	for _, g := range b.ListGroups() {
		offs := b.CommittedOffsets(g.Group)
		for tp, co := range offs {
			p, err := b.Partition(tp.Topic, tp.Partition)
			if err != nil || co.Offset < 0 {
				continue
			}
			_, hw, _ := p.Offsets()
			out = append(out, GroupLag{Group: g.Group, Topic: tp.Topic, Partition: tp.Partition, Committed: co.Offset, Lag: max(0, hw-co.Offset)})
		}
	}
	slices.SortFunc(out, func(a, b GroupLag) int {
		switch {
		case a.Group != b.Group:
			if a.Group < b.Group {
				return -1
			}
			return 1
		case a.Topic != b.Topic:
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}
