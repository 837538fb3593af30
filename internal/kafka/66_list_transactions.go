package kafka

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// ListTransactions (key 66): the transactional ids this coordinator
// knows, filtered by state names (a name that is not a state is listed in
// unknown_state_filters), by producer ids, and (v1+) to transactions open
// for longer than a duration.
//
// Versions: v1 duration filter. v2 (a transactional id pattern) is not
// served.
func (s *Server) handleListTransactions(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	for st := broker.TxnEmpty; st <= broker.TxnCompleteAbort; st++ {
		states[st.String()] = true
	}
	for _, f := range req.StateFilters {
		if !states[f] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	nowMs := time.Now().UnixMilli()
	for _, d := range s.b.Transactions() {
		if len(req.StateFilters) > 0 && !slices.Contains(req.StateFilters, d.State.String()) {
			continue
		}
		if len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, d.ProducerID) {
			continue
		}
		if r.version >= 1 && req.DurationFilterMillis >= 0 && (d.Start.IsZero() || nowMs-d.Start.UnixMilli() <= req.DurationFilterMillis) {
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = d.TransactionalID, d.ProducerID, d.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return now(resp), nil
}
