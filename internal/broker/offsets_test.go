package broker

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

func openTestStore(t *testing.T, dir string, cfg offsetStoreConfig) *offsetStore {
	t.Helper()
	s, err := openOffsetStore(dir, storage.Options{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustWrite(t *testing.T, s *offsetStore, ops ...offsetOp) {
	t.Helper()
	p, err := s.write(ops)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// storeState is everything a store holds, for comparisons.
func storeState(s *offsetStore) map[string]storedGroup {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]storedGroup{}
	for name, g := range s.groups {
		c := storedGroup{offsets: maps.Clone(g.offsets)}
		if g.meta != nil {
			m := *g.meta
			c.meta = &m
		}
		out[name] = c
	}
	return out
}

func commitOp(group string, n int, round int) offsetOp {
	op := offsetOp{kind: opCommit, group: group, commits: map[TopicPartition]storedOffset{}}
	for p := range n {
		op.commits[TopicPartition{Topic: "orders", Partition: int32(p)}] = storedOffset{
			Offset: int64(round*100 + p), LeaderEpoch: int32(round), Metadata: fmt.Sprintf("r%d", round), CommitMs: int64(1000 + round),
		}
	}
	return op
}

func TestOffsetStoreCompactsAndReplays(t *testing.T) {
	dir := t.TempDir()
	cfg := offsetStoreConfig{segmentBytes: 4 << 10, compactBytes: 8 << 10}
	s := openTestStore(t, dir, cfg)
	for round := range 200 {
		mustWrite(t, s, commitOp(fmt.Sprintf("g%d", round%5), 8, round))
		if round%20 == 0 {
			mustWrite(t, s, offsetOp{kind: opGroupMeta, group: "g1", meta: groupMeta{ProtocolType: "consumer", Generation: int32(round)}})
		}
	}
	mustWrite(t, s, offsetOp{kind: opDeleteGroup, group: "g4"}, offsetOp{kind: opDelete, group: "g3", deletes: []TopicPartition{{"orders", 0}, {"orders", 7}}})
	want := storeState(s)
	if _, ok := want["g4"]; ok || len(want["g3"].offsets) != 6 || want["g1"].meta.Generation != 180 {
		t.Fatalf("state: %+v", want)
	}
	// Compaction runs in the background once the log outgrows the state.
	eventuallyTrue(t, "a compaction", func() bool {
		s.appendMu.Lock()
		defer s.appendMu.Unlock()
		start, _, _ := s.log.Offsets()
		return start > 0 && !s.compacting
	})
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	segments, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(segments) > 6 {
		t.Errorf("%d segments left after compaction", len(segments))
	}

	s = openTestStore(t, dir, cfg)
	defer s.close()
	if got := storeState(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopening:\n got %+v\nwant %+v", got, want)
	}
}

// TestOffsetStoreSnapshotIsIdempotent checks the invariant that makes a
// crash during compaction harmless: a snapshot appended to the log changes
// nothing, whether the log start has moved to it or not.
func TestOffsetStoreSnapshotIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, defaultOffsetStoreConfig())
	for round := range 10 {
		mustWrite(t, s, commitOp("a", 3, round), commitOp("b", 2, round))
	}
	mustWrite(t, s, offsetOp{kind: opDeleteGroup, group: "b"}, offsetOp{kind: opGroupMeta, group: "c", meta: groupMeta{Generation: 3}})
	want := storeState(s)

	// A crash after the snapshot was written but before the start moved.
	s.mu.RLock()
	var buf []byte
	for _, b := range s.snapshotBatches() {
		buf = append(buf, b...)
	}
	s.mu.RUnlock()
	res, err := s.log.Append(context.Background(), buf)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, commitOp("a", 1, 99))
	want["a"].offsets[TopicPartition{"orders", 0}] = commitOp("a", 1, 99).commits[TopicPartition{"orders", 0}]
	s.close()
	s = openTestStore(t, dir, defaultOffsetStoreConfig())
	if got := storeState(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed with the snapshot:\n got %+v\nwant %+v", got, want)
	}
	// And after the start moved to it.
	if _, err := s.log.SetStartOffset(res.BaseOffset); err != nil {
		t.Fatal(err)
	}
	s.close()
	s = openTestStore(t, dir, defaultOffsetStoreConfig())
	defer s.close()
	if got := storeState(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed from the snapshot:\n got %+v\nwant %+v", got, want)
	}
}

func TestOffsetStoreEmptySnapshotDropsEverything(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, offsetStoreConfig{segmentBytes: 1 << 10, compactBytes: 2 << 10})
	for round := range 50 {
		mustWrite(t, s, commitOp("g", 4, round))
	}
	mustWrite(t, s, offsetOp{kind: opDeleteGroup, group: "g"})
	if err := s.snapshot(); err != nil {
		t.Fatal(err)
	}
	start, hw, _ := s.log.Offsets()
	if start != hw {
		t.Fatalf("start %d, high watermark %d", start, hw)
	}
	s.close()
	s = openTestStore(t, dir, defaultOffsetStoreConfig())
	defer s.close()
	if got := storeState(s); len(got) != 0 {
		t.Fatalf("state %+v", got)
	}
}

func TestOffsetStoreRejectsCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, defaultOffsetStoreConfig())
	batch := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Timestamp: 1, Value: []byte{offsetsFormat, byte(opCommit), 200}}}})
	if _, err := s.log.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	s.close()
	if _, err := openOffsetStore(dir, storage.Options{}, defaultOffsetStoreConfig()); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("opening a store with a corrupt record: %v", err)
	}
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func FuzzDecodeOffsetOp(f *testing.F) {
	for _, op := range []offsetOp{
		commitOp("group", 3, 7),
		{kind: opDelete, group: "g", deletes: []TopicPartition{{"a", 1}, {"b", -2}, {"a", 0}}},
		{kind: opDeleteGroup, group: ""},
		{kind: opGroupMeta, group: "g", meta: groupMeta{ProtocolType: "consumer", Generation: -5}},
	} {
		f.Add(encodeOffsetOp(nil, op))
	}
	f.Add([]byte{})
	f.Add([]byte{offsetsFormat, byte(opCommit), 1, 'g', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := decodeOffsetOp(b)
		if err != nil {
			return
		}
		// A value that decodes encodes back to one that decodes to the
		// same operation.
		again, err := decodeOffsetOp(encodeOffsetOp(nil, op))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", op, err)
		}
		if !reflect.DeepEqual(normalizeOp(op), normalizeOp(again)) {
			t.Fatalf("round trip changed %+v into %+v", op, again)
		}
	})
}

// normalizeOp sorts what encoding sorts and collapses duplicates, so that
// equal operations compare equal.
func normalizeOp(op offsetOp) offsetOp {
	if op.deletes != nil {
		set := map[TopicPartition]bool{}
		for _, tp := range op.deletes {
			set[tp] = true
		}
		op.deletes = nil
		for tp := range set {
			op.deletes = append(op.deletes, tp)
		}
		sort.Slice(op.deletes, func(i, j int) bool {
			a, b := op.deletes[i], op.deletes[j]
			return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
		})
	}
	return op
}
