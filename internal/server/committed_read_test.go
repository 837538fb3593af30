package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGatewayReadsCommitted: the gateway's topic faces read as
// read_committed consumers: an aborted transaction's records and the
// markers never show, an open transaction's records show once it commits.
func TestGatewayReadsCommitted(t *testing.T) {
	httpAddr, kafkaAddr, _ := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.TransactionalID("gw-committed"), kgo.DefaultProduceTopic("txn-gw"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produceIn := func(value string, end kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	produceIn("aborted", kgo.TryAbort)
	produceIn("committed", kgo.TryCommit)
	// An open transaction: not shown until it commits.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("pending")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	fetch := func() []string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/api/v1/topics/txn-gw/partitions/0/records?offset=0", nil)
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var out struct {
			Records []struct {
				Value string `json:"value"`
			} `json:"records"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
			t.Fatalf("fetch: %d %s", resp.StatusCode, body)
		}
		var values []string
		for _, r := range out.Records {
			values = append(values, r.Value)
		}
		return values
	}
	if got := fetch(); len(got) != 1 || got[0] != "committed" {
		t.Fatalf("with a transaction open: %q, want only the committed record", got)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := fetch(); len(got) != 2 || got[0] != "committed" || got[1] != "pending" {
		t.Fatalf("after the commit: %q", got)
	}
}
