package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddOffsetsToTxn (key 25): adds a group to a producer's transaction, so
// that TxnOffsetCommit may commit the group's offsets in it. Errors as
// for AddPartitionsToTxn.
//
// Versions: v1 same as v0; v2 PRODUCER_FENCED; v3 flexible.
func (s *Server) handleAddOffsetsToTxn(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	err := s.b.AddOffsetsToTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group)
	resp.ErrorCode = txnErrorCode(err, r.version, 2)
	return now(resp), nil
}
