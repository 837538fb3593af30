// Package gateway is Wharf's HTTP adapter. It serves, on the HTTP listener:
//
//	GET /healthz  200 {"status":"ok"} while the process is serving
//	GET /readyz   200 {"status":"ready"} when ready, 503 {"status":"not_ready"} otherwise
//	GET /metrics  Prometheus metrics from the injected registry
//	GET /ws       the WebSocket protocol of docs/websocket.md
//	GET /api/openapi.json  the OpenAPI 3.0 document of the REST face
//	/api/v1/...   the REST face (rest*.go), JSON with HTTP Basic logins:
//	              server; topics (list, create, describe, delete, configs,
//	              partitions); POST topics/{t}/records (produce) and GET
//	              topics/{t}/partitions/{p}/records (fetch, long poll);
//	              groups (list, describe, delete, offsets read and commit);
//	              vhosts/{v}/exchanges/{x}/publish and queues/{q}/get; vhosts,
//	              exchanges, queues, bindings and users (list, declare, delete)
//	/wharf.v1.*   the gRPC face (package grpcapi, connect-go: gRPC, gRPC-Web
//	              and Connect, h2c on a plain listener)
//	GET /console/ a small live console page on /ws (package console)
//
// The WebSocket endpoint (ws*.go) keeps one session per connection: a hub
// registration (package hub) for messages between clients and groups,
// topic subscriptions that read partitions through the service (package
// service) and push records, and queue subscriptions that are consumers
// of the core's queues. Frames are encoded by package wsproto.
//
// Invariants:
//   - Every dependency (logger, registry, readiness, service, users) is
//     passed to NewHandler or NewWebSocket; the package holds no
//     package-level state.
//   - The gateway calls the core through package service and never the
//     other way round.
//   - Nothing a client sends can make the server buffer without bound: a
//     connection's outbound frames are capped (a client past the cap is
//     closed with 4001), topic subscriptions wait for room under the cap, queue subscriptions are bounded by their prefetch, and
//     requests waiting for durability are bounded per connection.
//   - Every HTTP response except /metrics, /console/ and the gRPC face's
//     is JSON. Errors have the body
//     {"code":"...","message":"..."}.
//   - Limits (listener.go, and the per-user slots of the REST, gRPC and
//     WebSocket faces): the HTTP listener holds at most its configured
//     number of connections, a connection beyond it is answered 503
//     limit_reached without reaching a handler; each authenticated REST or
//     gRPC call in progress, and each WebSocket session, holds one of its
//     user's connection slots, shared with AMQP, and gives it back when it
//     ends. Refusals are logged at most once per kind per interval.
//
// Lock order in a WebSocket session: a queue's lock (deliveries run under
// it) before the subscription's and then the connection's outbox lock;
// the outbox lock is never held while calling into the hub, the core or the
// WebSocket library.
package gateway
