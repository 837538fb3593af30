package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// Fetch (key 1): stored batches as they are, from the batch holding each
// fetch offset, up to the partition's max bytes and the response's max
// bytes, itself at most FetchMaxBytes whatever the request says (at least
// one batch for the first partition with data, so consumers always
// progress). When fewer than min bytes are ready the
// request waits on the partitions' logs, woken by new data, until max wait.
// Records are never null: an empty partition gets empty bytes.
//
// Fetch sessions (v7+) are not kept: every response carries session id 0,
// which tells the client to keep sending full fetch requests. A fetch at an
// offset between the high watermark and the log end (written, not yet
// durable) waits; past the log end or below the start it is
// OFFSET_OUT_OF_RANGE. Batches are always RecordBatch v2, even to v0-v3
// fetchers, which expect the older formats.
//
// Versions: v3 response max bytes; v4 isolation level and last stable
// offset; v5 log start offset; v7 sessions; v9 current leader epoch; v11
// rack; v12 flexible; v13 topic ids.
//
// With isolation level read_committed (v4+) a partition's data stops at
// its last stable offset, and the response lists the aborted transactions
// whose records the fetched range may hold, so the client drops them;
// transaction markers are served with the data, as Kafka serves them, and
// clients skip them.
func (s *Server) handleFetch(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	if req.SessionID != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return now(resp), nil
	}
	// The records are read into pooled buffers, returned once the
	// response is written.
	var borrowed [][]byte
	var held int64
	return reply{
		finish: func(ctx context.Context) kmsg.Response {
			var resp kmsg.Response
			resp, borrowed = s.fetch(ctx, r, req)
			for _, b := range borrowed {
				held += int64(cap(b))
			}
			s.buffered.Add(held)
			return resp
		},
		release: func() {
			s.buffered.Add(-held)
			for _, b := range borrowed {
				s.bufs.put(b)
			}
		},
	}, nil
}

type fetchTarget struct {
	t, p   int
	part   *broker.Partition
	offset int64
	max    int32
	stable bool // read committed: wait for the last stable offset
}

func (s *Server) fetch(ctx context.Context, r *request, req *kmsg.FetchRequest) (kmsg.Response, [][]byte) {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	// A shutdown ends the long poll: the fetch answers with what it has.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		resp, targets, size, bufs := s.fetchOnce(r, req)
		if size >= min(int(req.MinBytes), int(s.opts.FetchMaxBytes)) || !time.Now().Before(deadline) || len(targets) == 0 {
			return resp, bufs
		}
		for _, b := range bufs {
			s.bufs.put(b)
		}
		if !waitAny(ctx, deadline, targets) {
			resp, _, _, bufs = s.fetchOnce(r, req)
			return resp, bufs
		}
	}
}

// waitAny waits until one target has data past its offset, the deadline
// passes or ctx ends; it reports whether data arrived.
func waitAny(ctx context.Context, deadline time.Time, targets []fetchTarget) bool {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	woke := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait := t.part.Wait
			if t.stable {
				wait = t.part.WaitStable
			}
			if wait(ctx, t.offset) == nil {
				select {
				case woke <- struct{}{}:
				default:
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	select {
	case <-woke:
		return true
	default:
		return false
	}
}

// fetchOnce builds a response from what is readable now. It returns the
// partitions that could wait for more data, the bytes gathered, and the
// pooled buffers the response's records live in.
func (s *Server) fetchOnce(r *request, req *kmsg.FetchRequest) (*kmsg.FetchResponse, []fetchTarget, int, [][]byte) {
	var bufs [][]byte
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	remaining := int(s.opts.FetchMaxBytes)
	if r.version >= 3 && req.MaxBytes > 0 {
		remaining = min(remaining, int(req.MaxBytes))
	}
	var targets []fetchTarget
	total := 0
	committed := r.version >= 4 && req.IsolationLevel == 1
	for ti, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, known := rt.Topic, true
		if r.version >= 13 {
			name, known = s.b.TopicByID(rt.TopicID)
		}
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			sp.RecordBatches = []byte{}
			if !known {
				sp.ErrorCode = kerr.UnknownTopicID.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			part, err := s.b.Partition(name, rp.Partition)
			if err != nil {
				sp.ErrorCode = errorCode(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if rp.CurrentLeaderEpoch > 0 {
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			start, hw, end := part.Offsets()
			lso := part.LastStable()
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, lso, start
			if rp.FetchOffset < start || rp.FetchOffset > end {
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			// Wait for data beyond what is readable now.
			visible := hw
			if committed {
				visible = lso
			}
			targets = append(targets, fetchTarget{t: ti, p: pi, part: part, offset: max(visible, rp.FetchOffset), stable: committed})
			switch {
			case rp.FetchOffset >= visible:
			case remaining > 0:
				max := min(int(rp.PartitionMaxBytes), remaining)
				if total > 0 && max <= 0 {
					break
				}
				read := part.Read
				if committed {
					read = part.ReadStable
				}
				res, err := read(rp.FetchOffset, max)
				if err == nil {
					sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.LastStable, res.LogStartOffset
					if committed && res.Len() > 0 {
						for _, a := range part.AbortedTxns(rp.FetchOffset, res.LastStable) {
							at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
							at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
							sp.AbortedTransactions = append(sp.AbortedTransactions, at)
						}
					}
					buf := s.bufs.get(res.Len())[:0]
					sp.RecordBatches, err = res.AppendTo(buf)
					res.Release()
					bufs = append(bufs, buf)
				}
				if err != nil {
					sp.ErrorCode = errorCode(err)
					sp.RecordBatches = []byte{}
				}
				total += len(sp.RecordBatches)
				remaining -= len(sp.RecordBatches)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, targets, total, bufs
}
