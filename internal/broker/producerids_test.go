package broker

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/wharfmq/wharf/internal/storage"
)

func TestProducerIDsAreUniqueAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := openBroker(t, dir, nil)
	seen := map[int64]bool{}
	for range producerIDBlockSize + 10 { // two blocks
		id, epoch, err := b.InitProducerID(ctx, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] || epoch != 0 {
			t.Fatalf("id %d epoch %d (seen before: %v)", id, epoch, seen[id])
		}
		seen[id] = true
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openBroker(t, dir, nil)
	defer b.Close()
	id, _, err := b.InitProducerID(ctx, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if id < 2*producerIDBlockSize {
		t.Fatalf("first id after a restart is %d, inside a block reserved before it", id)
	}
	if _, _, err := b.InitProducerID(ctx, -1, -1); err != nil {
		t.Fatal(err)
	}
}

func TestAllocateProducerIDsApply(t *testing.T) {
	s := NewState()
	if err := s.Apply(Command{AllocateProducerIDs: &AllocateProducerIDs{First: 0, Count: 10}}); err != nil {
		t.Fatal(err)
	}
	// A block that does not start at the next free id (made concurrently
	// against an older state) is refused, and changes nothing.
	for _, a := range []AllocateProducerIDs{{First: 0, Count: 10}, {First: 11, Count: 10}, {First: 10, Count: 0}, {First: 10, Count: math.MaxInt64}} {
		if err := s.Apply(Command{AllocateProducerIDs: &a}); err == nil {
			t.Fatalf("block %+v applied", a)
		}
	}
	if s.NextProducerID() != 10 {
		t.Fatalf("next id %d", s.NextProducerID())
	}
	if c := (Command{AllocateProducerIDs: &AllocateProducerIDs{First: 10, Count: 5}}); c.kind() != "allocate_producer_ids" {
		t.Fatalf("kind %q", c.kind())
	}
	b, err := encodeCommand(Command{AllocateProducerIDs: &AllocateProducerIDs{First: 10, Count: 5}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCommand(b)
	if err != nil || c.AllocateProducerIDs == nil || *c.AllocateProducerIDs != (AllocateProducerIDs{First: 10, Count: 5}) {
		t.Fatalf("round trip: %+v %v", c, err)
	}
}

func TestInitProducerIDEpochs(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, t.TempDir(), nil)
	defer b.Close()
	id, _, err := b.InitProducerID(ctx, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	step := func(reqEpoch int16, wantSame bool, wantEpoch int16) {
		t.Helper()
		got, epoch, err := b.InitProducerID(ctx, id, reqEpoch)
		if err != nil {
			t.Fatal(err)
		}
		if (got == id) != wantSame || epoch != wantEpoch {
			t.Fatalf("from epoch %d: %d/%d, want same id %v epoch %d", reqEpoch, got, epoch, wantSame, wantEpoch)
		}
	}
	step(0, true, 1)
	step(0, true, 1) // a retry
	step(1, true, 2)
	step(0, false, 0) // stale: a new id
	step(5, false, 0) // never given: a new id
	step(2, true, 3)
	if got, epoch, _ := b.InitProducerID(ctx, id+100_000, 0); got == id+100_000 || epoch != 0 {
		t.Fatalf("an id never handed out was bumped: %d/%d", got, epoch)
	}
	other, _, _ := b.InitProducerID(ctx, -1, -1)
	if got, epoch, _ := b.InitProducerID(ctx, other, math.MaxInt16-1); got == other || epoch != 0 {
		t.Fatalf("exhausted epoch: %d/%d", got, epoch)
	}
	if got, epoch, _ := b.InitProducerID(ctx, other, math.MaxInt16-2); got != other || epoch != math.MaxInt16-1 {
		t.Fatalf("last epoch: %d/%d", got, epoch)
	}
}

func idempotentBatch(pid int64, epoch int16, seq int32, n int) []byte {
	recs := make([]storage.Record, n)
	for i := range recs {
		recs[i] = storage.Record{Timestamp: 1, Value: []byte{byte(i)}}
	}
	return storage.AppendBatch(nil, storage.BatchSpec{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Records: recs})
}

func TestLastSequenceWraps(t *testing.T) {
	for _, c := range []struct{ first, delta, want int32 }{
		{0, 0, 0},
		{5, 3, 8},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 3, 1},
	} {
		if got := lastSequence(c.first, c.delta); got != c.want {
			t.Errorf("lastSequence(%d, %d) = %d, want %d", c.first, c.delta, got, c.want)
		}
	}
}

func TestProducerChecks(t *testing.T) {
	ctx := context.Background()
	b := openBroker(t, t.TempDir(), nil)
	defer b.Close()
	if _, err := b.CreateTopic(ctx, "p", 1, nil); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("p", 0)
	produce := func(batch []byte) (AppendResult, error) {
		res, pending, err := p.Produce(batch)
		if err == nil {
			err = pending.Wait(ctx)
		}
		return res, err
	}
	// The window holds five batches: the oldest falls out of it.
	var batches [][]byte
	for i := range 7 {
		batch := idempotentBatch(7, 0, int32(i*2), 2)
		batches = append(batches, batch)
		if _, err := produce(batch); err != nil {
			t.Fatal(err)
		}
	}
	for i, batch := range batches {
		res, err := produce(batch)
		switch {
		case i < 2 && !errors.Is(err, ErrOutOfOrderSequence):
			t.Fatalf("batch %d outside the window: %v", i, err)
		case i >= 2 && (err != nil || res.BaseOffset != int64(2*i)):
			t.Fatalf("retry of batch %d: %v at %d", i, err, res.BaseOffset)
		}
	}
	// A batch overlapping the last one without matching it.
	if _, err := produce(idempotentBatch(7, 0, 13, 2)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("overlapping batch: %v", err)
	}
	// A new producer may start anywhere; an unknown epoch of a known one
	// must start at 0.
	if _, err := produce(idempotentBatch(8, 3, 40, 1)); err != nil {
		t.Fatalf("new producer: %v", err)
	}
	if _, err := produce(idempotentBatch(8, 4, 1, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch past 0: %v", err)
	}
	if _, err := produce(idempotentBatch(8, 2, 41, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	// Two batches in one idempotent append.
	two := append(idempotentBatch(9, 0, 0, 1), idempotentBatch(9, 0, 1, 1)...)
	if _, err := produce(two); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("two batches: %v", err)
	}
}
