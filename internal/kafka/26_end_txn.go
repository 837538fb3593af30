package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn (key 26): commits or aborts a producer's transaction. The answer
// comes once the transaction markers are durable in every partition the
// transaction holds, and, for a commit, its offsets in their groups: a
// read-committed consumer sees the transaction's records from then on. A
// retry of an end that completed succeeds; ending a transaction that holds
// nothing, or ending it the other way, is INVALID_TXN_STATE.
//
// Versions: v1 same as v0; v2 PRODUCER_FENCED; v3 flexible. v4
// (TRANSACTION_ABORTABLE) and v5 (KIP-890's epoch bump per transaction)
// are not served.
func (s *Server) handleEndTxn(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	err := s.b.EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	if err != nil {
		s.logger.Debug("ending a transaction", "transactional_id", req.TransactionalID, "commit", req.Commit, "err", err)
	}
	resp.ErrorCode = txnErrorCode(err, r.version, 2)
	return now(resp), nil
}
