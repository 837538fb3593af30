package grpcapi

import (
	"context"

	"github.com/wharfmq/wharf/internal/auth"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// Permissions on the gRPC face, with the rules of service.Access (the same
// as REST's): checked once the call is authenticated and before its
// handler runs, so a refused call changes nothing; a refusal is
// PERMISSION_DENIED with RabbitMQ's text. Unary calls are checked here by
// their request; the two subscriptions check their first message in their
// handlers (subscribe_topic.go, subscribe_queue.go).

// userKey keys the authenticated user in a call's context.
type userKey struct{}

// callUser is the user who made a call.
func callUser(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// allowUnary decides whether user may make a unary call with request msg.
func allowUnary(a service.Access, user string, msg any) error {
	switch m := msg.(type) {
	case *wharfv1.ProduceRequest:
		return a.Topic(user, auth.Write, m.GetTopic())
	case *wharfv1.PublishRequest:
		return a.Exchange(user, vhostOr(m.GetVhost()), auth.Write, m.GetExchange())
	case *wharfv1.CreateTopicRequest:
		return a.Topic(user, auth.Configure, m.GetName())
	case *wharfv1.DeleteTopicRequest:
		return a.Topic(user, auth.Configure, m.GetName())
	case *wharfv1.DescribeTopicRequest:
		return a.Topic(user, auth.Read, m.GetName())
	case *wharfv1.DescribeGroupRequest:
		return a.Group(user, auth.Read, m.GetGroup())
	case *wharfv1.DeclareQueueRequest:
		if m.GetPassive() {
			return nil
		}
		return a.Queue(user, vhostOr(m.GetVhost()), auth.Configure, m.GetName())
	case *wharfv1.DeleteQueueRequest:
		return a.Queue(user, vhostOr(m.GetVhost()), auth.Configure, m.GetName())
	case *wharfv1.DeclareExchangeRequest:
		if m.GetPassive() {
			return nil
		}
		return a.Exchange(user, vhostOr(m.GetVhost()), auth.Configure, m.GetName())
	case *wharfv1.DeleteExchangeRequest:
		return a.Exchange(user, vhostOr(m.GetVhost()), auth.Configure, m.GetName())
	case *wharfv1.BindRequest:
		return allowBinding(a, user, m.GetBinding())
	case *wharfv1.UnbindRequest:
		return allowBinding(a, user, m.GetBinding())
	case *wharfv1.ListTopicsRequest, *wharfv1.ListGroupsRequest, *wharfv1.ListQueuesRequest,
		*wharfv1.ListExchangesRequest, *wharfv1.ListBindingsRequest:
		return a.Monitor(user)
	}
	return nil
}

// allowBinding: read on the source exchange, write on the destination.
func allowBinding(a service.Access, user string, b *wharfv1.Binding) error {
	if b == nil {
		return nil // the handler refuses it as invalid
	}
	vhost := vhostOr(b.GetVhost())
	if err := a.Exchange(user, vhost, auth.Read, b.GetSource()); err != nil {
		return err
	}
	if b.GetDestinationType() == wharfv1.DestinationType_DESTINATION_TYPE_EXCHANGE {
		return a.Exchange(user, vhost, auth.Write, b.GetDestination())
	}
	return a.Queue(user, vhost, auth.Write, b.GetDestination())
}
