package gateway

import "sync/atomic"

// wsMetrics are the WebSocket endpoint's counters; Stats reads them.
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

// WSStats are the WebSocket endpoint's counters since start.
type WSStats struct {
	Connections   int64 // open now
	FramesIn      int64
	Fanout        int64 // client messages queued for connections
	RecordsOut    int64
	DeliveriesOut int64
	Produced      int64
	Published     int64
	SlowClients   int64 // connections closed because their outbox overflowed
	AuthFailures  int64
}

// Stats returns the endpoint's counters.
func (ws *WebSocket) Stats() WSStats {
	m := ws.metrics
	return WSStats{
		Connections: m.connections.Load(), FramesIn: m.framesIn.Load(), Fanout: m.fanout.Load(),
		RecordsOut: m.recordsOut.Load(), DeliveriesOut: m.deliveriesOut.Load(), Produced: m.produced.Load(),
		Published: m.published.Load(), SlowClients: m.slowClients.Load(), AuthFailures: m.authFailures.Load(),
	}
}
