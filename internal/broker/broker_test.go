package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

func openBroker(t *testing.T, dir string, mutate func(*Options)) *Broker {
	t.Helper()
	opts := Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig()}
	if mutate != nil {
		mutate(&opts)
	}
	b, err := Open(opts)
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	return b
}

func batch(ts int64, values ...string) []byte {
	recs := make([]storage.Record, len(values))
	for i, v := range values {
		recs[i] = storage.Record{Timestamp: ts, Value: []byte(v)}
	}
	return storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
}

func TestTopicLifecycleSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := openBroker(t, dir, nil)
	info, err := b.CreateTopic(ctx, "orders", 3, map[string]string{"retention.ms": "60000"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Partitions != 3 {
		t.Fatalf("partitions %d", info.Partitions)
	}
	if _, err := b.CreateTopic(ctx, "orders", 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	gone, err := b.CreateTopic(ctx, "gone", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := b.TopicByID(gone.ID); !ok || name != "gone" {
		t.Fatalf("TopicByID of a new topic: %q, %v", name, ok)
	}
	p, err := b.Partition("orders", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(ctx, batch(5, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := b.CreatePartitions(ctx, "orders", 5); err != nil {
		t.Fatal(err)
	}
	if err := b.SetTopicConfig(ctx, "orders", map[string]string{"retention.ms": "120000", "segment.bytes": "100000"}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.TopicByID(gone.ID); ok {
		t.Fatal("TopicByID still finds a deleted topic")
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "gone-0")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("deleted topic's data remains: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openBroker(t, dir, nil)
	defer b.Close()
	topics := b.Topics()
	if len(topics) != 1 || topics[0].Name != "orders" || topics[0].Partitions != 5 || topics[0].ID != info.ID {
		t.Fatalf("after restart: %+v", topics)
	}
	values := map[string]string{}
	for _, c := range topics[0].Configs {
		if !c.IsDefault {
			values[c.Name] = c.Value
		}
	}
	if len(values) != 2 || values["retention.ms"] != "120000" || values["segment.bytes"] != "100000" {
		t.Fatalf("explicit configs after restart: %v", values)
	}
	p, err = b.Partition("orders", 2)
	if err != nil {
		t.Fatal(err)
	}
	if start, hw, _ := p.Offsets(); start != 0 || hw != 2 {
		t.Fatalf("partition offsets after restart %d..%d", start, hw)
	}
	if name, ok := b.TopicByID(info.ID); !ok || name != "orders" {
		t.Fatalf("TopicByID after restart: %q, %v", name, ok)
	}
	if _, err := b.Partition("orders", 5); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("partition 5: %v", err)
	}
	if _, err := b.Partition("gone", 0); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("deleted topic: %v", err)
	}
}

func TestCreateTopicValidation(t *testing.T) {
	b := openBroker(t, t.TempDir(), nil)
	defer b.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		partitions int32
		configs    map[string]string
		want       error
	}{
		{"", 1, nil, ErrInvalidTopic},
		{"..", 1, nil, ErrInvalidTopic},
		{"has space", 1, nil, ErrInvalidTopic},
		{"slash/name", 1, nil, ErrInvalidTopic},
		{string(make([]byte, 250)), 1, nil, ErrInvalidTopic},
		{"ok", 0, nil, ErrInvalidPartitions},
		{"ok", 1, map[string]string{"no.such.config": "1"}, ErrInvalidConfig},
		{"ok", 1, map[string]string{"retention.ms": "soon"}, ErrInvalidConfig},
		{"ok", 1, map[string]string{"cleanup.policy": "compact"}, ErrInvalidConfig},
		{"ok", 1, map[string]string{"segment.bytes": "10"}, ErrInvalidConfig},
		{"ok", 1, map[string]string{"message.timestamp.type": "Now"}, ErrInvalidConfig},
		{"ok", 1, map[string]string{"wharf.fsync.policy": "sometimes"}, ErrInvalidConfig},
	} {
		if _, err := b.CreateTopic(ctx, tc.name, tc.partitions, tc.configs); !errors.Is(err, tc.want) {
			t.Errorf("CreateTopic(%q, %d, %v) = %v, want %v", tc.name, tc.partitions, tc.configs, err, tc.want)
		}
	}
	if len(b.Topics()) != 0 {
		t.Fatalf("rejected creates left topics: %+v", b.Topics())
	}
	if _, err := b.CreateTopic(ctx, "a.b_c-D9", 1, map[string]string{"message.timestamp.type": "LogAppendTime", "wharf.fsync.policy": "never"}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreatePartitions(ctx, "a.b_c-D9", 1); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrinking partitions: %v", err)
	}
	if err := b.SetTopicConfig(ctx, "missing", nil); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("config of a missing topic: %v", err)
	}
}

func TestDataDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	if _, err := Open(Options{DataDir: dir}); err == nil {
		t.Fatal("a second broker opened the same data dir")
	}
	b.Close()
	b = openBroker(t, dir, nil)
	b.Close()
}

func TestRecreatedTopicStartsEmpty(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := openBroker(t, dir, nil)
	defer b.Close()
	b.CreateTopic(ctx, "t", 1, nil)
	p, _ := b.Partition("t", 0)
	p.Append(ctx, batch(1, "old"))
	// Simulate a deletion interrupted after the command was durable: the
	// directory survives, but a new topic of the same name must not see it.
	stale := filepath.Join(t.TempDir(), "stale")
	os.CopyFS(stale, os.DirFS(b.partitionDir("t", 0)))
	if err := b.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	os.CopyFS(b.partitionDir("t", 0), os.DirFS(stale))
	if _, err := b.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	p, _ = b.Partition("t", 0)
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Fatalf("recreated topic has %d records of its predecessor", hw)
	}
}

func TestRetentionRunsInBackground(t *testing.T) {
	now := time.UnixMilli(1_000_000_000)
	b := openBroker(t, t.TempDir(), func(o *Options) {
		o.Now = func() time.Time { return now }
		o.RetentionCheckInterval = time.Hour // driven by hand below
	})
	defer b.Close()
	ctx := context.Background()
	b.CreateTopic(ctx, "t", 1, map[string]string{"segment.bytes": "200", "retention.ms": "1000"})
	p, _ := b.Partition("t", 0)
	for i := range 10 {
		p.Append(ctx, batch(now.UnixMilli()-int64(10-i)*1000, "0123456789012345678901234567890123456789"))
	}
	// Sealed segments become deletable once the syncer has persisted them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.ApplyRetention()
		if start, _, _ := p.Offsets(); start >= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if start, _, _ := p.Offsets(); start < 8 {
		t.Fatalf("log start %d after retention; records older than 1s should be gone", start)
	}
}
