package broker

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfmq/wharf/internal/storage"
)

// TestUndecodableCommandStopsOpen: a command the broker cannot decode must
// fail the open rather than be skipped, or the state would silently differ
// from the one that was acknowledged.
func TestUndecodableCommandStopsOpen(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	if _, err := b.CreateTopic(context.Background(), "kept", 1, nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	l, err := storage.Open(filepath.Join(dir, "meta"), storage.DefaultLogConfig(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Key: []byte("create_topic"), Value: []byte("{not json")}}})
	if _, err := l.Append(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := Open(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "metadata") {
		t.Fatalf("open with an undecodable command: %v, want a metadata log error", err)
	}
}
