// Package kafka is the Kafka wire-protocol adapter: it decodes requests with
// franz-go's kmsg, calls the broker core, and encodes the responses. It holds
// no business rules of its own beyond protocol semantics (versions, error
// codes, which fields a version carries).
//
// # Connections
//
// Each connection has a reader goroutine and a writer goroutine. The reader
// checks the size prefix against the maximum request size, decodes the
// header and body, and runs the handler in arrival order; the handler does
// whatever must happen in order (an append assigns offsets) and returns a
// reply whose finish step runs in the writer, which may wait (for the
// group-commit fsync of acks=-1, for fetch data) and then writes the
// response. The writer handles replies in request order, so a client may
// pipeline requests and still receive responses in order. A request that
// cannot be decoded, an unknown key or an unsupported version (other than
// ApiVersions, which answers with its own range) closes the connection, as
// Kafka does.
//
// # Authentication
//
// SaslHandshake and SaslAuthenticate (sasl.go) log a connection in as a
// user of the auth store with PLAIN or SCRAM-SHA-256/512; the state is the
// reader goroutine's own. With RequireSASL, a request other than
// ApiVersions and the two SASL ones on a connection that has not logged in
// closes it before its handler runs, so nothing is read, written or
// created. A failed login is answered and then closes the connection.
//
// # Slow and broken clients
//
// A request body is allocated as its bytes arrive (doubling from 64 KiB),
// not at the size its prefix claims. The writer builds and writes one
// response at a time, and the reader stops once MaxInFlight requests wait,
// so a client that stops reading holds one response (a fetch is at most
// FetchMaxBytes plus one batch) and no produce body: those go back to the
// pool once appended. A connection with nothing received, nothing owed and
// nothing written for ConnectionsMaxIdle is closed (conn_read.go).
//
// # Invariants
//
//   - Responses leave in request order; acks=0 produces no response.
//   - Memory per connection is bounded whatever the client sends or fails
//     to read: the request being read (at most twice what arrived), the
//     pipelined requests (MaxInFlight, produce bodies excluded) and one
//     response (BufferedBytes counts what responses hold).
//   - Stored batches are served as stored: nothing is decoded or
//     recompressed on produce or fetch.
//   - Every handler file is named after its API key, and errors map to Kafka
//     codes in one table (errors.go).
//   - On Shutdown a connection reads the requests its client sent before
//     it (internal/drain), answers every request it read, whole, and then
//     closes; only past the shutdown deadline are sockets closed under
//     responses.
//   - Transactions are the broker's (internal/broker/txn.go): the
//     handlers of keys 22 (with a transactional id), 24, 25, 26 and 28
//     translate, and answer only once the coordinator's change is durable.
//     Fetch and ListOffsets at read_committed stop at the last stable
//     offset; OffsetFetch with require_stable reports offsets a pending
//     transaction commits as UNSTABLE_OFFSET_COMMIT. No version that needs
//     KIP-890 (Produce v12, AddPartitionsToTxn v4, EndTxn v4+) is
//     advertised.
//   - Under the broker's disk alarm a produce request writes nothing and
//     every partition gets KAFKA_STORAGE_ERROR; under the memory alarm it
//     is accepted, answered with throttle_time_ms, and its connection is
//     not read again before that time has passed (alarms.go).
package kafka
