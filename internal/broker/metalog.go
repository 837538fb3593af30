package broker

import (
	"context"
	"fmt"

	"github.com/wharfmq/wharf/internal/storage"
)

// commandLog is where commands become durable and ordered before they are
// applied. On one node it is a local log; in a cluster a Raft log will take
// its place behind the same calls.
type commandLog interface {
	// Append makes c durable after every earlier command.
	Append(ctx context.Context, c Command) error
	// Replay calls fn for every durable command in order.
	Replay(fn func(Command)) error
	Close() error
}

// localCommandLog keeps commands in a storage log of its own, one batch per
// command, whose single record has the command kind as key and its JSON as
// value. It is always fsynced before a command is acknowledged and is never
// subject to retention.
type localCommandLog struct {
	log *storage.Log
	now func() int64
}

func openLocalCommandLog(dir string, opts storage.Options) (*localCommandLog, error) {
	cfg := storage.DefaultLogConfig()
	cfg.Fsync = storage.FsyncAlways
	cfg.RetentionAge = 0
	cfg.RetentionBytes = -1
	cfg.SegmentAge = 1 << 62
	cfg.MaxBatchBytes = 64 << 20
	l, err := storage.Open(dir, cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the metadata log: %w", err)
	}
	now := opts.Now
	return &localCommandLog{log: l, now: func() int64 { return now().UnixMilli() }}, nil
}

func (m *localCommandLog) Append(ctx context.Context, c Command) error {
	value, err := encodeCommand(c)
	if err != nil {
		return err
	}
	batch := storage.AppendBatch(nil, storage.BatchSpec{
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Timestamp: m.now(), Key: []byte(c.kind()), Value: value}},
	})
	if _, err := m.log.Append(ctx, batch); err != nil {
		return fmt.Errorf("writing %s to the metadata log: %w", c.kind(), err)
	}
	return nil
}

func (m *localCommandLog) Replay(fn func(Command)) error {
	start, hw, _ := m.log.Offsets()
	var buf []byte
	for offset := start; offset < hw; {
		res, err := m.log.Read(offset, 1<<20)
		if err != nil {
			return fmt.Errorf("reading the metadata log at %d: %w", offset, err)
		}
		buf, err = res.AppendTo(buf[:0])
		res.Release()
		if err != nil {
			return fmt.Errorf("reading the metadata log at %d: %w", offset, err)
		}
		var derr error
		err = storage.SplitBatches(buf, func(b storage.Batch) bool {
			var cerr error // a command that does not decode stops the replay
			derr = storage.DecodeRecords(b, func(r storage.Record) bool {
				var c Command
				if c, cerr = decodeCommand(r.Value); cerr != nil {
					return false
				}
				fn(c)
				return true
			})
			if derr == nil {
				derr = cerr
			}
			offset = b.NextOffset()
			return derr == nil
		})
		if err == nil {
			err = derr
		}
		if err != nil {
			return fmt.Errorf("metadata log at offset %d: %w", offset, err)
		}
	}
	return nil
}

func (m *localCommandLog) Close() error { return m.log.Close() }
