package bench

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestRunAMQP runs a small workload against the AMQP broker named by
// WHARF_TEST_AMQP_URL (any AMQP 0-9-1 broker), or an embedded Wharf, and
// checks the generator's accounting: everything confirmed is received once.
func TestRunAMQP(t *testing.T) {
	url := os.Getenv("WHARF_TEST_AMQP_URL")
	if url == "" {
		target, err := StartEmbeddedWharfAMQP(t.TempDir(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer target.Close()
		url = target.Addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunAMQP(ctx, "test", AMQPOptions{
		URL: url, Queue: "bench-test", MessageSize: 64, Count: 2000, Persistent: true, Confirms: true,
		ConfirmWindow: 64, ManualAck: true, Prefetch: 64, Producers: 1, Consumers: 1, Drain: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 2000 || res.Received != 2000 || res.Lost != 0 || res.Duplicates != 0 {
		t.Fatalf("result %+v: want 2000 confirmed and received once each", res)
	}
}

// BenchmarkAMQPEmbedded measures 1 KiB persistent messages with confirms
// and manual acks through an embedded Wharf, one producer, one consumer.
func BenchmarkAMQPEmbedded(b *testing.B) {
	target, err := StartEmbeddedWharfAMQP(b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close()
	b.SetBytes(1024)
	b.ResetTimer()
	res, err := RunAMQP(context.Background(), target.Name, AMQPOptions{
		URL: target.Addr, Queue: "bench", MessageSize: 1024, Count: int64(b.N), Persistent: true, Confirms: true,
		ConfirmWindow: 256, ManualAck: true, Prefetch: 256, Producers: 1, Consumers: 1, Drain: time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	if res.Lost != 0 || res.Duplicates != 0 {
		b.Fatalf("lost %d, duplicates %d", res.Lost, res.Duplicates)
	}
	b.ReportMetric(res.MsgsPerSec, "msgs/s")
	b.ReportMetric(res.P99Ms, "p99-ms")
}

// BenchmarkAMQPEmbeddedTransient measures 16-byte transient messages with
// auto-ack and no confirms through an embedded Wharf.
func BenchmarkAMQPEmbeddedTransient(b *testing.B) {
	target, err := StartEmbeddedWharfAMQP(b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close()
	b.SetBytes(16)
	b.ResetTimer()
	res, err := RunAMQP(context.Background(), target.Name, AMQPOptions{
		URL: target.Addr, Queue: "bench", MessageSize: 16, Count: int64(b.N),
		Producers: 1, Consumers: 1, Drain: time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	if res.Lost != 0 || res.Duplicates != 0 {
		b.Fatalf("lost %d, duplicates %d", res.Lost, res.Duplicates)
	}
	b.ReportMetric(res.MsgsPerSec, "msgs/s")
	b.ReportMetric(res.P99Ms, "p99-ms")
}
