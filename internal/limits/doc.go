// Package limits owns the counters behind Wharf's resource limits and the
// rate-limited log line every refusal writes. It knows no protocol: the
// adapters (internal/kafka, internal/amqp, internal/gateway) and the core
// (internal/broker) decide what a limit means and answer with their
// protocol's error; this package only counts and samples.
//
//   - Gate counts the connections of one listener against a maximum.
//   - Users counts each user's connections, across every protocol that
//     authenticates users, against one maximum per user.
//   - LogSampler writes at most one line per kind of refusal per interval
//     and reports how many it held back, so a flood of refused clients
//     cannot flood the log.
//
// Invariants:
//   - A maximum of zero means no limit; a nil *Gate or *Users admits
//     everything, so callers need no special case.
//   - A count never goes above its maximum: taking a slot and checking the
//     maximum are one atomic step.
//   - Every release function is idempotent: releasing twice frees one slot.
//   - The package holds no package-level state.
package limits
