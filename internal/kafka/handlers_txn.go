package kafka

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wharfmq/wharf/internal/broker"
)

// txnHandlers lists the transaction keys and their admin keys. The transaction logic is the
// broker's (see internal/broker/txn.go); these handlers translate requests
// to it and back. Versions stop before KIP-890's: AddPartitionsToTxn v4+
// is broker-to-broker verification, and EndTxn v5 and Produce v12 carry
// the per-transaction epoch bump and the implicit add, which this broker
// does not do.
func (s *Server) txnHandlers() map[int16]handler {
	return map[int16]handler{
		24: {0, 3, s.handleAddPartitionsToTxn},
		25: {0, 3, s.handleAddOffsetsToTxn},
		26: {0, 3, s.handleEndTxn},
		28: {0, 3, s.handleTxnOffsetCommit},
		61: {0, 0, s.handleDescribeProducers},
		65: {0, 0, s.handleDescribeTransactions},
		66: {0, 1, s.handleListTransactions},
	}
}

// txnErrorCode is errorCode for a transactional request: before the
// version that brought PRODUCER_FENCED (KIP-588), a fenced producer is told
// INVALID_PRODUCER_EPOCH.
func txnErrorCode(err error, version, fencedSince int16) int16 {
	if errors.Is(err, broker.ErrProducerFenced) && version < fencedSince {
		return kerr.InvalidProducerEpoch.Code
	}
	return errorCode(err)
}
