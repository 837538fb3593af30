// Package drain lets a protocol server stop reading a client connection
// without losing what the client has already sent: on shutdown, a request
// whose bytes reached the server before the shutdown began is still read
// (and so answered); on Linux, nothing sent later is.
//
// A Reader sits between a connection and the protocol's decoder. Until
// Stop it reads like the connection. Stop notes how many bytes the kernel
// holds for the connection (on Linux; elsewhere the end is whatever has
// arrived when a boundary is reached) and interrupts a blocked read. From
// then on a read at a message boundary takes only from those bytes,
// without waiting, and once they are read fails with ErrDrained; a read
// inside a message waits at most the grace period for the rest of it, even
// past them. So a client that keeps sending cannot keep a shutdown
// draining. Finish turns the reader back into a plain blocking one with a
// deadline, for a protocol's closing handshake. Until Stop, the protocol
// may set read deadlines of its own (an idle timeout) with
// SetReadDeadline; after it, they are refused.
//
// Invariants:
//   - After Stop, no read at a message boundary blocks, and (on Linux) none
//     reads past the bytes the kernel held at Stop.
//   - Every deadline the Reader sets after Stop is set under the lock Stop
//     holds, so Stop's own interrupt can never land after (and override)
//     them.
//   - Only one goroutine reads; Stop and Finish may be called from any.
package drain
