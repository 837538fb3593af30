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
// # Invariants
//
//   - Responses leave in request order; acks=0 produces no response.
//   - Stored batches are served as stored: nothing is decoded or
//     recompressed on produce or fetch.
//   - Every handler file is named after its API key, and errors map to Kafka
//     codes in one table (errors.go).
//   - On Shutdown a connection reads the requests its client sent before
//     it (internal/drain), answers every request it read, whole, and then
//     closes; only past the shutdown deadline are sockets closed under
//     responses.
package kafka
