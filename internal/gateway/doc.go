// Package gateway is Wharf's HTTP adapter. Today it serves the operational
// endpoints:
//
//	GET /healthz  200 {"status":"ok"} while the process is serving
//	GET /readyz   200 {"status":"ready"} when ready, 503 {"status":"not_ready"} otherwise
//	GET /metrics  Prometheus metrics from the injected registry
//
// The rest of the gateway (REST, WebSocket and gRPC access to topics and
// queues) comes later and will be added here, beside these routes.
//
// Invariants:
//   - Every dependency (logger, registry, readiness) is passed to NewHandler;
//     the package holds no package-level state.
//   - Every response except /metrics is JSON. Errors have the body
//     {"code":"...","message":"..."}, with code one of not_found or
//     method_not_allowed.
//   - The handler never blocks on the broker: readiness is a cheap func.
package gateway
