package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/gateway/wsproto"
)

// fetchBytes is how much of a partition a topic subscription reads at a
// time.
const fetchBytes = 256 << 10

// subscription is a topic or queue subscription of a connection.
type subscription interface {
	// stop ends the subscription; a queue subscription's unacknowledged
	// messages go back to the queue.
	stop(ctx context.Context)
}

func (c *wsConn) addSub(make func(id string) subscription) string {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	c.subSeq++
	id := "sub-" + strconv.Itoa(c.subSeq)
	c.subs[id] = make(id)
	return id
}

func (c *wsConn) takeSub(id string) subscription {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	s := c.subs[id]
	delete(c.subs, id)
	return s
}

func (c *wsConn) queueSub(id string) (*queueSub, bool) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	qs, ok := c.subs[id].(*queueSub)
	return qs, ok
}

func (c *wsConn) subscribe(req *wsproto.Request) {
	c.subsMu.Lock()
	n := len(c.subs)
	c.subsMu.Unlock()
	if n >= wsproto.MaxSubCount {
		c.replyError(req, service.Errorf(service.CodeInvalid, "a connection may hold at most %d subscriptions", wsproto.MaxSubCount))
		return
	}
	if req.Queue != "" {
		c.subscribeQueue(req)
		return
	}
	c.subscribeTopic(req)
}

func (c *wsConn) unsubscribe(req *wsproto.Request) {
	s := c.takeSub(req.Sub)
	if s == nil {
		c.replyError(req, service.Errorf(service.CodeNotFound, "no subscription '%s'", req.Sub))
		return
	}
	s.stop(c.ctx)
	c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Sub: req.Sub}))
}

// topicSub reads chosen partitions of a topic and pushes their records.
type topicSub struct {
	c      *wsConn
	id     string
	topic  string
	binary bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (c *wsConn) subscribeTopic(req *wsproto.Request) {
	svc := c.ws.svc
	if err := c.allowTopic(auth.Read, req.Topic); err != nil {
		c.replyError(req, err)
		return
	}
	total, err := svc.Partitions(req.Topic)
	if err != nil {
		c.replyError(req, err)
		return
	}
	parts := req.Partitions
	if parts == nil {
		for p := range total {
			parts = append(parts, p)
		}
	}
	parts = slices.Compact(slices.Sorted(slices.Values(parts)))
	starts := make(map[int32]int64, len(parts))
	for _, p := range parts {
		at := service.StartAt{Kind: req.From, Offset: req.Offset, Timestamp: req.Timestamp}
		if off, ok := req.Offsets[p]; ok {
			at = service.StartAt{Kind: "offset", Offset: off}
		}
		off, err := svc.StartOffset(req.Topic, p, at)
		if err != nil {
			c.replyError(req, err)
			return
		}
		starts[p] = off
	}
	for p := range req.Offsets {
		if _, ok := starts[p]; !ok {
			c.replyError(req, service.Errorf(service.CodeInvalid, "offsets names partition %d, which the subscription does not read", p))
			return
		}
	}
	ctx, cancel := context.WithCancel(c.ctx)
	var ts *topicSub
	id := c.addSub(func(id string) subscription {
		ts = &topicSub{c: c, id: id, topic: req.Topic, binary: req.Binary, cancel: cancel}
		return ts
	})
	// The reply goes out before the first record: Send keeps order.
	c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Sub: id, Start: starts}))
	for _, p := range parts {
		ts.wg.Add(1)
		go ts.run(ctx, p, starts[p])
	}
}

// run pushes one partition's records from offset on, each waiting for
// room in the connection's outbox (sendFlow), so a slow client lags rather
// than growing memory or being disconnected.
func (ts *topicSub) run(ctx context.Context, partition int32, offset int64) {
	defer ts.wg.Done()
	svc := ts.c.ws.svc
	for ctx.Err() == nil {
		recs, next, err := svc.Fetch(ts.topic, partition, offset, fetchBytes)
		if err != nil {
			e := service.AsError(err)
			switch e.Code {
			case service.CodeOutOfRange:
				// Retention or DeleteRecords moved the log start past
				// offset: go on from the new start, as Kafka consumers
				// with auto.offset.reset=earliest do.
				start, _, oerr := svc.Offsets(ts.topic, partition)
				if oerr == nil && start > offset {
					offset = start
					continue
				}
			case service.CodeNotFound:
				ts.cancelled(fmt.Sprintf("topic '%s' was deleted", ts.topic))
				return
			}
			if ctx.Err() != nil {
				return
			}
			ts.c.ws.logger.Warn("websocket topic subscription failed", "topic", ts.topic, "partition", partition, "offset", offset, "err", err)
			ts.cancelled("reading the topic failed: " + e.Message)
			return
		}
		for _, r := range recs {
			f := wsproto.EncodeRecord(recordFrame(ts.id, r), ts.binary)
			if !ts.c.sendFlow(ctx, f) {
				return
			}
			ts.c.ws.metrics.recordsOut.Add(1)
		}
		offset = next
		if len(recs) == 0 {
			if err := svc.Wait(ctx, ts.topic, partition, offset); err != nil && ctx.Err() == nil {
				if errors.Is(err, broker.ErrLogClosed) {
					continue // deleted or shutting down: the next fetch tells
				}
				continue
			}
		}
	}
}

func recordFrame(sub string, r service.FetchedRecord) wsproto.Record {
	out := wsproto.Record{Sub: sub, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value,
		Properties: r.Properties, Exchange: r.Exchange}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, wsproto.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

// cancelled ends the subscription from inside and tells the client.
func (ts *topicSub) cancelled(reason string) {
	if ts.c.takeSub(ts.id) == nil {
		return // already stopped
	}
	ts.cancel()
	ts.c.Send(wsproto.EncodeCancelled(ts.id, reason))
}

func (ts *topicSub) stop(context.Context) {
	ts.cancel()
	ts.wg.Wait()
}

// queueSub is a consumer on a queue: deliveries carry tags, acks and
// nacks settle them, and what is unacknowledged when it stops goes back
// to the queue.
type queueSub struct {
	c        *wsConn
	id       string
	q        *broker.Queue
	consumer *broker.Consumer
	binary   bool

	mu      sync.Mutex
	tag     uint64
	unacked []wsDelivery // in tag order
	stopped bool
}

type wsDelivery struct {
	tag uint64
	d   broker.Delivery
}

func (c *wsConn) subscribeQueue(req *wsproto.Request) {
	vhost := req.Vhost
	if vhost == "" {
		vhost = broker.DefaultVhost
	}
	if err := c.allowQueue(auth.Read, vhost, req.Queue); err != nil {
		c.replyError(req, err)
		return
	}
	q, err := c.ws.svc.Broker().Queue(vhost, "", req.Queue)
	if err != nil {
		c.replyError(req, err)
		return
	}
	var qs *queueSub
	id := c.addSub(func(id string) subscription {
		qs = &queueSub{c: c, id: id, q: q, binary: req.Binary}
		qs.consumer = &broker.Consumer{
			Tag:       "ws-" + c.sess.Load().ID + "-" + id,
			Limit:     broker.NewCredit(req.Prefetch),
			Busy:      c.busy,
			Deliver:   qs.deliver,
			Cancelled: qs.cancelled,
		}
		return qs
	})
	// The reply is queued before Consume so that it precedes the first
	// delivery.
	c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Sub: id}))
	if err := q.Consume(qs.consumer); err != nil {
		c.takeSub(id)
		c.Send(wsproto.EncodeCancelled(id, service.AsError(err).Message))
	}
}

// deliver runs under the queue's lock: it only records and queues.
func (qs *queueSub) deliver(d broker.Delivery) {
	m, err := service.DecodeMessage(d)
	if err != nil {
		qs.c.ws.logger.Error("websocket delivery of a message with undecodable properties", "queue", qs.q.Name, "err", err)
	}
	qs.mu.Lock()
	qs.tag++
	tag := qs.tag
	qs.unacked = append(qs.unacked, wsDelivery{tag: tag, d: d})
	qs.mu.Unlock()
	qs.c.Send(wsproto.EncodeDelivery(wsproto.Delivery{
		Sub: qs.id, Tag: tag, Queue: qs.q.Name, Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		Redelivered: m.Redelivered, Properties: service.FromWire(&m.Properties), Body: m.Body,
	}, qs.binary))
	qs.c.ws.metrics.deliveriesOut.Add(1)
}

// cancelled is called when the queue is deleted under the consumer.
func (qs *queueSub) cancelled() {
	if qs.c.takeSub(qs.id) == nil {
		return
	}
	qs.mu.Lock()
	qs.stopped = true
	qs.unacked = nil
	qs.mu.Unlock()
	qs.c.Send(wsproto.EncodeCancelled(qs.id, fmt.Sprintf("queue '%s' was deleted", qs.q.Name)))
}

// take removes and returns the deliveries a settle names: the one with tag,
// or with multiple every one up to it.
func (qs *queueSub) take(tag uint64, multiple bool) ([]broker.Delivery, bool) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	i, found := slices.BinarySearchFunc(qs.unacked, tag, func(d wsDelivery, t uint64) int {
		switch {
		case d.tag < t:
			return -1
		case d.tag > t:
			return 1
		}
		return 0
	})
	if !found {
		return nil, false
	}
	var out []broker.Delivery
	from := i
	if multiple {
		from = 0
	}
	for _, d := range qs.unacked[from : i+1] {
		out = append(out, d.d)
	}
	qs.unacked = slices.Delete(qs.unacked, from, i+1)
	return out, true
}

func (c *wsConn) settle(req *wsproto.Request) {
	qs, ok := c.queueSub(req.Sub)
	if !ok {
		c.replyError(req, service.Errorf(service.CodeNotFound, "no queue subscription '%s'", req.Sub))
		return
	}
	ds, ok := qs.take(req.Tag, req.Multiple)
	if !ok {
		c.replyError(req, service.Errorf(service.CodeInvalid, "unknown delivery tag %d on subscription '%s'", req.Tag, req.Sub))
		return
	}
	switch {
	case req.Type == wsproto.TypeAck:
		qs.q.Ack(ds)
	case req.Requeue:
		qs.q.Requeue(ds)
	default:
		qs.q.Discard(ds)
	}
	if req.ID == "" {
		return // written by the queue's periodic flush
	}
	// An answered ack or drop is on disk first: the message does not come
	// back after a crash once the client has the answer.
	if !(req.Type == wsproto.TypeNack && req.Requeue) {
		if err := qs.q.PersistSettlements(); err != nil {
			c.replyError(req, service.AsError(err))
			return
		}
	}
	c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Sub: req.Sub}))
}

// stop cancels the consumer, then requeues what it left unacknowledged, in
// order.
func (qs *queueSub) stop(ctx context.Context) {
	if err := qs.c.ws.svc.Broker().CancelConsumer(ctx, qs.q, qs.consumer); err != nil {
		qs.c.ws.logger.Warn("cancelling a websocket queue consumer", "queue", qs.q.Name, "err", err)
	}
	qs.mu.Lock()
	ds := make([]broker.Delivery, 0, len(qs.unacked))
	for _, d := range qs.unacked {
		ds = append(ds, d.d)
	}
	qs.unacked = nil
	qs.stopped = true
	qs.mu.Unlock()
	if len(ds) > 0 {
		qs.q.Requeue(ds)
	}
}

// kickQueues lets queue subscriptions deliver again once the outbox has
// drained below its low mark.
func (c *wsConn) kickQueues() {
	c.subsMu.Lock()
	var qs []*broker.Queue
	for _, s := range c.subs {
		if q, ok := s.(*queueSub); ok {
			qs = append(qs, q.q)
		}
	}
	c.subsMu.Unlock()
	for _, q := range qs {
		q.Kick()
	}
}
