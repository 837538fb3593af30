package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestRunKafkaEmbedded runs a small workload end to end against an
// embedded Wharf and checks the generator's own accounting: everything
// acknowledged is received once.
func TestRunKafkaEmbedded(t *testing.T) {
	target, err := StartEmbeddedWharf(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunKafka(ctx, target.Name, KafkaOptions{
		Brokers: []string{target.Addr}, Topic: "bench-test", Partitions: 3, RecordSize: 256,
		Count: 5000, Acks: "all", Compression: "none", Producers: 2, Drain: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 5000 || res.Received != 5000 || res.Lost != 0 || res.Duplicates != 0 || res.ProduceErrors != 0 {
		t.Fatalf("result %+v: want 5000 acknowledged and received once each", res)
	}
	if res.P50Ms <= 0 || res.MaxMs < res.P99Ms || res.P99Ms < res.P50Ms {
		t.Fatalf("latency percentiles out of order: %+v", res)
	}
}
