package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId (key 22): gives an idempotent producer its producer id and
// epoch. Ids come from blocks reserved durably in the metadata log, so an
// id is never handed out twice, across restarts too. From v3 a producer may
// send the id and epoch it had (KIP-360): it gets the same id with the next
// epoch, which fences its older batches, or a new id with epoch 0 when the
// epoch is exhausted or the id is not one this cluster handed out. An id
// without an epoch, or the reverse, is INVALID_REQUEST, as in Kafka.
//
// With a transactional id the transaction coordinator answers
// (internal/broker/txn.go): the id's producer id with its epoch bumped,
// which fences every earlier producer of the id, after aborting a
// transaction the previous epoch left open. A timeout over 15 minutes is
// INVALID_TRANSACTION_TIMEOUT; an id and epoch (v3+) that are not the
// transactional id's current ones are PRODUCER_FENCED (before v4,
// INVALID_PRODUCER_EPOCH). An empty transactional id is INVALID_REQUEST,
// as in Kafka.
//
// Versions: v1 same as v0; v2 flexible; v3 producer id and epoch; v4
// PRODUCER_FENCED; v5 same as v4.
func (s *Server) handleInitProducerID(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	fail := func(code int16) (reply, error) {
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, -1, -1
		return now(resp), nil
	}
	if req.TransactionalID != nil {
		if *req.TransactionalID == "" {
			return fail(kerr.InvalidRequest.Code)
		}
		id, epoch := int64(-1), int16(-1)
		if r.version >= 3 {
			id, epoch = req.ProducerID, req.ProducerEpoch
			if (id == -1) != (epoch == -1) {
				return fail(kerr.InvalidRequest.Code)
			}
		}
		timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
		id, epoch, err := s.b.InitTxnProducer(ctx, *req.TransactionalID, timeout, id, epoch)
		if err != nil {
			s.logger.Debug("initialising a transactional producer", "transactional_id", *req.TransactionalID, "err", err)
			return fail(txnErrorCode(err, r.version, 4))
		}
		resp.ProducerID, resp.ProducerEpoch = id, epoch
		return now(resp), nil
	}
	id, epoch := int64(-1), int16(-1)
	if r.version >= 3 {
		id, epoch = req.ProducerID, req.ProducerEpoch
		if (id == -1) != (epoch == -1) {
			return fail(kerr.InvalidRequest.Code)
		}
	}
	id, epoch, err := s.b.InitProducerID(ctx, id, epoch)
	if err != nil {
		s.logger.Warn("handing out a producer id", "err", err)
		return fail(errorCode(err))
	}
	resp.ProducerID, resp.ProducerEpoch = id, epoch
	return now(resp), nil
}
