// Package wire is the AMQP 0-9-1 codec: frames, methods, content headers
// and field tables, as RabbitMQ puts them on the wire. It knows nothing of
// connections, channels, queues or the broker; the AMQP adapter uses it to
// read and write frames and maps its errors to close methods.
//
// # What it holds
//
//   - methods_gen.go, generated from internal/amqp/spec (go generate): a
//     struct per method (BasicPublish, QueueDeclare, ...) implementing
//     Method, DecodeMethod's dispatch table, the basic class's content
//     header Properties, and the specification's constants (frame types,
//     FrameEnd, FrameMinSize, reply codes with ReplyName and IsHardError,
//     class ids, ProtocolHeader). Never edit it by hand: a test regenerates
//     it and fails when the two differ.
//   - table.go: field tables and arrays with RabbitMQ's type tags (see
//     Table for the tag to Go type mapping).
//   - frame.go and frame_write.go: the protocol header check, FrameReader
//     (bounded by frame-max) and FrameWriter (one write per message, bodies
//     split at frame-max).
//   - content.go and assembler.go: content headers, and the per-channel
//     Assembler that turns method, header and body frames into a Command.
//   - errors.go: *Error, which carries the reply code for every protocol
//     violation found while reading.
//
// # Errors and reply codes
//
// Whatever the peer sends wrong comes back as an *Error whose Code is the
// reply code to close with, and whose cause is one of the Err* values:
//
//	501 FRAME_ERROR          unknown frame type, frame over frame-max, bad
//	                         frame-end, bad heartbeat, fields truncated or
//	                         followed by stray bytes, body beyond body-size
//	502 SYNTAX_ERROR         unknown field-table tag, tables nested too
//	                         deep, undefined property flags, header weight
//	505 UNEXPECTED_FRAME     a frame out of sequence on a channel
//	540 NOT_IMPLEMENTED      unknown class or method id
//	406 PRECONDITION_FAILED  body-size above the maximum message size
//	                         (soft: closes the channel only)
//
// IsHardError tells connection errors from channel errors. I/O errors
// (io.EOF between frames, io.ErrUnexpectedEOF inside one) are returned as
// such. Encoding failures (a short string over 255 bytes, a Go type with no
// field-table tag, a frame over frame-max) are plain wrapped errors: they
// are the server's own fault and carry no reply code.
//
// # Invariants
//
//   - Every length read from the wire is checked against the bytes present
//     before anything is sliced or allocated; frame payloads are bounded by
//     frame-max, and readers grow buffers only as bytes arrive.
//   - Nothing decoded aliases the input: strings and byte arrays are
//     copied, so frame buffers can be reused at once.
//   - Decoding then encoding then decoding is stable; encoding is
//     deterministic (table keys are written sorted).
//   - Consecutive bit arguments share octets, first bit least significant.
//   - The package holds no state: no mutable package variables, no init.
package wire
