// Package broker is Wharf's protocol-neutral core. Protocol adapters (Kafka,
// AMQP, the HTTP gateway) call it; it never calls them, except through the
// DirectReplier an adapter registers for direct reply-to (direct_reply.go),
// and only it touches the storage engine.
//
// It owns the metadata state machine (State) and the partition logs, the
// idempotent producer state of each partition (producers.go) and the
// producer id blocks (producerids.go), the consumer group coordinator
// (groups.go, groups_state.go), the committed offsets store (offsets.go),
// the Kafka transaction coordinator (txn.go, with its durable log under
// <data-dir>/txn), the murmur2 key partitioner every Wharf publish path
// uses (partitioner.go), the crossing between AMQP messages and Kafka
// records (crossing.go) and the bridge rules that publish records into
// exchanges (bridge.go), the AMQP model: vhosts, exchanges, queue metadata,
// bindings and routing (amqp_*.go), and the resource alarm monitor
// (alarms.go, internal/alarm), which adapters ask or subscribe to. Durable
// AMQP objects are commands in the metadata log; transient ones live only
// in memory, so replaying the log gives exactly the durable part of the
// model.
//
// # Metadata as commands
//
// Every metadata change (create or delete a topic, change its configs, add
// partitions) is a Command. The broker validates the command against the
// current State, appends it to the command log, and only then applies it to
// the State and materialises the effect (opening or deleting partition
// logs). On start the command log is replayed from the beginning, so the
// State after a restart is exactly the State before it. Apply is
// deterministic and decides nothing random or time-dependent; topic ids are
// chosen before the command is made. On one node the command log is a local
// storage log under <data-dir>/meta; a Raft log will take its place behind
// the commandLog interface.
//
// # Invariants
//
//   - A command is durable before its effect exists: a topic's partition
//     directories are created after its CreateTopic command is fsynced and
//     removed after its DeleteTopic command is. A partition directory that
//     belongs to no topic on start is the remains of an interrupted deletion
//     and is removed.
//   - Each partition directory names the topic id it belongs to
//     (partition.metadata); data of an earlier topic of the same name is
//     never served to a new one.
//   - One broker process per data directory (an exclusive lock on
//     <data-dir>/.lock).
//   - The number of topics never exceeds Options.MaxTopics, nor the queues
//     of a vhost Options.MaxQueuesPerVhost, when set: the count is checked
//     under Broker.mu with the creation (limits.go). Refusals are
//     ErrLimitReached and are logged at most once per kind per interval.
//   - A persistent message in a durable queue is delivered (to a consumer
//     or basic.get) only once its append to the queue's log is durable; a
//     message whose fsync failed is never delivered and never settled.
//   - Queue TTLs, length limits and x-expires are measured on Options.Now.
//     A queue publishes dead letters (queue_deadletter.go) only after
//     releasing its own lock, never under it, so a dead letter may route
//     back to the same queue.
//   - A stream queue's log is a topic (stream.go): the topic of its name
//     for a stream queue in vhost "/" whose name Kafka allows, else a
//     hidden topic ("#stream.<queue id>") that the Broker's topic methods
//     (Topic, Topics, Partition, DeleteTopic, configs, partitions) treat as
//     unknown. The topic is created before the queue's declaration is
//     logged and deleted after its deletion is; on open, a stream queue
//     without its topic and a hidden topic without its queue are deleted.
//     A message routed to a stream queue is appended as one record
//     (RecordFromMessage); stream readers read only below the last stable
//     offset (durable records, no open transaction), skip aborted
//     transactions' records, and take no broker or queue lock.
//   - A queue delivers its ready messages highest priority level first
//     (queue_priority.go; one level without x-max-priority), in arrival
//     order within a level, requeued ones first. With a single active
//     consumer (queue_sac.go) only one consumer is delivered to: in a
//     classic queue the first registered, in a quorum queue the active
//     one, replaced by one of higher priority only once it holds no
//     unsettled delivery.
//   - A quorum queue's message is requeued at most x-delivery-limit times
//     (queue_quorum.go): the return that exceeds it dead-letters the
//     message instead, under the same lock. A message's count of returns
//     only grows while it is in the queue, and is settled (forgotten, in
//     the acks file too) with the message.
//   - A delivery's Message is never written to: a returned message goes
//     out as a copy carrying x-delivery-count, and dead-lettering reads
//     the stored original.
//   - A queue or exchange with x-message-deduplication (dedup.go) stores a
//     message at most once per message_id within its window. An id is
//     remembered from the moment its publish is admitted; a publish that
//     is not stored (refused, failed) forgets it and fails its
//     duplicates. The id of a message stored in a durable queue's log is
//     written to the object's deduplication log only after that append
//     is durable, and the publish's Wait (the confirm) returns only once
//     the id is durable too. Windows are measured on Options.Now. On
//     open, before anyone is served, the ids of the messages the durable
//     queues recovered are added to their queue's and exchange's windows
//     and written to their logs (dedup_recover.go).
//   - A bridge rule (bridge.go) commits a partition's position, in the
//     consumer group BridgeGroup(rule) of the offsets store, only after
//     every record before it is durable in every durable queue it was
//     routed to; on start it resumes there, so bridging is at-least-once.
//     A record whose x-amqp-exchange names the rule's exchange is never
//     published into it. Bridges read partitions and publish through
//     Publish like any adapter; they stop, and Close waits for them,
//     before the logs close.
//   - A partition accepts a transactional batch only while the producer's
//     ongoing transaction holds it, and a transaction's partitions are
//     durable in the coordinator's log before that; a transaction's end is
//     durable as Prepare before its markers are written, and as Complete
//     only once they (and a commit's offsets) are: a crash anywhere leaves
//     it open or completes it on open, never half applied (txn.go).
//
// # Lock order
//
// Broker.mu (metadata changes, State) before the group coordinator's lock
// before Broker.topicsMu (the open partitions); the coordinator's lock
// before the offset store's append lock; Broker.mu before the AMQP model's
// lock (amqpRuntime.mu), which routing takes for reading. Partition operations take none of
// them; an idempotent append takes only its Partition.mu. A deduplication
// window's lock (dedupWindow.mu) is innermost: nothing else is taken while
// it is held, publishes take it after releasing the model's lock and
// outside any Queue.mu, and it is never held while waiting for the disk. A transactional
// id's lock (txn.go) comes before the producer id lock, a Partition.mu and
// the group coordinator's lock.
// A stream queue's appends and readers take Broker.topicsMu for reading
// only to find the partitions of its topic, after the model's lock is
// released; deleting a stream queue deletes its topic under Broker.mu,
// after the model's lock is released.
package broker
