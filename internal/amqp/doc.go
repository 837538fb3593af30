// Package amqp is Wharf's AMQP 0-9-1 adapter: it serves RabbitMQ clients
// on the core (internal/broker). It owns connections and channels: the
// handshake (protocol header, connection.start/tune/open, PLAIN and
// AMQPLAIN against internal/auth), heartbeats, frame and channel limits,
// the mapping of every method to the core, and the per-channel delivery
// state a client sees (delivery tags, unacknowledged deliveries, prefetch,
// publisher confirms, transactions), and RabbitMQ's direct reply-to
// (replyto.go): the amq.rabbitmq.reply-to consumers, the rewriting of
// requests' reply_to, and the DirectReplier through which the core hands
// them replies. Exchanges, queues, bindings, routing and the messages
// themselves belong to the core; the codec to wire/.
//
// # Goroutines
//
// A connection has a reader (serve: it handles frames in order, one method
// at a time), a writer (writeLoop: it sends the outbox, frames appended by
// any goroutine under a short lock, many per system call), a heartbeat
// ticker and a consumer timeout check (timeout.go). A channel in confirm mode has a confirmer that waits for
// group-commit fsyncs. Queues deliver by calling a consumer's Deliver from
// whatever goroutine made a message available (a publisher's reader, an
// acking reader), with the queue's lock held. A consumer of a stream queue
// has a goroutine of its own (stream.go) that reads the stream's log and
// delivers under the channel's mu only.
//
// # Invariants
//
//   - Lock order: a channel's rmu, then a queue's lock, then a channel's
//     mu, then the outbox's. The reader never holds a channel's mu while
//     it calls the core. The reader holds a channel's rmu while it handles
//     one of its frames; the consumer timeout check holds it to close the
//     channel, the only change to a channel's reader state made by another
//     goroutine.
//   - A delivery that needs an acknowledgement and is not settled within
//     its timeout (its consumer's x-consumer-timeout, else its queue's,
//     else Options.ConsumerTimeout) closes its channel with 406 (checked
//     every Options.ConsumerTimeoutCheck on Options.Now).
//   - A consumer's deliveries never precede its basic.consume-ok: it is
//     registered busy and started once consume-ok is in the outbox.
//   - Delivery tags on a channel grow by one per delivery (basic.deliver
//     and basic.get-ok), in the order the frames are written.
//   - Publisher confirms go out in publish order; an ack for a message
//     stored in a durable queue's log follows its fsync; basic.return for a
//     mandatory unroutable message precedes its ack.
//   - When a channel or connection ends, its consumers are cancelled first
//     (so nothing more is delivered to it) and then every unacknowledged
//     delivery, including those settled in an uncommitted transaction, goes
//     back to its queue in order.
//   - A stream consumer has at most its prefetch count of deliveries
//     unsettled: each delivery takes a unit of credit and any settlement of
//     it (ack, nack, reject, with or without requeue) gives it back; stream
//     deliveries are never requeued. Its goroutine ends on basic.cancel,
//     channel or connection close, and the stream's deletion, and the
//     canceller waits for it.
//   - A direct reply goes only to the channel whose current reply consumer
//     its routing key names, never before that consumer's consume-ok, and
//     is never buffered: a requester that is gone, or whose flow is off or
//     outbox full, does not get it, and the core counts it unroutable.
//   - Soft errors (403, 404, 405, 406) close the channel with
//     channel.close; hard errors (320, 501-505, 530, 540, 541) close the
//     connection with connection.close; the reply text, in RabbitMQ's
//     "CODE_NAME - what was wrong" form, always says what was wrong.
//   - A refused login gets connection.close 403 when the client announced
//     authentication_failure_close, and a closed socket otherwise.
//   - On Shutdown an open connection reads the frames its client sent
//     before it (internal/drain), confirms every publish it read, and only
//     then sends connection.close 320 CONNECTION_FORCED; one still in its
//     handshake gets the 320 at once.
//   - While a resource alarm is set, nothing is read from a connection
//     after a basic.publish method frame until every alarm has cleared;
//     connection.blocked and connection.unblocked go, in pairs, to
//     publishing connections that announced the capability (alarms.go).
package amqp
