package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRunAMQP runs a small workload against the AMQP broker named by
// WHARF_TEST_AMQP_URL (any AMQP 0-9-1 broker) and checks the generator's
// accounting: everything confirmed is received once. Without the variable
// there is no broker to measure and it skips.
func TestRunAMQP(t *testing.T) {
	url := os.Getenv("WHARF_TEST_AMQP_URL")
	if url == "" {
		t.Skip("WHARF_TEST_AMQP_URL is not set")
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
