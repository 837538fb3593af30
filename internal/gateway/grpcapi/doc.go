// Package grpcapi is the gateway's gRPC face: the services of
// proto/wharf/v1/wharf.proto, served with connect-go on the HTTP listener,
// so gRPC (HTTP/2, h2c when plain), gRPC-Web and Connect clients all reach
// the same handlers.
//
// MessagingService produces to and subscribes to topics, publishes to
// exchanges and consumes queues; AdminService manages topics, queues,
// exchanges and bindings and describes consumer groups. Every operation
// goes through package service or the broker's exported API, with the
// semantics of the WebSocket face (docs/websocket.md). The code under gen
// is generated (see the go:generate line below) and committed.
//
// Invariants:
//   - Every call to the wharf.v1 services is authenticated with HTTP Basic
//     against the user store, in one interceptor that covers unary and
//     streaming calls; nothing runs for a caller without valid
//     credentials. Server reflection and grpc.health.v1 answer anyone: they
//     describe the API and touch no data.
//   - Errors leave as connect errors whose code is the service error's
//     code mapped once, in errors.go.
//   - Produce and Publish answer only once what they wrote is durable.
//   - Nothing a client sends makes the server buffer without bound: a
//     request is at most maxRequestBytes, a topic subscription sends as
//     fast as HTTP/2 flow control lets it and reads no further ahead, and
//     a queue subscription holds at most prefetch deliveries, because the
//     consumer's credit allows no more unsettled.
//   - A queue subscription's unsettled deliveries go back to the queue
//     whenever and however its stream ends.
//   - Streams end when the HTTP server starts shutting down, so they do
//     not hold up its drain; unary calls in flight finish.
//   - The package holds no package-level state.
//
// Lock order in a queue subscription: the queue's lock (Deliver runs under
// it) before the subscription's; the subscription's lock is never held
// while calling into the queue or the broker.
package grpcapi

//go:generate bash ../../../scripts/gen-proto.sh
