package broker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/wharfmq/wharf/internal/storage"
)

// The transaction log: opening and replaying it, persisting changes, and
// compacting it (see txn.go for its invariants).

// openTxns opens the transaction log, replays it and completes what it
// left half done; Open then starts the timeout sweeper (sweepTxns).
// Partitions and groups are open already.
func (b *Broker) openTxns() error {
	lc := storage.DefaultLogConfig()
	lc.Fsync = storage.FsyncAlways
	lc.RetentionAge = 0
	lc.RetentionBytes = -1
	lc.SegmentAge = 1 << 62
	lc.SegmentBytes = txnCompactBytes
	lc.MaxBatchBytes = 256 << 20
	l, err := storage.Open(filepath.Join(b.opts.DataDir, "txn"), lc, b.storageOptions())
	if err != nil {
		return fmt.Errorf("opening the transaction log: %w", err)
	}
	c := &txnCoordinator{log: l, now: b.opts.Now, logger: b.logger, txns: map[string]*txnEntry{}, compactBytes: txnCompactBytes}
	b.txns = c
	if err := c.replay(); err != nil {
		return err
	}
	c.sinceSnapshot.Store(c.log.Size())
	if err := c.compact(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), txnCompleteTimeout)
	defer cancel()
	for _, e := range c.entries() {
		e.mu.Lock()
		switch e.rec.State {
		case TxnPrepareCommit, TxnPrepareAbort:
			if err := b.completeTxn(ctx, e); err != nil {
				b.logger.Warn("completing a transaction found prepared on open; the sweeper retries", "transactional_id", e.rec.ID, "err", err)
			}
		case TxnOngoing:
			for _, p := range e.rec.Partitions {
				if part, err := b.Partition(p.Topic, p.Partition); err == nil {
					part.addToTxn(e.rec.ProducerID, e.rec.Epoch)
				}
			}
		}
		e.mu.Unlock()
	}
	return nil
}

// replay reads every record of the log; the last one of each id wins.
func (c *txnCoordinator) replay() error {
	var batches, bad int
	start, _, _ := c.log.Offsets()
	err := scanLog(c.log, start, func(b storage.Batch) error {
		batches++
		return storage.DecodeRecords(b, func(r storage.Record) bool {
			rec, err := decodeTxnRecord(r.Value)
			if err != nil {
				bad++
				return true
			}
			if rec.Expired {
				delete(c.txns, rec.ID)
				return true
			}
			e := c.txns[rec.ID]
			if e == nil {
				e = &txnEntry{}
				c.txns[rec.ID] = e
			}
			e.rec, e.view, e.exists = rec, rec, true
			return true
		})
	})
	if err != nil {
		return fmt.Errorf("replaying the transaction log: %w", err)
	}
	if bad > 0 {
		c.logger.Warn("skipped malformed transaction records", "records", bad)
	}
	c.logger.Debug("transaction log replayed", "batches", batches, "transactional_ids", len(c.txns))
	return nil
}

// scanLog reads every batch of a log from offset to its high watermark.
func scanLog(l *storage.Log, offset int64, fn func(storage.Batch) error) error {
	for {
		res, err := l.Read(offset, 1<<20)
		if err != nil {
			return err
		}
		if res.Len() == 0 {
			res.Release()
			return nil
		}
		buf, err := res.AppendTo(nil)
		res.Release()
		if err != nil {
			return err
		}
		var ferr error
		if err := storage.SplitBatches(buf, func(b storage.Batch) bool {
			ferr = fn(b)
			offset = b.NextOffset()
			return ferr == nil
		}); err != nil {
			return err
		}
		if ferr != nil {
			return ferr
		}
	}
}

// compact appends a snapshot of every transactional id's state and moves
// the log start to it, once the bytes written since the last snapshot
// exceed both txnCompactBytes and twice that snapshot: replaying from
// either start gives the same state. No change is in flight meanwhile.
func (c *txnCoordinator) compact() error {
	if n := c.sinceSnapshot.Load(); n < c.compactBytes || n < 2*c.liveBytes.Load() {
		return nil
	}
	c.appendMu.Lock()
	defer c.appendMu.Unlock()
	now := c.now().UnixMilli()
	var recs []storage.Record
	c.mu.Lock()
	for _, e := range c.txns {
		if e.view.ID != "" && !e.view.Expired {
			recs = append(recs, storage.Record{Timestamp: now, Key: []byte(e.view.ID), Value: encodeTxnRecord(e.view)})
		}
	}
	c.mu.Unlock()
	_, _, end := c.log.Offsets()
	var size int64
	if len(recs) > 0 {
		batch := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
		ctx, cancel := context.WithTimeout(context.Background(), txnCompleteTimeout)
		defer cancel()
		res, err := c.log.Append(ctx, batch)
		if err != nil {
			return fmt.Errorf("compacting the transaction log: %w", err)
		}
		end, size = res.BaseOffset, int64(len(batch))
	}
	if _, err := c.log.SetStartOffset(end); err != nil {
		return fmt.Errorf("compacting the transaction log: %w", err)
	}
	c.sinceSnapshot.Store(0)
	c.liveBytes.Store(size)
	return nil
}

// maybeCompact compacts in the background when the log has grown enough,
// one compaction at a time.
func (c *txnCoordinator) maybeCompact() {
	if n := c.sinceSnapshot.Load(); n < c.compactBytes || n < 2*c.liveBytes.Load() || !c.compacting.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.compacting.Store(false)
		if err := c.compact(); err != nil && !errors.Is(err, storage.ErrClosed) {
			c.logger.Warn("compacting the transaction log", "err", err)
		}
	}()
}

// entries returns every transactional id's entry.
func (c *txnCoordinator) entries() []*txnEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*txnEntry, 0, len(c.txns))
	for _, e := range c.txns {
		out = append(out, e)
	}
	return out
}

// entry returns the entry of a transactional id, creating an empty one
// when create is set; nil otherwise.
func (c *txnCoordinator) entry(id string, create bool) (*txnEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrNotCoordinator
	}
	e := c.txns[id]
	if e == nil && create {
		e = &txnEntry{}
		c.txns[id] = e
	}
	return e, nil
}

// persist makes rec the entry's durable state. Callers hold e.mu.
func (c *txnCoordinator) persist(ctx context.Context, e *txnEntry, rec txnRecord) error {
	rec.UpdateMs = c.now().UnixMilli()
	batch := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Timestamp: rec.UpdateMs, Key: []byte(rec.ID), Value: encodeTxnRecord(rec)}}})
	c.appendMu.RLock()
	// The wait outlives the request: once appended, the record becomes
	// durable or is cut off whatever the client does, and the state in
	// memory must follow the log.
	if _, err := c.log.Append(context.WithoutCancel(ctx), batch); err != nil {
		c.appendMu.RUnlock()
		return fmt.Errorf("writing to the transaction log: %w", err)
	}
	e.rec, e.exists = rec, true
	c.mu.Lock()
	e.view = rec
	c.mu.Unlock()
	c.appendMu.RUnlock()
	c.sinceSnapshot.Add(int64(len(batch)))
	c.maybeCompact()
	return nil
}

func (c *txnCoordinator) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	err := c.log.Close()
	c.wg.Wait()
	return err
}
