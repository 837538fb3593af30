package grpcapi

import (
	"slices"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wharfmq/wharf/internal/broker"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
)

func TestAdminTopics(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	res, err := e.admin.CreateTopic(ctx, connect.NewRequest(&wharfv1.CreateTopicRequest{
		Name: "orders", Partitions: 3, Configs: map[string]string{"retention.ms": "60000"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.Topic.Name != "orders" || res.Msg.Topic.Partitions != 3 || len(res.Msg.Topic.Id) != 32 {
		t.Fatalf("created %v", res.Msg.Topic)
	}
	e.createTopic(t, "audit", 1)

	_, err = e.admin.CreateTopic(ctx, connect.NewRequest(&wharfv1.CreateTopicRequest{Name: "orders", Partitions: 1}))
	wantCode(t, err, connect.CodeAlreadyExists)
	_, err = e.admin.CreateTopic(ctx, connect.NewRequest(&wharfv1.CreateTopicRequest{Name: "zero"}))
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = e.admin.CreateTopic(ctx, connect.NewRequest(&wharfv1.CreateTopicRequest{Name: "bad", Partitions: 1, Configs: map[string]string{"retention.ms": "soon"}}))
	wantCode(t, err, connect.CodeInvalidArgument)

	list, err := e.admin.ListTopics(ctx, connect.NewRequest(&wharfv1.ListTopicsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range list.Msg.Topics {
		names = append(names, tp.Name)
	}
	if !slices.Equal(names, []string{"audit", "orders"}) {
		t.Fatalf("topics %v", names)
	}

	e.produce(t, "orders", &wharfv1.ProduceRecord{Value: []byte("a"), Partition: ptr[int32](1)}, &wharfv1.ProduceRecord{Value: []byte("b"), Partition: ptr[int32](1)})
	d, err := e.admin.DescribeTopic(ctx, connect.NewRequest(&wharfv1.DescribeTopicRequest{Name: "orders"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Msg.Partitions) != 3 || d.Msg.Partitions[1].HighWatermark != 2 || d.Msg.Partitions[1].StartOffset != 0 || d.Msg.Partitions[0].HighWatermark != 0 {
		t.Fatalf("partitions %v", d.Msg.Partitions)
	}
	var found bool
	for _, c := range d.Msg.Configs {
		if c.Name == "retention.ms" {
			found = true
			if c.Value != "60000" || c.IsDefault {
				t.Fatalf("retention.ms %v", c)
			}
		}
	}
	if !found {
		t.Fatalf("no retention.ms in %v", d.Msg.Configs)
	}

	if _, err := e.admin.DeleteTopic(ctx, connect.NewRequest(&wharfv1.DeleteTopicRequest{Name: "orders"})); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.DescribeTopic(ctx, connect.NewRequest(&wharfv1.DescribeTopicRequest{Name: "orders"}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = e.admin.DeleteTopic(ctx, connect.NewRequest(&wharfv1.DeleteTopicRequest{Name: "orders"}))
	wantCode(t, err, connect.CodeNotFound)
}

func TestAdminExchangesQueuesBindings(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	x, err := e.admin.DeclareExchange(ctx, connect.NewRequest(&wharfv1.DeclareExchangeRequest{Name: "orders", Type: "topic", Durable: true}))
	if err != nil {
		t.Fatal(err)
	}
	if x.Msg.Exchange.Name != "orders" || x.Msg.Exchange.Type != "topic" || !x.Msg.Exchange.Durable || x.Msg.Exchange.Vhost != "/" {
		t.Fatalf("exchange %v", x.Msg.Exchange)
	}
	_, err = e.admin.DeclareExchange(ctx, connect.NewRequest(&wharfv1.DeclareExchangeRequest{Name: "orders", Type: "fanout"}))
	wantCode(t, err, connect.CodeFailedPrecondition)
	_, err = e.admin.DeclareExchange(ctx, connect.NewRequest(&wharfv1.DeclareExchangeRequest{Name: "amq.mine", Type: "direct"}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.admin.DeclareExchange(ctx, connect.NewRequest(&wharfv1.DeclareExchangeRequest{Name: "ghost", Passive: true}))
	wantCode(t, err, connect.CodeNotFound)

	xs, err := e.admin.ListExchanges(ctx, connect.NewRequest(&wharfv1.ListExchangesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(xs.Msg.Exchanges, func(x *wharfv1.ExchangeInfo) bool { return x.Name == "amq.direct" }) ||
		!slices.ContainsFunc(xs.Msg.Exchanges, func(x *wharfv1.ExchangeInfo) bool { return x.Name == "orders" }) {
		t.Fatalf("exchanges %v", xs.Msg.Exchanges)
	}

	args, err := structpb.NewStruct(map[string]any{"x-max-length": 10.0, "x-queue-type": "classic"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := e.admin.DeclareQueue(ctx, connect.NewRequest(&wharfv1.DeclareQueueRequest{Name: "eu", Durable: true, Arguments: args}))
	if err != nil {
		t.Fatal(err)
	}
	if !q.Msg.Created || q.Msg.Queue.Name != "eu" || !q.Msg.Queue.Durable || q.Msg.Queue.GetMessages() != 0 || q.Msg.Queue.Type != "classic" {
		t.Fatalf("queue %v", q.Msg)
	}
	if got := q.Msg.Queue.Arguments.AsMap()["x-max-length"]; got != 10.0 {
		t.Fatalf("x-max-length %v", got)
	}
	// The argument went in as an integer: a redeclaration with the same
	// value is equivalent.
	info, ok := e.b.LookupQueue(broker.DefaultVhost, "eu")
	if !ok || info.Arguments["x-max-length"] != int64(10) {
		t.Fatalf("stored arguments %#v", info.Arguments)
	}
	q, err = e.admin.DeclareQueue(ctx, connect.NewRequest(&wharfv1.DeclareQueueRequest{Name: "eu", Durable: true, Arguments: args}))
	if err != nil || q.Msg.Created {
		t.Fatalf("redeclare: %v, %v", q, err)
	}
	_, err = e.admin.DeclareQueue(ctx, connect.NewRequest(&wharfv1.DeclareQueueRequest{Name: "eu"}))
	wantCode(t, err, connect.CodeFailedPrecondition)
	_, err = e.admin.DeclareQueue(ctx, connect.NewRequest(&wharfv1.DeclareQueueRequest{Name: "nope", Passive: true}))
	wantCode(t, err, connect.CodeNotFound)
	named, err := e.admin.DeclareQueue(ctx, connect.NewRequest(&wharfv1.DeclareQueueRequest{}))
	if err != nil || len(named.Msg.Queue.Name) < len("amq.gen-") {
		t.Fatalf("server-named queue: %v, %v", named, err)
	}

	binding := &wharfv1.Binding{Source: "orders", Destination: "eu", RoutingKey: "eu.#"}
	if _, err := e.admin.Bind(ctx, connect.NewRequest(&wharfv1.BindRequest{Binding: binding})); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.Bind(ctx, connect.NewRequest(&wharfv1.BindRequest{Binding: &wharfv1.Binding{Source: "nope", Destination: "eu"}}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = e.admin.Bind(ctx, connect.NewRequest(&wharfv1.BindRequest{}))
	wantCode(t, err, connect.CodeInvalidArgument)
	// An exchange-to-exchange binding.
	if _, err := e.admin.DeclareExchange(ctx, connect.NewRequest(&wharfv1.DeclareExchangeRequest{Name: "all", Type: "fanout"})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Bind(ctx, connect.NewRequest(&wharfv1.BindRequest{Binding: &wharfv1.Binding{
		Source: "all", Destination: "orders", DestinationType: wharfv1.DestinationType_DESTINATION_TYPE_EXCHANGE, RoutingKey: "x",
	}})); err != nil {
		t.Fatal(err)
	}
	bs, err := e.admin.ListBindings(ctx, connect.NewRequest(&wharfv1.ListBindingsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(bs.Msg.Bindings) != 2 {
		t.Fatalf("bindings %v", bs.Msg.Bindings)
	}
	for _, b := range bs.Msg.Bindings {
		wantType := wharfv1.DestinationType_DESTINATION_TYPE_QUEUE
		if b.Source == "all" {
			wantType = wharfv1.DestinationType_DESTINATION_TYPE_EXCHANGE
		}
		if b.DestinationType != wantType {
			t.Fatalf("binding %v", b)
		}
	}

	publish := func(exchange, key string) int32 {
		t.Helper()
		res, err := e.msg.Publish(ctx, connect.NewRequest(&wharfv1.PublishRequest{Exchange: exchange, RoutingKey: key, Body: []byte("m")}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.Routed
	}
	if n := publish("orders", "eu.new"); n != 1 {
		t.Fatalf("routed %d, want 1", n)
	}
	if n := publish("orders", "us.new"); n != 0 {
		t.Fatalf("routed %d, want 0", n)
	}
	// all (fanout) -> orders (topic, by the message's key) -> eu.
	if n := publish("all", "eu.new"); n != 1 {
		t.Fatalf("routed %d through the exchange binding, want 1", n)
	}
	if _, err := e.admin.Unbind(ctx, connect.NewRequest(&wharfv1.UnbindRequest{Binding: binding})); err != nil {
		t.Fatal(err)
	}
	if n := publish("orders", "eu.new"); n != 0 {
		t.Fatalf("routed %d after unbind, want 0", n)
	}

	if ready, _, _ := e.queueState(t, "eu"); ready < 1 {
		t.Fatalf("queue eu has %d ready", ready)
	}
	_, err = e.admin.DeleteQueue(ctx, connect.NewRequest(&wharfv1.DeleteQueueRequest{Name: "eu", IfEmpty: true}))
	wantCode(t, err, connect.CodeFailedPrecondition)
	del, err := e.admin.DeleteQueue(ctx, connect.NewRequest(&wharfv1.DeleteQueueRequest{Name: "eu"}))
	if err != nil {
		t.Fatal(err)
	}
	if del.Msg.Messages < 1 {
		t.Fatalf("deleted a queue of %d messages", del.Msg.Messages)
	}
	_, err = e.admin.DeleteExchange(ctx, connect.NewRequest(&wharfv1.DeleteExchangeRequest{Name: "all", IfUnused: true}))
	wantCode(t, err, connect.CodeFailedPrecondition)
	if _, err := e.admin.DeleteExchange(ctx, connect.NewRequest(&wharfv1.DeleteExchangeRequest{Name: "orders"})); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.DeleteExchange(ctx, connect.NewRequest(&wharfv1.DeleteExchangeRequest{Name: "amq.direct"}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = e.admin.ListQueues(ctx, connect.NewRequest(&wharfv1.ListQueuesRequest{Vhost: "nope"}))
	wantCode(t, err, connect.CodeNotFound)
}

func TestAdminGroups(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	e.createTopic(t, "orders", 2)
	for range 5 {
		e.produce(t, "orders", &wharfv1.ProduceRecord{Value: []byte("v"), Partition: ptr[int32](0)})
	}
	e.produce(t, "orders", &wharfv1.ProduceRecord{Value: []byte("v"), Partition: ptr[int32](1)})
	errs, persisted := e.b.CommitOffsets(broker.OffsetCommitRequest{Group: "billing", Generation: -1, Offsets: []broker.OffsetCommit{
		{Topic: "orders", Partition: 0, Offset: 2, Metadata: "m"},
		{Topic: "orders", Partition: 1, Offset: 1},
	}})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := persisted.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	list, err := e.admin.ListGroups(ctx, connect.NewRequest(&wharfv1.ListGroupsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.Groups) != 1 || list.Msg.Groups[0].Group != "billing" {
		t.Fatalf("groups %v", list.Msg.Groups)
	}
	d, err := e.admin.DescribeGroup(ctx, connect.NewRequest(&wharfv1.DescribeGroupRequest{Group: "billing"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []*wharfv1.GroupOffset{
		{Topic: "orders", Partition: 0, CommittedOffset: 2, Metadata: "m", HighWatermark: 5, Lag: 3},
		{Topic: "orders", Partition: 1, CommittedOffset: 1, HighWatermark: 1, Lag: 0},
	}
	if len(d.Msg.Offsets) != len(want) {
		t.Fatalf("offsets %v", d.Msg.Offsets)
	}
	for i, o := range d.Msg.Offsets {
		w := want[i]
		if o.Topic != w.Topic || o.Partition != w.Partition || o.CommittedOffset != w.CommittedOffset || o.Metadata != w.Metadata ||
			o.HighWatermark != w.HighWatermark || o.Lag != w.Lag {
			t.Fatalf("offset %d: %v, want %v", i, o, w)
		}
	}
	if d.Msg.Group.Group != "billing" || len(d.Msg.Members) != 0 {
		t.Fatalf("group %v", d.Msg)
	}
	_, err = e.admin.DescribeGroup(ctx, connect.NewRequest(&wharfv1.DescribeGroupRequest{Group: "nobody"}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = e.admin.DescribeGroup(ctx, connect.NewRequest(&wharfv1.DescribeGroupRequest{}))
	wantCode(t, err, connect.CodeInvalidArgument)
}
