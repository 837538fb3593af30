// Package server runs a Wharf process: it opens the broker, starts every
// listener that is configured and implemented, and shuts them down in order.
//
// Invariants:
//   - Run returns only after every listener it started has stopped and the
//     broker has been closed; broker.Close runs exactly once, after the
//     listeners, so every acknowledged write is on disk before Run returns.
//   - A listener that fails to start fails Run; nothing is left running.
//   - On shutdown every listener stops accepting at once, and they drain
//     together within one ShutdownTimeout (stopListeners); then the broker
//     closes, which fsyncs everything whatever the fsync policy.
//   - Each started listener logs its bound address once, with the attributes
//     listener=<name> addr=<host:port>. Port 0 in the configuration is
//     reported as the port actually bound.
//   - A configured listener whose protocol adapter does not exist yet is
//     logged as "listener not available yet" and not started.
//   - /readyz reports ready only between a complete startup and the start of
//     shutdown.
//   - Every listener is bound by listen (listen.go): accepted connections
//     get TCP keepalive from tcp_keepalive, set explicitly rather than left
//     to Go's or the kernel's defaults, and accept errors a wait can cure
//     (EMFILE above all) are retried with a backoff instead of stopping the
//     listener and the server.
//   - A TLS listener (kafka-tls, amqps, https) is a plain listener wrapped
//     by crypto/tls with the certificates of one certs.Store (tls.go);
//     the plain and TLS AMQP listeners share one amqp.Server, the Kafka
//     ones have one kafka.Server each (each advertises its own address),
//     and the HTTP ones serve one handler. Options.Reload makes the store
//     read its files again; a failed reload keeps the files in use.
//   - Dependencies (configuration, logger) are passed in; the package holds
//     no package-level state. RunWithOptions also takes seams that are not
//     settings (the filesystem, the alarms' measurements) for tests.
package server
