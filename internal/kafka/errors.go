package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wharfmq/wharf/internal/broker"
)

// errorCode maps a core error to its Kafka error code: the one table of
// this adapter. nil maps to 0.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, broker.ErrUnknownTopic), errors.Is(err, broker.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, broker.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, broker.ErrLimitReached):
		return kerr.PolicyViolation.Code
	case errors.Is(err, broker.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, broker.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, broker.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, broker.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, broker.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, broker.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, broker.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, broker.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, broker.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, broker.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, broker.ErrStorage), errors.Is(err, broker.ErrDiskAlarm):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, broker.ErrInvalidGroupID):
		return kerr.InvalidGroupID.Code
	case errors.Is(err, broker.ErrInvalidSessionTimeout):
		return kerr.InvalidSessionTimeout.Code
	case errors.Is(err, broker.ErrInconsistentGroupProtocol):
		return kerr.InconsistentGroupProtocol.Code
	case errors.Is(err, broker.ErrMemberIDRequired):
		return kerr.MemberIDRequired.Code
	case errors.Is(err, broker.ErrUnknownMemberID):
		return kerr.UnknownMemberID.Code
	case errors.Is(err, broker.ErrFencedInstanceID):
		return kerr.FencedInstanceID.Code
	case errors.Is(err, broker.ErrIllegalGeneration):
		return kerr.IllegalGeneration.Code
	case errors.Is(err, broker.ErrRebalanceInProgress):
		return kerr.RebalanceInProgress.Code
	case errors.Is(err, broker.ErrGroupIDNotFound):
		return kerr.GroupIDNotFound.Code
	case errors.Is(err, broker.ErrNonEmptyGroup):
		return kerr.NonEmptyGroup.Code
	case errors.Is(err, broker.ErrGroupSubscribedToTopic):
		return kerr.GroupSubscribedToTopic.Code
	case errors.Is(err, broker.ErrGroupMaxSizeReached):
		return kerr.GroupMaxSizeReached.Code
	case errors.Is(err, broker.ErrOffsetMetadataTooLarge):
		return kerr.OffsetMetadataTooLarge.Code
	case errors.Is(err, broker.ErrNotCoordinator):
		return kerr.NotCoordinator.Code
	case errors.Is(err, broker.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, broker.ErrProducerFenced):
		return kerr.ProducerFenced.Code
	case errors.Is(err, broker.ErrInvalidProducerIDMapping):
		return kerr.InvalidProducerIDMapping.Code
	case errors.Is(err, broker.ErrInvalidTxnTimeout):
		return kerr.InvalidTransactionTimeout.Code
	case errors.Is(err, broker.ErrConcurrentTransactions):
		return kerr.ConcurrentTransactions.Code
	case errors.Is(err, broker.ErrUnstableOffsetCommit):
		return kerr.UnstableOffsetCommit.Code
	case errors.Is(err, broker.ErrOperationNotAttempted):
		return kerr.OperationNotAttempted.Code
	case errors.Is(err, broker.ErrClosed), errors.Is(err, broker.ErrLogClosed):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is err's text for the response's optional message field.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
