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
