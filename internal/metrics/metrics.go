package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharfmq/wharf/internal/broker"
)

// NewFsyncHistogram returns the histogram of fsync latencies, in seconds;
// pass its Observe to the broker through ObserveFsync.
func NewFsyncHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wharf_fsync_duration_seconds",
		Help:    "Duration of each fsync of a log segment (topics, queues and the broker's own logs).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
}

// ObserveFsync adapts a histogram to the broker's ObserveSync option.
func ObserveFsync(h prometheus.Histogram) func(time.Duration) {
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}

// WebSocketStats are the WebSocket gateway's counters.
type WebSocketStats struct {
	FramesIn      int64
	Fanout        int64
	RecordsOut    int64
	DeliveriesOut int64
	Produced      int64
	Published     int64
	SlowClients   int64
	AuthFailures  int64
}

// Collector reads the broker and the listeners at each scrape.
type Collector struct {
	b *broker.Broker

	d     descs
	mu    sync.Mutex
	conns map[string]func() int
	ws    func() WebSocketStats
	bufd  map[string]func() int64
}

// NewCollector returns a collector over b. Listeners are added with
// SetConnections and SetWebSocket as they start.
func NewCollector(b *broker.Broker) *Collector {
	return &Collector{b: b, d: newDescs(), conns: map[string]func() int{}, bufd: map[string]func() int64{}}
}

// SetBuffered names the function returning the bytes a protocol's
// connections hold in memory, waiting for their clients to read them.
func (c *Collector) SetBuffered(protocol string, bytes func() int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bufd[protocol] = bytes
}

// SetConnections names the function counting a protocol's open
// connections.
func (c *Collector) SetConnections(protocol string, count func() int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns[protocol] = count
}

// SetWebSocket names the function reading the WebSocket counters.
func (c *Collector) SetWebSocket(stats func() WebSocketStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws = stats
}

// descs are the collector's metric descriptions.
type descs struct {
	descConnections, descBuffered, descPartRecordsIn, descPartBytesIn, descPartBytesOut, descPartHW, descPartStart, descQueueReady, descQueueUnacked, descQueueConsumers, descQueueMsgsIn, descQueueBytesIn, descQueueMsgsOut, descQueueBytesOut, descLag, descCommitted, descWSFramesIn, descWSFanout, descWSRecordsOut, descWSDeliveries, descWSProduced, descWSPublished, descWSSlow, descWSAuthFailed *prometheus.Desc
}

func newDescs() descs {
	partLabels := []string{"topic", "partition"}
	queueLabels := []string{"vhost", "queue"}
	lagLabels := []string{"group", "topic", "partition"}
	return descs{
		descConnections:    prometheus.NewDesc("wharf_connections", "Open client connections, by protocol.", []string{"protocol"}, nil),
		descBuffered:       prometheus.NewDesc("wharf_outbound_buffered_bytes", "Bytes held in memory waiting for clients to read them (AMQP outboxes, Kafka responses being written), by protocol.", []string{"protocol"}, nil),
		descPartRecordsIn:  prometheus.NewDesc("wharf_topic_records_in_total", "Records appended to a partition since the broker started.", partLabels, nil),
		descPartBytesIn:    prometheus.NewDesc("wharf_topic_bytes_in_total", "Bytes of record batches appended to a partition since the broker started.", partLabels, nil),
		descPartBytesOut:   prometheus.NewDesc("wharf_topic_bytes_out_total", "Bytes of record batches read from a partition (Kafka fetches, gateway reads) since the broker started.", partLabels, nil),
		descPartHW:         prometheus.NewDesc("wharf_partition_high_watermark", "High watermark of a partition: the offset the next readable record gets.", partLabels, nil),
		descPartStart:      prometheus.NewDesc("wharf_partition_start_offset", "Log start offset of a partition.", partLabels, nil),
		descQueueReady:     prometheus.NewDesc("wharf_queue_messages_ready", "Messages ready for delivery in a queue.", queueLabels, nil),
		descQueueUnacked:   prometheus.NewDesc("wharf_queue_messages_unacked", "Messages delivered from a queue and not yet acknowledged.", queueLabels, nil),
		descQueueConsumers: prometheus.NewDesc("wharf_queue_consumers", "Consumers of a queue.", queueLabels, nil),
		descQueueMsgsIn:    prometheus.NewDesc("wharf_queue_messages_in_total", "Messages enqueued since the broker started.", queueLabels, nil),
		descQueueBytesIn:   prometheus.NewDesc("wharf_queue_bytes_in_total", "Bytes of message bodies enqueued since the broker started.", queueLabels, nil),
		descQueueMsgsOut:   prometheus.NewDesc("wharf_queue_messages_out_total", "Messages delivered or got since the broker started; redeliveries count again.", queueLabels, nil),
		descQueueBytesOut:  prometheus.NewDesc("wharf_queue_bytes_out_total", "Bytes of message bodies delivered or got since the broker started.", queueLabels, nil),
		descLag:            prometheus.NewDesc("wharf_consumer_group_lag", "Records between a consumer group's committed offset and the partition's high watermark.", lagLabels, nil),
		descCommitted:      prometheus.NewDesc("wharf_consumer_group_committed_offset", "A consumer group's committed offset on a partition.", lagLabels, nil),
		descWSFramesIn:     prometheus.NewDesc("wharf_websocket_frames_in_total", "Frames received from WebSocket clients.", nil, nil),
		descWSFanout:       prometheus.NewDesc("wharf_websocket_messages_out_total", "Client messages (send, group, broadcast) queued for WebSocket connections.", nil, nil),
		descWSRecordsOut:   prometheus.NewDesc("wharf_websocket_records_out_total", "Topic records pushed to WebSocket subscriptions.", nil, nil),
		descWSDeliveries:   prometheus.NewDesc("wharf_websocket_deliveries_out_total", "Queue messages pushed to WebSocket subscriptions.", nil, nil),
		descWSProduced:     prometheus.NewDesc("wharf_websocket_produced_total", "Records produced over WebSocket and acknowledged.", nil, nil),
		descWSPublished:    prometheus.NewDesc("wharf_websocket_published_total", "Messages published over WebSocket and acknowledged.", nil, nil),
		descWSSlow:         prometheus.NewDesc("wharf_websocket_slow_client_disconnects_total", "WebSocket connections closed (4001) because their outbound buffer overflowed.", nil, nil),
		descWSAuthFailed:   prometheus.NewDesc("wharf_websocket_auth_failures_total", "Refused WebSocket logins.", nil, nil),
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.d.descConnections, c.d.descBuffered, c.d.descPartRecordsIn, c.d.descPartBytesIn, c.d.descPartBytesOut, c.d.descPartHW, c.d.descPartStart,
		c.d.descQueueReady, c.d.descQueueUnacked, c.d.descQueueConsumers, c.d.descQueueMsgsIn, c.d.descQueueBytesIn, c.d.descQueueMsgsOut, c.d.descQueueBytesOut,
		c.d.descLag, c.d.descCommitted,
		c.d.descWSFramesIn, c.d.descWSFanout, c.d.descWSRecordsOut, c.d.descWSDeliveries, c.d.descWSProduced, c.d.descWSPublished, c.d.descWSSlow, c.d.descWSAuthFailed,
	} {
		ch <- d
	}
}

// Collect reads the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	c.mu.Lock()
	conns := make(map[string]func() int, len(c.conns))
	for k, v := range c.conns {
		conns[k] = v
	}
	ws := c.ws
	bufd := make(map[string]func() int64, len(c.bufd))
	for k, v := range c.bufd {
		bufd[k] = v
	}
	c.mu.Unlock()
	for proto, count := range conns {
		gauge(c.d.descConnections, float64(count()), proto)
	}
	for proto, bytes := range bufd {
		gauge(c.d.descBuffered, float64(bytes()), proto)
	}
	for _, p := range c.b.PartitionStats() {
		part := strconv.Itoa(int(p.Partition))
		counter(c.d.descPartRecordsIn, float64(p.RecordsIn), p.Topic, part)
		counter(c.d.descPartBytesIn, float64(p.BytesIn), p.Topic, part)
		counter(c.d.descPartBytesOut, float64(p.BytesOut), p.Topic, part)
		gauge(c.d.descPartHW, float64(p.HighWatermark), p.Topic, part)
		gauge(c.d.descPartStart, float64(p.StartOffset), p.Topic, part)
	}
	for _, q := range c.b.QueueStats() {
		gauge(c.d.descQueueReady, float64(q.Ready), q.Vhost, q.Name)
		gauge(c.d.descQueueUnacked, float64(q.Unacked), q.Vhost, q.Name)
		gauge(c.d.descQueueConsumers, float64(q.Consumers), q.Vhost, q.Name)
		counter(c.d.descQueueMsgsIn, float64(q.MsgsIn), q.Vhost, q.Name)
		counter(c.d.descQueueBytesIn, float64(q.BytesIn), q.Vhost, q.Name)
		counter(c.d.descQueueMsgsOut, float64(q.MsgsOut), q.Vhost, q.Name)
		counter(c.d.descQueueBytesOut, float64(q.BytesOut), q.Vhost, q.Name)
	}
	for _, l := range c.b.GroupLags() {
		part := strconv.Itoa(int(l.Partition))
		gauge(c.d.descLag, float64(l.Lag), l.Group, l.Topic, part)
		gauge(c.d.descCommitted, float64(l.Committed), l.Group, l.Topic, part)
	}
	if ws != nil {
		s := ws()
		counter(c.d.descWSFramesIn, float64(s.FramesIn))
		counter(c.d.descWSFanout, float64(s.Fanout))
		counter(c.d.descWSRecordsOut, float64(s.RecordsOut))
		counter(c.d.descWSDeliveries, float64(s.DeliveriesOut))
		counter(c.d.descWSProduced, float64(s.Produced))
		counter(c.d.descWSPublished, float64(s.Published))
		counter(c.d.descWSSlow, float64(s.SlowClients))
		counter(c.d.descWSAuthFailed, float64(s.AuthFailures))
	}
}
