package grpcapi

import (
	"context"
	"log/slog"
	"math"

	"connectrpc.com/connect"

	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// messaging implements MessagingService; the subscriptions are in
// subscribe_topic.go and subscribe_queue.go.
type messaging struct {
	svc    *service.Service
	logger *slog.Logger
}

// Produce appends the records and answers once they are durable.
func (m *messaging) Produce(ctx context.Context, req *connect.Request[wharfv1.ProduceRequest]) (*connect.Response[wharfv1.ProduceResponse], error) {
	recs := make([]service.ProduceRecord, len(req.Msg.GetRecords()))
	for i, r := range req.Msg.GetRecords() {
		p := int32(-1)
		if r.Partition != nil {
			p = r.GetPartition()
		}
		recs[i] = service.ProduceRecord{
			Partition: p, Key: r.GetKey(), Value: r.GetValue(),
			Headers: toBrokerHeaders(r.GetHeaders()), Timestamp: r.GetTimestampMs(),
		}
	}
	out, err := m.svc.Produce(ctx, req.Msg.GetTopic(), recs)
	if err != nil {
		return nil, toConnect(err)
	}
	res := &wharfv1.ProduceResponse{Positions: make([]*wharfv1.RecordPosition, len(out))}
	for i, o := range out {
		res.Positions[i] = &wharfv1.RecordPosition{Partition: o.Partition, Offset: o.Offset}
	}
	return connect.NewResponse(res), nil
}

// Publish routes the message and answers once it is durable.
func (m *messaging) Publish(ctx context.Context, req *connect.Request[wharfv1.PublishRequest]) (*connect.Response[wharfv1.PublishResponse], error) {
	msg := req.Msg
	props, err := toWireProperties(msg.GetProperties())
	if err != nil {
		return nil, err
	}
	routed, err := m.svc.Publish(ctx, service.Publishing{
		Vhost: msg.GetVhost(), Exchange: msg.GetExchange(), RoutingKey: msg.GetRoutingKey(),
		Properties: props, Body: msg.GetBody(), Mandatory: msg.GetMandatory(),
	})
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&wharfv1.PublishResponse{Routed: int32(min(routed, math.MaxInt32))}), nil
}
