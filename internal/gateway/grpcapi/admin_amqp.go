package grpcapi

import (
	"context"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/broker"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
)

// The gateway has no AMQP connection: it declares, deletes, binds and
// looks at queues as connection "", which may use every queue but another
// connection's exclusive ones, and cannot declare exclusive queues.
const noConnection = ""

// queueInfo describes a queue, with its counts unless it is another
// connection's exclusive queue.
func (a *admin) queueInfo(info broker.QueueInfo) *wharfv1.QueueInfo {
	out := &wharfv1.QueueInfo{
		Vhost: info.Vhost, Name: info.Name, Type: string(info.Type), Durable: info.Durable,
		Exclusive: info.Exclusive, AutoDelete: info.AutoDelete, Arguments: structOf(info.Arguments),
	}
	if info.Type == broker.QueueStream {
		// A stream's messages are its log's records; nothing is unacked.
		if st, ok, err := a.b.Stream(info.Vhost, noConnection, info.Name); err == nil && ok {
			out.Messages, out.Consumers, out.Unacked = ptr(st.Messages()), ptr(int64(st.Consumers())), ptr(int64(0))
		}
		return out
	}
	if q, err := a.b.Queue(info.Vhost, noConnection, info.Name); err == nil {
		ready, consumers := q.Counts()
		unacked := q.Unacked()
		out.Messages, out.Consumers, out.Unacked = ptr(int64(ready)), ptr(int64(consumers)), ptr(int64(unacked))
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func (a *admin) ListQueues(ctx context.Context, req *connect.Request[wharfv1.ListQueuesRequest]) (*connect.Response[wharfv1.ListQueuesResponse], error) {
	qs, err := a.b.ListQueues(vhostOr(req.Msg.GetVhost()))
	if err != nil {
		return nil, toConnect(err)
	}
	res := &wharfv1.ListQueuesResponse{Queues: make([]*wharfv1.QueueInfo, len(qs))}
	for i, q := range qs {
		res.Queues[i] = a.queueInfo(q)
	}
	return connect.NewResponse(res), nil
}

func (a *admin) DeclareQueue(ctx context.Context, req *connect.Request[wharfv1.DeclareQueueRequest]) (*connect.Response[wharfv1.DeclareQueueResponse], error) {
	msg := req.Msg
	args, err := tableOf(msg.GetArguments())
	if err != nil {
		return nil, err
	}
	info, created, err := a.b.DeclareQueue(ctx, vhostOr(msg.GetVhost()), noConnection, broker.QueueSpec{
		Name: msg.GetName(), Passive: msg.GetPassive(), Durable: msg.GetDurable(), AutoDelete: msg.GetAutoDelete(), Arguments: args,
	})
	if err != nil {
		return nil, toConnect(err)
	}
	if created {
		a.logger.Info("queue declared", "vhost", info.Vhost, "queue", info.Name, "durable", info.Durable)
	}
	return connect.NewResponse(&wharfv1.DeclareQueueResponse{Queue: a.queueInfo(info), Created: created}), nil
}

func (a *admin) DeleteQueue(ctx context.Context, req *connect.Request[wharfv1.DeleteQueueRequest]) (*connect.Response[wharfv1.DeleteQueueResponse], error) {
	msg := req.Msg
	n, err := a.b.DeleteQueue(ctx, vhostOr(msg.GetVhost()), noConnection, msg.GetName(), broker.QueueDeleteCheck{
		IfUnused: msg.GetIfUnused(), IfEmpty: msg.GetIfEmpty(),
	})
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&wharfv1.DeleteQueueResponse{Messages: int64(n)}), nil
}

func exchangeInfo(x broker.ExchangeInfo) *wharfv1.ExchangeInfo {
	return &wharfv1.ExchangeInfo{
		Vhost: x.Vhost, Name: x.Name, Type: string(x.Type), Durable: x.Durable, AutoDelete: x.AutoDelete,
		Internal: x.Internal, Arguments: structOf(x.Arguments),
	}
}

func (a *admin) ListExchanges(ctx context.Context, req *connect.Request[wharfv1.ListExchangesRequest]) (*connect.Response[wharfv1.ListExchangesResponse], error) {
	xs, err := a.b.ListExchanges(vhostOr(req.Msg.GetVhost()))
	if err != nil {
		return nil, toConnect(err)
	}
	res := &wharfv1.ListExchangesResponse{Exchanges: make([]*wharfv1.ExchangeInfo, len(xs))}
	for i, x := range xs {
		res.Exchanges[i] = exchangeInfo(x)
	}
	return connect.NewResponse(res), nil
}

func (a *admin) DeclareExchange(ctx context.Context, req *connect.Request[wharfv1.DeclareExchangeRequest]) (*connect.Response[wharfv1.DeclareExchangeResponse], error) {
	msg := req.Msg
	args, err := tableOf(msg.GetArguments())
	if err != nil {
		return nil, err
	}
	info, err := a.b.DeclareExchange(ctx, vhostOr(msg.GetVhost()), broker.ExchangeSpec{
		Name: msg.GetName(), Type: msg.GetType(), Passive: msg.GetPassive(), Durable: msg.GetDurable(),
		AutoDelete: msg.GetAutoDelete(), Internal: msg.GetInternal(), Arguments: args,
	})
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&wharfv1.DeclareExchangeResponse{Exchange: exchangeInfo(info)}), nil
}

func (a *admin) DeleteExchange(ctx context.Context, req *connect.Request[wharfv1.DeleteExchangeRequest]) (*connect.Response[wharfv1.DeleteExchangeResponse], error) {
	msg := req.Msg
	if err := a.b.DeleteExchange(ctx, vhostOr(msg.GetVhost()), msg.GetName(), msg.GetIfUnused()); err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&wharfv1.DeleteExchangeResponse{}), nil
}

func (a *admin) ListBindings(ctx context.Context, req *connect.Request[wharfv1.ListBindingsRequest]) (*connect.Response[wharfv1.ListBindingsResponse], error) {
	bs, err := a.b.ListBindings(vhostOr(req.Msg.GetVhost()))
	if err != nil {
		return nil, toConnect(err)
	}
	res := &wharfv1.ListBindingsResponse{Bindings: make([]*wharfv1.Binding, len(bs))}
	for i, b := range bs {
		dt := wharfv1.DestinationType_DESTINATION_TYPE_QUEUE
		if b.DestinationIsExchange {
			dt = wharfv1.DestinationType_DESTINATION_TYPE_EXCHANGE
		}
		res.Bindings[i] = &wharfv1.Binding{
			Vhost: b.Vhost, Source: b.Source, Destination: b.Destination, DestinationType: dt,
			RoutingKey: b.RoutingKey, Arguments: structOf(b.Arguments),
		}
	}
	return connect.NewResponse(res), nil
}

// bindingSpec reads a Bind or Unbind request's binding.
func bindingSpec(b *wharfv1.Binding) (vhost string, spec broker.BindingSpec, toExchange bool, err error) {
	if b == nil {
		return "", broker.BindingSpec{}, false, invalidf("no binding")
	}
	switch b.GetDestinationType() {
	case wharfv1.DestinationType_DESTINATION_TYPE_UNSPECIFIED, wharfv1.DestinationType_DESTINATION_TYPE_QUEUE:
	case wharfv1.DestinationType_DESTINATION_TYPE_EXCHANGE:
		toExchange = true
	default:
		return "", broker.BindingSpec{}, false, invalidf("destination type %d: give queue or exchange", b.GetDestinationType())
	}
	args, err := tableOf(b.GetArguments())
	if err != nil {
		return "", broker.BindingSpec{}, false, err
	}
	spec = broker.BindingSpec{Source: b.GetSource(), Destination: b.GetDestination(), RoutingKey: b.GetRoutingKey(), Arguments: args}
	return vhostOr(b.GetVhost()), spec, toExchange, nil
}

func (a *admin) Bind(ctx context.Context, req *connect.Request[wharfv1.BindRequest]) (*connect.Response[wharfv1.BindResponse], error) {
	vhost, spec, toExchange, err := bindingSpec(req.Msg.GetBinding())
	if err != nil {
		return nil, err
	}
	if toExchange {
		err = a.b.BindExchange(ctx, vhost, spec)
	} else {
		err = a.b.BindQueue(ctx, vhost, noConnection, spec)
	}
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&wharfv1.BindResponse{}), nil
}

func (a *admin) Unbind(ctx context.Context, req *connect.Request[wharfv1.UnbindRequest]) (*connect.Response[wharfv1.UnbindResponse], error) {
	vhost, spec, toExchange, err := bindingSpec(req.Msg.GetBinding())
	if err != nil {
		return nil, err
	}
	if toExchange {
		err = a.b.UnbindExchange(ctx, vhost, spec)
	} else {
		err = a.b.UnbindQueue(ctx, vhost, noConnection, spec)
	}
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&wharfv1.UnbindResponse{}), nil
}
