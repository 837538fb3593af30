package broker

import (
	"context"
	"errors"
	"time"
)

// sweepTxns aborts transactions open past their timeout and retries the
// completion of prepared ones, until the broker stops.
func (b *Broker) sweepTxns() {
	defer b.wg.Done()
	t := time.NewTicker(txnSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.SweepTxns()
		}
	}
}

// SweepTxns runs one pass of the timeout sweeper now.
func (b *Broker) SweepTxns() {
	now := b.txns.now().UnixMilli()
	ctx, cancel := context.WithTimeout(context.Background(), txnCompleteTimeout)
	defer cancel()
	for _, e := range b.txns.entries() {
		b.txns.mu.Lock()
		v := e.view
		b.txns.mu.Unlock()
		expired := v.State == TxnOngoing && now-v.StartMs > v.TimeoutMs
		idle := (v.State == TxnEmpty || v.State == TxnCompleteCommit || v.State == TxnCompleteAbort) &&
			now-v.UpdateMs > txnIDExpiration.Milliseconds()
		if !expired && !idle && v.State != TxnPrepareCommit && v.State != TxnPrepareAbort {
			continue
		}
		e.mu.Lock()
		var err error
		switch {
		case e.expired || !e.exists:
		case idle && e.rec.UpdateMs == v.UpdateMs && e.rec.State == v.State:
			err = b.expireTxnID(ctx, e)
		case e.rec.State == TxnOngoing && now-e.rec.StartMs > e.rec.TimeoutMs:
			b.logger.Info("aborting a transaction past its timeout", "transactional_id", e.rec.ID,
				"producer_id", e.rec.ProducerID, "epoch", e.rec.Epoch, "timeout_ms", e.rec.TimeoutMs)
			err = b.abortBumped(ctx, e)
		case e.rec.State == TxnPrepareCommit || e.rec.State == TxnPrepareAbort:
			err = b.completeTxn(ctx, e)
		}
		id := e.rec.ID
		e.mu.Unlock()
		if err != nil && !errors.Is(err, ErrNotCoordinator) {
			b.logger.Warn("completing a transaction", "transactional_id", id, "err", err)
		}
	}
}

// expireTxnID forgets an idle transactional id: a tombstone in the log,
// then the entry goes. Its next InitProducerId starts afresh, with a new
// producer id. Callers hold e.mu.
func (b *Broker) expireTxnID(ctx context.Context, e *txnEntry) error {
	rec := e.rec
	rec.Expired = true
	if err := b.txns.persist(ctx, e, rec); err != nil {
		return err
	}
	e.expired = true
	b.txns.mu.Lock()
	if b.txns.txns[rec.ID] == e {
		delete(b.txns.txns, rec.ID)
	}
	b.txns.mu.Unlock()
	b.logger.Debug("forgot an idle transactional id", "transactional_id", rec.ID)
	return nil
}
