// Package crashsuite is Wharf's crash-consistency suite: a test that runs
// the real `wharf serve` in a child process under Kafka and AMQP load from
// real clients over real sockets, kills it with SIGKILL at random moments
// many times, restarting it on the same data directory each time, and then
// drains everything and judges what the clients saw.
//
// The package's non-test files hold what the judging needs and nothing
// about processes or sockets: the self-checking payload format
// (payload.go), the ledgers that record every acknowledgement and every
// read or delivery and then give a verdict (kafka_ledger.go,
// amqp_ledger.go), and the summary line (summary.go). The test files run
// the server and the clients.
//
// # What is checked
//
//   - No acknowledged message is lost: every record whose acks=all produce
//     was acknowledged is stored at the partition and offset the
//     acknowledgement gave, and every persistent message the broker
//     confirmed is delivered to a consumer.
//   - Nothing corrupt is ever served: every payload carries a CRC32 of
//     itself and every reader checks it.
//   - Kafka: no (partition, offset) is ever seen with two values, by any
//     reader at any time or by an acknowledgement; offsets are contiguous
//     from 0; the idempotent producers create no duplicate; a consumer
//     group committing after processing processes every acknowledged record;
//     committed offsets acknowledged before a kill are still there after the
//     restart.
//   - AMQP: each consumer gets the messages of each publisher that are not
//     flagged redelivered in publish order; a message delivered a second
//     time is flagged redelivered; an ack is never undone once a later
//     reply on the same channel (amqp_acked_returned) or a tx.commit
//     (amqp_committed_returned) proved it received. Extra copies from a
//     publisher republishing what was not confirmed are allowed and
//     counted (amqp_duplicated), and so are messages whose ack nothing
//     proved received coming back after a crash, flagged redelivered
//     (at-least-once).
//   - After the drain a clean restart keeps everything: the partitions end
//     where they ended, and the drained queue is empty.
//
// # Running it
//
//	go test -race -count=1 -v -run TestCrashSuite ./internal/crashsuite/
//
// deals 15 kills; -crash.kills N or WHARF_LONG_TESTS=1 (100 kills) runs
// longer, and -crash.seed reproduces the random choices (not the timing).
package crashsuite
