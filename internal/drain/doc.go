// Package drain lets a protocol server stop reading a client connection
// without losing what the client has already sent: on shutdown, a request
// whose bytes reached the server before the shutdown began is still read
// (and so answered); nothing sent later is.
//
// A Reader sits between a connection and the protocol's decoder. Until
// Stop it reads like the connection. Stop interrupts a blocked read; from
// then on, a read at a message boundary takes only what is already
// buffered in the kernel and, when nothing is, fails with ErrDrained
// without waiting; a read inside a message waits at most the grace period
// for the rest of it. Finish turns the reader back into a plain blocking
// one with a deadline, for a protocol's closing handshake.
//
// Invariants:
//   - After Stop, no read at a message boundary blocks.
//   - Every deadline the Reader sets after Stop is set under the lock Stop
//     holds, so Stop's own interrupt can never land after (and override)
//     them.
//   - Only one goroutine reads; Stop and Finish may be called from any.
package drain
