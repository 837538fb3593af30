package grpcapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// Prefetch of a queue subscription: the default and the largest allowed,
// as for WebSocket subscriptions.
const (
	defaultPrefetch = 100
	maxPrefetch     = 65535
)

// cancelTimeout bounds cancelling a consumer when a stream ends (an
// auto-delete queue that lost its last consumer is deleted durably).
const cancelTimeout = 10 * time.Second

// SubscribeQueue is a consumer of a queue over a bidirectional stream: the
// handler's goroutine sends deliveries, another receives settlements.
func (m *messaging) SubscribeQueue(ctx context.Context, stream *connect.BidiStream[wharfv1.SubscribeQueueRequest, wharfv1.SubscribeQueueResponse]) error {
	first, err := stream.Receive()
	if errors.Is(err, io.EOF) {
		return invalidf("the stream ended before its subscribe message")
	}
	if err != nil {
		return err
	}
	sub := first.GetSubscribe()
	if sub == nil {
		return invalidf("the first message must be a subscribe")
	}
	if err := m.svc.Access().Queue(callUser(ctx), vhostOr(sub.GetVhost()), auth.Read, sub.GetQueue()); err != nil {
		return toConnect(err)
	}
	prefetch := int(sub.GetPrefetch())
	switch {
	case prefetch == 0:
		prefetch = defaultPrefetch
	case prefetch > maxPrefetch:
		return invalidf("prefetch %d is not between 1 and %d", prefetch, maxPrefetch)
	}
	q, err := m.svc.Broker().Queue(vhostOr(sub.GetVhost()), "", sub.GetQueue())
	if err != nil {
		return toConnect(err)
	}
	tag, err := consumerTag()
	if err != nil {
		return toConnect(err)
	}
	qs := &queueSub{q: q, b: m.svc.Broker(), logger: m.logger, wake: make(chan struct{}, 1)}
	qs.consumer = &broker.Consumer{
		Tag:       tag,
		Limit:     broker.NewCredit(prefetch),
		Deliver:   qs.deliver,
		Cancelled: qs.cancelled,
	}
	// Sent before Consume, so that it precedes the first delivery.
	if err := stream.Send(&wharfv1.SubscribeQueueResponse{Event: &wharfv1.SubscribeQueueResponse_Subscribed{
		Subscribed: &wharfv1.QueueSubscribed{ConsumerTag: tag},
	}}); err != nil {
		return err
	}
	if err := q.Consume(qs.consumer); err != nil {
		return toConnect(err)
	}
	defer qs.stop()

	// The receiver ends when the stream does: after this handler returns,
	// Receive fails (bidirectional streams are HTTP/2 only).
	settled := make(chan error, 1)
	go func() { settled <- qs.receive(stream) }()
	for {
		select {
		case <-ctx.Done():
			return connect.NewError(connect.CodeCanceled, ctx.Err())
		case <-draining(ctx):
			return connect.NewError(connect.CodeUnavailable, errors.New(shutdownMessage))
		case err := <-settled:
			return err // nil: the client half-closed
		case <-qs.wake:
		}
		ds, deleted := qs.next()
		if deleted {
			return toConnect(service.Errorf(service.CodeNotFound, "queue '%s' in vhost '%s' was deleted", q.Name, q.Vhost))
		}
		for _, d := range ds {
			if err := stream.Send(&wharfv1.SubscribeQueueResponse{Event: &wharfv1.SubscribeQueueResponse_Delivery{Delivery: qs.delivery(d)}}); err != nil {
				return err
			}
		}
	}
}

func consumerTag() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a consumer tag: %w", err)
	}
	return "grpc-" + hex.EncodeToString(b[:]), nil
}

// queueSub is one stream's consumer. Deliveries wait in pending until the
// stream's goroutine takes them, tags them and moves them to unacked.
// Everything in pending or unacked is unsettled, and the consumer's credit
// allows at most prefetch unsettled, so neither grows past prefetch.
type queueSub struct {
	q        *broker.Queue
	b        *broker.Broker
	consumer *broker.Consumer
	logger   *slog.Logger
	wake     chan struct{} // capacity 1: deliveries are pending or the queue was deleted

	mu      sync.Mutex
	pending []broker.Delivery
	unacked []tagged // in tag order
	tag     uint64
	deleted bool
}

type tagged struct {
	tag uint64
	d   broker.Delivery
}

// deliver runs under the queue's lock: it only records and wakes.
func (qs *queueSub) deliver(d broker.Delivery) {
	qs.mu.Lock()
	qs.pending = append(qs.pending, d)
	qs.mu.Unlock()
	qs.signal()
}

// cancelled is called when the queue is deleted under the consumer.
func (qs *queueSub) cancelled() {
	qs.mu.Lock()
	qs.deleted = true
	qs.pending, qs.unacked = nil, nil
	qs.mu.Unlock()
	qs.signal()
}

func (qs *queueSub) signal() {
	select {
	case qs.wake <- struct{}{}:
	default:
	}
}

// next tags the pending deliveries and moves them to unacked.
func (qs *queueSub) next() ([]tagged, bool) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.deleted {
		return nil, true
	}
	out := make([]tagged, len(qs.pending))
	for i, d := range qs.pending {
		qs.tag++
		out[i] = tagged{tag: qs.tag, d: d}
	}
	clear(qs.pending)
	qs.pending = qs.pending[:0]
	qs.unacked = append(qs.unacked, out...)
	return out, false
}

func (qs *queueSub) delivery(t tagged) *wharfv1.Delivery {
	m, err := service.DecodeMessage(t.d)
	if err != nil {
		qs.logger.Error("grpc delivery of a message with undecodable properties", "queue", qs.q.Name, "err", err)
	}
	return &wharfv1.Delivery{
		DeliveryTag: t.tag, Queue: qs.q.Name, Exchange: validUTF8(m.Exchange), RoutingKey: validUTF8(m.RoutingKey),
		Redelivered: m.Redelivered, Properties: fromWireProperties(&m.Properties), Body: m.Body,
	}
}

// receive settles deliveries as the client asks until the client
// half-closes (nil) or sends something wrong.
func (qs *queueSub) receive(stream *connect.BidiStream[wharfv1.SubscribeQueueRequest, wharfv1.SubscribeQueueResponse]) error {
	for {
		req, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var tag uint64
		var multiple, requeue, ack bool
		switch r := req.GetRequest().(type) {
		case *wharfv1.SubscribeQueueRequest_Ack:
			tag, multiple, ack = r.Ack.GetDeliveryTag(), r.Ack.GetMultiple(), true
		case *wharfv1.SubscribeQueueRequest_Nack:
			tag, multiple, requeue = r.Nack.GetDeliveryTag(), r.Nack.GetMultiple(), r.Nack.GetRequeue()
		case *wharfv1.SubscribeQueueRequest_Subscribe:
			return invalidf("the stream is already subscribed to queue '%s'", qs.q.Name)
		default:
			return invalidf("a message with neither ack nor nack")
		}
		ds, ok := qs.take(tag, multiple)
		if !ok {
			return invalidf("unknown delivery tag %d", tag)
		}
		switch {
		case ack:
			qs.q.Ack(ds)
		case requeue:
			qs.q.Requeue(ds)
		default:
			qs.q.Discard(ds)
		}
	}
}

// take removes and returns the deliveries a settlement names: the one with
// tag, or with multiple every one up to it.
func (qs *queueSub) take(tag uint64, multiple bool) ([]broker.Delivery, bool) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	i, found := slices.BinarySearchFunc(qs.unacked, tag, func(t tagged, tag uint64) int {
		switch {
		case t.tag < tag:
			return -1
		case t.tag > tag:
			return 1
		}
		return 0
	})
	if !found {
		return nil, false
	}
	from := i
	if multiple {
		from = 0
	}
	out := make([]broker.Delivery, 0, i+1-from)
	for _, t := range qs.unacked[from : i+1] {
		out = append(out, t.d)
	}
	qs.unacked = slices.Delete(qs.unacked, from, i+1)
	return out, true
}

// stop cancels the consumer, then requeues every delivery still
// unsettled, sent or not.
func (qs *queueSub) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	if err := qs.b.CancelConsumer(ctx, qs.q, qs.consumer); err != nil {
		qs.logger.Warn("cancelling a grpc queue consumer", "queue", qs.q.Name, "err", err)
	}
	qs.mu.Lock()
	ds := make([]broker.Delivery, 0, len(qs.unacked)+len(qs.pending))
	for _, t := range qs.unacked {
		ds = append(ds, t.d)
	}
	ds = append(ds, qs.pending...)
	qs.unacked, qs.pending = nil, nil
	qs.mu.Unlock()
	if len(ds) > 0 {
		qs.q.Requeue(ds)
	}
}
