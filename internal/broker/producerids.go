package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
)

// producerIDBlockSize is how many producer ids one AllocateProducerIDs
// command reserves: one durable metadata write per that many producers.
const producerIDBlockSize = 1000

// maxEpochBumps bounds the epoch bumps remembered to recognise retries and
// stale epochs; past it they are forgotten and the next bump is trusted.
const maxEpochBumps = 100_000

// ErrProducerIDsExhausted is returned when no producer id is left to hand
// out.
var ErrProducerIDsExhausted = errors.New("producer ids exhausted")

// AllocateProducerIDs reserves the producer ids [First, First+Count). First
// is the state's next free id when the command is made, so ids handed out
// from a block are never handed out again, across restarts and (later)
// across nodes.
type AllocateProducerIDs struct {
	First int64 `json:"first"`
	Count int64 `json:"count"`
}

// applyAllocateProducerIDs applies an AllocateProducerIDs command.
func (s *State) applyAllocateProducerIDs(a *AllocateProducerIDs) error {
	if a.First != s.nextProducerID || a.Count < 1 || a.First > math.MaxInt64-a.Count {
		return fmt.Errorf("producer id block [%d, %d+%d) does not start at the next free id %d",
			a.First, a.First, a.Count, s.nextProducerID)
	}
	s.nextProducerID = a.First + a.Count
	return nil
}

// NextProducerID is the first producer id no block has reserved yet.
func (s *State) NextProducerID() int64 { return s.nextProducerID }

// producerIDs hands out producer ids from the block this process reserved
// last, and remembers the epoch bumps it made. Lock order: producerIDs.mu
// before Broker.mu.
type producerIDs struct {
	mu     sync.Mutex
	loaded bool
	next   int64 // the ids [next, limit) are reserved and unused
	limit  int64
	issued int64 // every id below it may have been handed out
	bumps  map[int64]epochBump
}

// epochBump is the last epoch bump of one producer id: from the epoch the
// producer had to the one it was given.
type epochBump struct{ from, to int16 }

// InitProducerID gives an idempotent producer its id and epoch. Without a
// previous id (id < 0) it is a new id with epoch 0. With the id and epoch
// the producer had (Kafka's KIP-360), it is the same id with the next
// epoch, which fences batches of the old epoch on every partition; a retry
// of that request gets the same answer. A new id with epoch 0 is given
// instead when the old epoch is exhausted, when the id was never handed out
// by this cluster, or when the epoch is not the producer's latest (another
// incarnation moved past it).
func (b *Broker) InitProducerID(ctx context.Context, id int64, epoch int16) (int64, int16, error) {
	p := &b.pids
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := b.loadProducerIDs(); err != nil {
		return -1, -1, err
	}
	if id >= 0 && id < p.issued && epoch >= 0 {
		bump, known := p.bumps[id]
		switch {
		case known && epoch == bump.from:
			return id, bump.to, nil
		case known && epoch != bump.to:
		case epoch >= math.MaxInt16-1:
		default:
			if p.bumps == nil || len(p.bumps) >= maxEpochBumps {
				p.bumps = map[int64]epochBump{}
			}
			p.bumps[id] = epochBump{from: epoch, to: epoch + 1}
			return id, epoch + 1, nil
		}
	}
	if p.next == p.limit {
		if err := b.reserveProducerIDs(ctx); err != nil {
			return -1, -1, err
		}
	}
	id = p.next
	p.next++
	return id, 0, nil
}

// loadProducerIDs reads where the reserved ids end on first use. Callers
// hold b.pids.mu.
func (b *Broker) loadProducerIDs() error {
	p := &b.pids
	if p.loaded {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	p.issued = b.state.NextProducerID()
	p.next, p.limit = p.issued, p.issued
	p.loaded = true
	return nil
}

// reserveProducerIDs makes a new block of ids durable. Callers hold
// b.pids.mu.
func (b *Broker) reserveProducerIDs(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.state.NextProducerID()
	if first > math.MaxInt64-producerIDBlockSize {
		return ErrProducerIDsExhausted
	}
	if err := b.commit(ctx, Command{AllocateProducerIDs: &AllocateProducerIDs{First: first, Count: producerIDBlockSize}}); err != nil {
		return fmt.Errorf("reserving producer ids: %w", err)
	}
	p := &b.pids
	p.next, p.limit = first, first+producerIDBlockSize
	p.issued = p.limit
	return nil
}
