package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/auth"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// fetchBytes is how much of a partition a topic subscription reads at a
// time.
const fetchBytes = 256 << 10

// shutdownMessage ends streams when the server shuts down.
const shutdownMessage = "the server is shutting down"

// SubscribeTopic streams the records of chosen partitions of a topic, one
// reader per partition; the readers share the stream, one Send at a time,
// so a slow client slows them all and nothing is read ahead of it.
func (m *messaging) SubscribeTopic(ctx context.Context, req *connect.Request[wharfv1.SubscribeTopicRequest], stream *connect.ServerStream[wharfv1.SubscribeTopicResponse]) error {
	msg := req.Msg
	topic := msg.GetTopic()
	if err := m.svc.Access().Topic(callUser(ctx), auth.Read, topic); err != nil {
		return toConnect(err)
	}
	total, err := m.svc.Partitions(topic)
	if err != nil {
		return toConnect(err)
	}
	parts := slices.Clone(msg.GetPartitions())
	if len(parts) == 0 {
		for p := range total {
			parts = append(parts, p)
		}
	}
	parts = slices.Compact(slices.Sorted(slices.Values(parts)))
	at, err := startAt(msg)
	if err != nil {
		return err
	}
	starts := make(map[int32]int64, len(parts))
	for _, p := range parts {
		pat := at
		if off, ok := msg.GetOffsets()[p]; ok {
			pat = service.StartAt{Kind: "offset", Offset: off}
		}
		off, err := m.svc.StartOffset(topic, p, pat)
		if err != nil {
			return toConnect(err)
		}
		starts[p] = off
	}
	for p := range msg.GetOffsets() {
		if _, ok := starts[p]; !ok {
			return invalidf("offsets names partition %d, which the subscription does not read", p)
		}
	}
	if err := stream.Send(&wharfv1.SubscribeTopicResponse{Event: &wharfv1.SubscribeTopicResponse_Subscribed{
		Subscribed: &wharfv1.TopicSubscribed{StartOffsets: starts},
	}}); err != nil {
		return err
	}

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var sendMu sync.Mutex
	send := func(r service.FetchedRecord) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(&wharfv1.SubscribeTopicResponse{Event: &wharfv1.SubscribeTopicResponse_Record{Record: recordOf(r)}})
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() {
			if err := m.tail(rctx, topic, p, starts[p], send); err != nil {
				cancel(err)
			}
		})
	}
	select {
	case <-rctx.Done():
	case <-draining(ctx):
		cancel(connect.NewError(connect.CodeUnavailable, errors.New(shutdownMessage)))
	}
	wg.Wait()
	if ctx.Err() != nil {
		return connect.NewError(connect.CodeCanceled, ctx.Err())
	}
	return toConnect(context.Cause(rctx))
}

// startAt reads where a subscription starts.
func startAt(msg *wharfv1.SubscribeTopicRequest) (service.StartAt, error) {
	switch msg.GetStart() {
	case wharfv1.Start_START_UNSPECIFIED, wharfv1.Start_START_LATEST:
		return service.StartAt{Kind: "latest"}, nil
	case wharfv1.Start_START_EARLIEST:
		return service.StartAt{Kind: "earliest"}, nil
	case wharfv1.Start_START_OFFSET:
		return service.StartAt{Kind: "offset", Offset: msg.GetOffset()}, nil
	case wharfv1.Start_START_TIMESTAMP:
		return service.StartAt{Kind: "timestamp", Timestamp: msg.GetTimestampMs()}, nil
	}
	return service.StartAt{}, invalidf("start %d: give latest, earliest, offset or timestamp", msg.GetStart())
}

// tail sends one partition's records from offset on until ctx ends or
// reading or sending fails. It returns nil when ctx ended.
func (m *messaging) tail(ctx context.Context, topic string, partition int32, offset int64, send func(service.FetchedRecord) error) error {
	for ctx.Err() == nil {
		recs, next, err := m.svc.Fetch(topic, partition, offset, fetchBytes)
		if err != nil {
			e := service.AsError(err)
			switch e.Code {
			case service.CodeOutOfRange:
				// Retention or DeleteRecords moved the log start past
				// offset: go on from the new start, as Kafka consumers
				// with auto.offset.reset=earliest do.
				start, _, oerr := m.svc.Offsets(topic, partition)
				if oerr == nil && start > offset {
					offset = start
					continue
				}
			case service.CodeNotFound:
				return service.Errorf(service.CodeNotFound, "topic '%s' was deleted", topic)
			}
			if ctx.Err() != nil {
				return nil
			}
			m.logger.Warn("grpc topic subscription failed", "topic", topic, "partition", partition, "offset", offset, "err", err)
			return fmt.Errorf("reading %s-%d at offset %d: %w", topic, partition, offset, e)
		}
		for _, r := range recs {
			if err := send(r); err != nil {
				return err
			}
		}
		offset = next
		if len(recs) == 0 {
			// An error (the topic deleted, the broker closing) shows in
			// the next fetch.
			_ = m.svc.Wait(ctx, topic, partition, offset)
		}
	}
	return nil
}
