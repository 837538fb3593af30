// Package service holds the operations every face of the gateway offers
// (WebSocket, REST and gRPC): produce to and fetch from topics, publish to
// exchanges, get from queues, and the conversions between the core's
// records and messages and the values those faces carry.
//
// It calls the broker core only; nothing below imports it. It keeps no
// state of its own beyond what New is given, so one Service is shared by
// every connection and request.
//
// Invariants:
//   - A produce or publish returns only once what it wrote is durable per
//     the topic's or queue's fsync policy, as acks=all and publisher
//     confirms do.
//   - While a resource alarm (disk or memory) is set, produce and publish
//     are refused with CodeUnavailable and nothing is written; reads go on.
//   - Errors are *Error values with a stable Code, which each face maps to
//     its own status (close codes, HTTP statuses, gRPC codes).
//   - Records are handed out decoded and decompressed; control batches are
//     skipped. A record's x-amqp-properties header that decodes is handed
//     out as Properties, not among the headers (crossing.go).
package service
