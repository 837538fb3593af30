// Package gen generates the AMQP 0-9-1 codec of the wire package from the
// machine-readable definition in internal/amqp/spec: a struct per method
// with its encoder and decoder, the method dispatch table, the content
// header properties of class basic, and the specification's constants. The
// command internal/amqp/gen runs it; the wire package's tests run it too and
// compare the result with the checked-in file.
//
// # Invariants
//
//   - Output is a pure function of the definition: same input, same bytes
//     (gofmt-formatted, in the definition's order, no timestamps or paths).
//   - Every field resolves to one of the base types the wire package
//     implements; anything else is an error, never a guess.
//   - Consecutive bit arguments are packed into octets, at most eight to an
//     octet, the first in the least significant bit; any other argument ends
//     the run.
package gen
