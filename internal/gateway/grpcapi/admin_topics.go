package grpcapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/broker"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// admin implements AdminService: topics here, the AMQP model in
// admin_amqp.go, consumer groups in admin_groups.go.
type admin struct {
	svc    *service.Service
	b      *broker.Broker
	logger *slog.Logger
}

func topicSummary(info broker.TopicInfo) *wharfv1.TopicSummary {
	return &wharfv1.TopicSummary{Name: info.Name, Id: info.ID.String(), Partitions: info.Partitions}
}

func (a *admin) ListTopics(ctx context.Context, req *connect.Request[wharfv1.ListTopicsRequest]) (*connect.Response[wharfv1.ListTopicsResponse], error) {
	topics := a.b.Topics()
	res := &wharfv1.ListTopicsResponse{Topics: make([]*wharfv1.TopicSummary, len(topics))}
	for i, t := range topics {
		res.Topics[i] = topicSummary(t)
	}
	return connect.NewResponse(res), nil
}

func (a *admin) CreateTopic(ctx context.Context, req *connect.Request[wharfv1.CreateTopicRequest]) (*connect.Response[wharfv1.CreateTopicResponse], error) {
	configs := req.Msg.GetConfigs()
	if len(configs) == 0 {
		configs = nil
	}
	info, err := a.b.CreateTopic(ctx, req.Msg.GetName(), req.Msg.GetPartitions(), configs)
	if err != nil {
		return nil, toConnect(err)
	}
	a.logger.Info("topic created", "topic", info.Name, "partitions", info.Partitions)
	return connect.NewResponse(&wharfv1.CreateTopicResponse{Topic: topicSummary(info)}), nil
}

func (a *admin) DeleteTopic(ctx context.Context, req *connect.Request[wharfv1.DeleteTopicRequest]) (*connect.Response[wharfv1.DeleteTopicResponse], error) {
	if err := a.b.DeleteTopic(ctx, req.Msg.GetName()); err != nil {
		return nil, toConnect(err)
	}
	a.logger.Info("topic deleted", "topic", req.Msg.GetName())
	return connect.NewResponse(&wharfv1.DeleteTopicResponse{}), nil
}

func (a *admin) DescribeTopic(ctx context.Context, req *connect.Request[wharfv1.DescribeTopicRequest]) (*connect.Response[wharfv1.DescribeTopicResponse], error) {
	name := req.Msg.GetName()
	info, ok := a.b.Topic(name)
	if !ok {
		return nil, toConnect(service.Errorf(service.CodeNotFound, "no topic '%s'", name))
	}
	res := &wharfv1.DescribeTopicResponse{Topic: topicSummary(info)}
	for p := range info.Partitions {
		start, hw, err := a.svc.Offsets(name, p)
		if err != nil {
			return nil, toConnect(err) // deleted meanwhile
		}
		res.Partitions = append(res.Partitions, &wharfv1.PartitionInfo{Partition: p, StartOffset: start, HighWatermark: hw})
	}
	for _, c := range info.Configs {
		res.Configs = append(res.Configs, &wharfv1.ConfigEntry{Name: c.Name, Value: c.Value, IsDefault: c.IsDefault})
	}
	return connect.NewResponse(res), nil
}
