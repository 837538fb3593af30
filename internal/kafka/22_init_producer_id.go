package kafka

import (
	"context"

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
// Transactions are not supported yet (they come in a later release). A
// request with a transactional id is answered with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED: the code Kafka gives a client that
// may not use transactional ids. Every client treats it as fatal and not
// retriable, so initTransactions fails at once with a clear cause instead
// of retrying until it times out, as a retriable code such as
// COORDINATOR_NOT_AVAILABLE would make it do; the response has no message
// field, so the broker logs why. An empty transactional id is
// INVALID_REQUEST, as in Kafka.
//
// Versions: v1 same as v0; v2 flexible; v3 producer id and epoch; v4-v5
// same as v3.
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
		s.logger.Warn("refused a transactional producer: transactions are not supported yet",
			"transactional_id", *req.TransactionalID, "client_id", r.clientID, "remote", r.conn.nc.RemoteAddr().String())
		return fail(kerr.TransactionalIDAuthorizationFailed.Code)
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
