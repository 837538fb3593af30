package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// DescribeTransactions (key 65): the state of each transactional id asked
// for: producer id and epoch, state, timeout, when the open transaction
// began (-1 when none is open) and the partitions it holds. An id this
// coordinator does not know is TRANSACTIONAL_ID_NOT_FOUND.
//
// Versions: v0 only.
func (s *Server) handleDescribeTransactions(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	known := map[string]broker.TxnDescription{}
	for _, d := range s.b.Transactions() {
		known[d.TransactionalID] = d
	}
	for _, id := range req.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID = id
		d, ok := known[id]
		if !ok {
			ts.ErrorCode, ts.ProducerID, ts.ProducerEpoch, ts.StartTimestamp = kerr.TransactionalIDNotFound.Code, -1, -1, -1
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		ts.State, ts.TimeoutMillis = d.State.String(), int32(d.Timeout.Milliseconds())
		ts.ProducerID, ts.ProducerEpoch, ts.StartTimestamp = d.ProducerID, d.ProducerEpoch, -1
		if !d.Start.IsZero() {
			ts.StartTimestamp = d.Start.UnixMilli()
		}
		for _, tp := range d.Partitions {
			if n := len(ts.Topics); n == 0 || ts.Topics[n-1].Topic != tp.Topic {
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic = tp.Topic
				ts.Topics = append(ts.Topics, t)
			}
			t := &ts.Topics[len(ts.Topics)-1]
			t.Partitions = append(t.Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return now(resp), nil
}
