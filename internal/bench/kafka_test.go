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

// BenchmarkKafkaEmbedded produces and consumes b.N 1 KiB records with
// acks=all through an embedded Wharf, end to end, and reports records/s.
func BenchmarkKafkaEmbedded(b *testing.B) {
	target, err := StartEmbeddedWharf(b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close()
	b.SetBytes(1024)
	b.ResetTimer()
	res, err := RunKafka(context.Background(), target.Name, KafkaOptions{
		Brokers: []string{target.Addr}, Topic: "bench", Partitions: 6, RecordSize: 1024,
		Count: int64(b.N), Acks: "all", Compression: "none", Producers: 1, Drain: time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	if res.Lost != 0 || res.Duplicates != 0 {
		b.Fatalf("lost %d, duplicates %d", res.Lost, res.Duplicates)
	}
	b.ReportMetric(res.MsgsPerSec, "records/s")
	b.ReportMetric(res.P99Ms, "p99-ms")
}
