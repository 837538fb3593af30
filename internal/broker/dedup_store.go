package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/wharfmq/wharf/internal/storage"
)

// The deduplication window of a durable queue or exchange is kept in a log
// of its own under <data-dir>/dedup: q-<queue id> for a queue,
// x-<hash of vhost and name> for an exchange. Each accepted id whose
// message was stored durably is one single-record batch: the key is the
// message id, the timestamp when it was accepted. Records are written in
// acceptance order, so the ids still in the window are a suffix of the
// log: replaying it from its start and trimming to the window as it goes
// rebuilds the window, and the log start is moved up to the oldest id
// still in it (whole segments below are deleted) as ids leave.
//
// A new exchange's log is created empty (whatever a deleted exchange of the
// same name left is removed first); deleting the queue or exchange deletes
// its log, and on start the logs of objects that no longer exist are
// removed.

const (
	dedupDirName = "dedup"
	// dedupCompactEvery is how many records the live start must have
	// moved past the log start before the start is moved (it costs an
	// fsync of the start file).
	dedupCompactEvery = 4096
	// maxMessageIDLen is the longest message_id (an AMQP short string).
	maxMessageIDLen = 255
)

type dedupStore struct {
	log *storage.Log

	mu    sync.Mutex // one compaction at a time
	start int64      // the log start as last set
}

// dedupLogConfig sizes a deduplication log: no retention (the window moves
// the start) and small segments, so that ids leaving the window free space
// soon.
func dedupLogConfig(defaults storage.LogConfig) storage.LogConfig {
	cfg := defaults
	cfg.RetentionAge = 0
	cfg.RetentionBytes = -1
	cfg.SegmentBytes = min(cfg.SegmentBytes, 4<<20)
	cfg.MaxBatchBytes = 1 << 20
	cfg.TimestampType = storage.CreateTime
	return cfg
}

func (b *Broker) dedupDir(name string) string {
	return filepath.Join(b.opts.DataDir, dedupDirName, name)
}

// dedupQueueDirName names a queue's deduplication log.
func dedupQueueDirName(id QueueID) string { return "q-" + id.String() }

// dedupExchangeDirName names an exchange's deduplication log.
func dedupExchangeDirName(vhost, name string) string {
	h := sha256.Sum256([]byte(vhost + "\x00" + name))
	return "x-" + hex.EncodeToString(h[:16])
}

// openDedupWindow opens the window of an object with deduplication
// arguments cfg: in memory only unless durable, else replayed from its
// log in dir.
func (b *Broker) openDedupWindow(cfg dedupConfig, durable bool, dirName, what string) (*dedupWindow, error) {
	if !durable {
		return newDedupWindow(cfg, nil, b.opts.Now, b.logger, what), nil
	}
	dir := b.dedupDir(dirName)
	l, err := storage.Open(dir, dedupLogConfig(b.opts.LogDefaults), b.storageOptions())
	if err != nil {
		return nil, fmt.Errorf("opening the deduplication log of %s: %w", what, err)
	}
	start, _, _ := l.Offsets()
	s := &dedupStore{log: l, start: start}
	w := newDedupWindow(cfg, s, b.opts.Now, b.logger, what)
	n, err := s.replay(w)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("replaying the deduplication log of %s: %w", what, err)
	}
	if n > 0 {
		b.logger.Info("deduplication window recovered", "of", what, "records", n, "ids", w.len())
	}
	return w, nil
}

// replay restores every record of the log into w and returns how many
// there were.
func (s *dedupStore) replay(w *dedupWindow) (int, error) {
	start, hw, _ := s.log.Offsets()
	var buf []byte
	n := 0
	for from := start; from < hw; {
		res, err := s.log.Read(from, 1<<20)
		if err != nil {
			return n, err
		}
		if res.Len() == 0 {
			res.Release()
			break
		}
		buf, err = res.AppendTo(buf[:0])
		res.Release()
		if err != nil {
			return n, err
		}
		next := from
		err = decodeDedupRecords(buf, from, func(id string, at, offset int64) {
			w.restore(id, at, offset)
			n++
		}, &next)
		if err != nil {
			return n, err
		}
		if next <= from {
			break
		}
		from = next
	}
	return n, nil
}

// decodeDedupRecords decodes the deduplication records of buf (whole
// batches) at or after offset from, calling fn for each, and sets *next to
// the offset after the last batch.
func decodeDedupRecords(buf []byte, from int64, fn func(id string, at, offset int64), next *int64) error {
	var err error
	serr := storage.SplitBatches(buf, func(b storage.Batch) bool {
		derr := storage.DecodeRecords(b, func(r storage.Record) bool {
			if r.Offset < from {
				return true
			}
			id, at, rerr := decodeDedupRecord(r)
			if rerr != nil {
				err = fmt.Errorf("record at offset %d: %w", r.Offset, rerr)
				return false
			}
			fn(id, at, r.Offset)
			return true
		})
		if derr != nil && err == nil {
			err = derr
		}
		if err != nil {
			return false
		}
		*next = b.NextOffset()
		return true
	})
	if err == nil {
		err = serr
	}
	return err
}

// encodeDedupRecord encodes one accepted id as a single-record batch.
func encodeDedupRecord(dst []byte, id string, at int64) []byte {
	return storage.AppendBatch(dst, storage.BatchSpec{
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Timestamp: at, Key: []byte(id), Value: []byte{}}},
	})
}

// decodeDedupRecord reads an accepted id and when it was accepted.
func decodeDedupRecord(r storage.Record) (id string, at int64, err error) {
	if len(r.Key) == 0 || len(r.Key) > maxMessageIDLen {
		return "", 0, fmt.Errorf("message id of %d bytes", len(r.Key))
	}
	return string(r.Key), r.Timestamp, nil
}

// append writes an accepted id; the Pending tells when it is durable.
func (s *dedupStore) append(id string, at int64) (int64, storage.Pending, error) {
	res, p, err := s.log.AppendAsync(encodeDedupRecord(nil, id, at))
	if err != nil {
		return -1, storage.Pending{}, err
	}
	return res.BaseOffset, p, nil
}

// compact moves the log start up to live, the lowest offset of an id still
// in the window, once it is far enough ahead; never past the high
// watermark. Only writeLoop calls it, so nothing is appended meanwhile.
func (s *dedupStore) compact(live int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if live-s.start < dedupCompactEvery {
		return
	}
	_, hw, _ := s.log.Offsets()
	start, err := s.log.SetStartOffset(min(live, hw))
	if err == nil {
		s.start = start
	}
}

func (s *dedupStore) close() error { return s.log.Close() }

func (s *dedupStore) delete() error { return s.log.Delete() }

// dedupExchanges holds the deduplication windows of exchanges, by vhost and
// name. The map is guarded by amqpRuntime.mu, like queueRuntimes.
type dedupExchanges struct {
	byName map[ExchangeName]*dedupWindow
}

// dedupChanges lists what a plan does to exchange windows.
type dedupChanges struct {
	created map[ExchangeName]*dedupWindow
	removed []ExchangeName
}

// prepareDedup opens the windows of the deduplicating exchanges a plan
// declares and lists those it deletes. A new durable exchange's log starts
// empty. Callers hold b.mu.
func (b *Broker) prepareDedup(p *amqpPlan) (dedupChanges, error) {
	var dc dedupChanges
	for _, st := range p.steps {
		switch {
		case st.DeclareExchange != nil:
			d := st.DeclareExchange
			cfg, ok := dedupConfigOf(d.Arguments)
			if !ok {
				continue
			}
			name := dedupExchangeDirName(d.Vhost, d.Name)
			if d.Durable {
				if err := b.opts.FS.RemoveAll(b.dedupDir(name)); err != nil {
					b.retireDedup(dc.created, true)
					return dedupChanges{}, fmt.Errorf("removing old deduplication state: %w", err)
				}
			}
			w, err := b.openDedupWindow(cfg, d.Durable, name, rs("exchange", d.Vhost, d.Name))
			if err != nil {
				b.retireDedup(dc.created, true)
				return dedupChanges{}, err
			}
			if dc.created == nil {
				dc.created = map[ExchangeName]*dedupWindow{}
			}
			dc.created[ExchangeName{Vhost: d.Vhost, Name: d.Name}] = w
		case st.DeleteExchange != nil:
			dc.removed = append(dc.removed, *st.DeleteExchange)
		case st.DeleteVhost != nil:
			if vh, ok := b.state.amqp.vhosts[st.DeleteVhost.Name]; ok {
				for name := range vh.exchanges {
					dc.removed = append(dc.removed, ExchangeName{Vhost: st.DeleteVhost.Name, Name: name})
				}
			}
		}
	}
	return dc, nil
}

// swapDedup installs and removes exchange windows; callers hold
// amqpRuntime.mu for writing. It returns the removed ones.
func (b *Broker) swapDedup(dc dedupChanges) map[ExchangeName]*dedupWindow {
	if b.dedupX.byName == nil {
		b.dedupX.byName = map[ExchangeName]*dedupWindow{}
	}
	var gone map[ExchangeName]*dedupWindow
	for _, n := range dc.removed {
		if w, ok := b.dedupX.byName[n]; ok {
			if gone == nil {
				gone = map[ExchangeName]*dedupWindow{}
			}
			gone[n] = w
			delete(b.dedupX.byName, n)
		}
	}
	for n, w := range dc.created {
		b.dedupX.byName[n] = w
	}
	return gone
}

// retireDedup closes windows; deleted removes their logs.
func (b *Broker) retireDedup(ws map[ExchangeName]*dedupWindow, deleted bool) {
	for n, w := range ws {
		if err := w.close(deleted); err != nil {
			b.logger.Warn("closing a deduplication window", "vhost", n.Vhost, "exchange", n.Name, "err", err)
		}
	}
}

// openDedup opens the windows of the replayed state's deduplicating
// exchanges (queues open theirs with their runtimes) and removes the logs
// of objects that no longer exist. It runs after openQueues.
func (b *Broker) openDedup() error {
	b.dedupX.byName = map[ExchangeName]*dedupWindow{}
	dir := filepath.Join(b.opts.DataDir, dedupDirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	known := map[string]bool{}
	for vname, vh := range b.state.amqp.vhosts {
		for name, x := range vh.exchanges {
			cfg, ok := dedupConfigOf(x.def.Arguments)
			if !ok {
				continue
			}
			dn := dedupExchangeDirName(vname, name)
			w, err := b.openDedupWindow(cfg, x.def.Durable, dn, rs("exchange", vname, name))
			if err != nil {
				return err
			}
			b.dedupX.byName[ExchangeName{Vhost: vname, Name: name}] = w
			if x.def.Durable {
				known[dn] = true
			}
		}
	}
	recovered := map[*Queue][]*queued{}
	for _, q := range b.queues.byID {
		if q.dedup != nil && q.dedup.store != nil {
			known[dedupQueueDirName(q.ID)] = true
		}
		if len(q.recovered) > 0 {
			recovered[q] = q.recovered
		}
		q.recovered = nil
	}
	if err := b.rememberExchangeIDs(recovered); err != nil { // dedup_recover.go
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, e := range entries {
		if !known[e.Name()] {
			b.logger.Info("removing the deduplication state of a deleted object", "dir", e.Name())
			if err := b.opts.FS.RemoveAll(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				b.logger.Warn("removing deduplication state", "dir", e.Name(), "err", err)
			}
		}
	}
	return nil
}

// closeDedup closes every exchange window.
func (b *Broker) closeDedup() {
	b.amqp.mu.Lock()
	ws := b.dedupX.byName
	b.dedupX.byName = nil
	b.amqp.mu.Unlock()
	b.retireDedup(ws, false)
}
