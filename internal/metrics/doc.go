// Package metrics exports Wharf's state to Prometheus: connections per
// protocol and the bytes they hold for clients that have not read them,
// traffic and offsets per topic partition, depth, unacknowledged
// messages and traffic per queue, consumer-group lag, fsync latency, the
// WebSocket gateway's counters, the resource alarms (AlarmCollector) and
// the bridge rules (BridgeCollector).
//
// It reads the core and the listeners at scrape time (Collector) and keeps
// only the fsync latency histogram, which storage feeds as fsyncs happen.
// It holds no package-level state: the server creates one Collector and one
// histogram and registers both.
package metrics
