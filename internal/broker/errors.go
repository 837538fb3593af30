package broker

import (
	"errors"

	"github.com/wharfmq/wharf/internal/storage"
)

// Errors of the core. Adapters map them (with errors.Is) to protocol codes in
// one table each.
var (
	ErrTopicExists       = errors.New("topic already exists")
	ErrUnknownTopic      = errors.New("unknown topic")
	ErrUnknownPartition  = errors.New("unknown partition")
	ErrInvalidTopic      = errors.New("invalid topic name")
	ErrInvalidPartitions = errors.New("invalid partition count")
	ErrInvalidConfig     = errors.New("invalid topic config")
	ErrClosed            = errors.New("broker closed")
	// ErrLimitReached is a refusal because a configured limit is reached:
	// the queues of a vhost or the topics (limits.go). Adapters answer it
	// with their protocol's error for a quota (AMQP 406 for queue.declare,
	// Kafka POLICY_VIOLATION).
	ErrLimitReached = errors.New("limit reached")

	// Storage errors, re-exported so adapters need not import storage.
	ErrLogClosed        = storage.ErrClosed
	ErrInvalidRecord    = storage.ErrInvalidRecord
	ErrCorruptBatch     = storage.ErrCorruptBatch
	ErrBatchTooLarge    = storage.ErrBatchTooLarge
	ErrUnsupportedMagic = storage.ErrUnsupportedMagic
	ErrOffsetOutOfRange = storage.ErrOffsetOutOfRange
	ErrStorage          = storage.ErrStorage
)

// Errors of Kafka transactions (txn.go).
var (
	// ErrInvalidTxnState is a request that the transaction's state does
	// not allow, such as a transactional batch for a partition the
	// transaction does not hold, or committing a transaction never begun.
	ErrInvalidTxnState = errors.New("invalid transaction state")
	// ErrProducerFenced is a request from an older epoch of a
	// transactional id: another producer with that id took over.
	ErrProducerFenced = errors.New("producer fenced by a newer epoch of its transactional id")
	// ErrInvalidProducerIDMapping is a producer id that is not the one of
	// the transactional id.
	ErrInvalidProducerIDMapping = errors.New("producer id does not match the transactional id")
	// ErrInvalidTxnTimeout is a transaction timeout outside the allowed
	// range.
	ErrInvalidTxnTimeout = errors.New("invalid transaction timeout")
	// ErrConcurrentTransactions is a request for a transaction that is
	// still completing; it is retriable.
	ErrConcurrentTransactions = errors.New("the previous transaction is still completing")
	// ErrUnstableOffsetCommit is a committed offset that a transaction
	// still pending may change.
	ErrUnstableOffsetCommit = errors.New("a transactional offset commit is pending")
)

// ErrOperationNotAttempted is a part of a request left undone because
// another part of it failed.
var ErrOperationNotAttempted = errors.New("operation not attempted")
