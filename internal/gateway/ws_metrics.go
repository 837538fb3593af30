package gateway

import "sync/atomic"

// wsMetrics are the WebSocket endpoint's counters, exported to Prometheus
// by Collector.
type wsMetrics struct {
	connections   atomic.Int64
	framesIn      atomic.Int64
	fanout        atomic.Int64 // client messages queued for connections
	recordsOut    atomic.Int64
	deliveriesOut atomic.Int64
	produced      atomic.Int64
	published     atomic.Int64
	slowClients   atomic.Int64
	authFailures  atomic.Int64
}

func newWSMetrics() *wsMetrics { return &wsMetrics{} }
