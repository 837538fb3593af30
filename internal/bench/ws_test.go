package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestRunWSEmbedded runs each mode with 20 connections and 10 messages
// against an embedded Wharf and checks the generator's accounting: every
// accepted message reaches every receiver it was meant for, once.
func TestRunWSEmbedded(t *testing.T) {
	target, err := StartEmbeddedWharfWS(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	for _, tc := range []struct {
		mode     string
		groups   int
		expected int64
	}{
		{WSModeGroup, 1, 200},
		{WSModeGroup, 3, 4*7 + 3*7 + 3*6}, // groups of 7, 7 and 6 receivers get messages 0, 3, 6, 9; 1, 4, 7; 2, 5, 8
		{WSModeBroadcast, 0, 200},
		{WSModeTopic, 0, 200},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := RunWS(ctx, target.Name, WSOptions{
				URL: target.URL, User: "guest", Password: "guest", Mode: tc.mode, Connections: 20, Groups: tc.groups,
				Count: 10, Window: 4, Drain: 30 * time.Second, DialConcurrency: 8,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Connected != 20 || res.Sent != 10 || res.Acked != 10 || res.SendErrors != 0 {
				t.Fatalf("result %+v: want 20 connected, 10 sent and acknowledged", res)
			}
			if res.Expected != tc.expected || res.Received != tc.expected || res.Lost != 0 || res.Duplicates != 0 || res.Disconnected != 0 {
				t.Fatalf("result %+v: want %d deliveries, all received once", res, tc.expected)
			}
			if tc.mode == WSModeGroup && res.ServerDelivered != tc.expected {
				t.Fatalf("server reported %d deliveries, want %d", res.ServerDelivered, tc.expected)
			}
			if res.MaxMs < res.P99Ms || res.P99Ms < res.P50Ms {
				t.Fatalf("latency percentiles out of order: %+v", res)
			}
		})
	}
}

// TestRunWSIdle connects and disconnects without messages.
func TestRunWSIdle(t *testing.T) {
	target, err := StartEmbeddedWharfWS(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	res, err := RunWS(context.Background(), target.Name, WSOptions{
		URL: target.URL, User: "guest", Password: "guest", Mode: WSModeIdle, Connections: 20, DialConcurrency: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 20 || res.ConnectErrors != 0 || res.Sent != 0 {
		t.Fatalf("result %+v: want 20 connected and nothing sent", res)
	}
}

// TestRunWSRefused checks that wrong credentials fail the run.
func TestRunWSRefused(t *testing.T) {
	target, err := StartEmbeddedWharfWS(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	_, err = RunWS(context.Background(), target.Name, WSOptions{
		URL: target.URL, User: "guest", Password: "wrong", Mode: WSModeGroup, Connections: 2, Count: 1,
	})
	if err == nil {
		t.Fatal("a run with a wrong password succeeded")
	}
}

func TestParseDelivery(t *testing.T) {
	for _, tc := range []struct {
		frame          string
		run, seq, sent int64
		ok             bool
	}{
		{`{"type":"message","from":"guest","group":"bench-1-0","data":{"r":12,"s":3,"t":1700000000000000000}}`, 12, 3, 1700000000000000000, true},
		{`{"type":"message","from":"guest","broadcast":true,"data":{"r":1,"s":0,"t":5}}`, 1, 0, 5, true},
		{`{"type":"record","sub":"sub-1","topic":"t","partition":0,"offset":7,"timestamp":1,"value":"4 5 6"}`, 4, 5, 6, true},
		{`{"type":"presence","group":"g","event":"join","client":"guest"}`, 0, 0, 0, false},
		{`{"type":"message","from":"x","data":"hello"}`, 0, 0, 0, false},
		{`{"type":"record","sub":"sub-1","topic":"t","partition":0,"offset":7,"timestamp":1,"value":"create"}`, 0, 0, 0, false},
	} {
		run, seq, sent, ok := parseDelivery([]byte(tc.frame))
		if run != tc.run || seq != tc.seq || sent != tc.sent || ok != tc.ok {
			t.Errorf("%s: got %d %d %d %v", tc.frame, run, seq, sent, ok)
		}
	}
}

func TestWSHist(t *testing.T) {
	for _, us := range []int64{0, 1, 1023, 1024, 1500, 4096, 123456, 1 << 30} {
		i := wsBucket(us)
		lo := wsBucketValue(i)
		if lo > us || (us >= 1024 && float64(us-lo) > float64(us)/500) || (us < 1024 && lo != us) {
			t.Errorf("%d µs: bucket %d starts at %d", us, i, lo)
		}
		if i+1 < wsHistBuckets && wsBucketValue(i+1) <= us {
			t.Errorf("%d µs: the next bucket starts at %d", us, wsBucketValue(i+1))
		}
	}
	var h wsHist
	for i := range 1000 {
		h.record(i, time.Duration(i+1)*time.Millisecond)
	}
	n, p50, p99, maxMs := h.percentiles()
	if n != 1000 || p50 < 499 || p50 > 502 || p99 < 988 || p99 > 992 || maxMs != 1000 {
		t.Fatalf("n %d p50 %v p99 %v max %v", n, p50, p99, maxMs)
	}
}

// BenchmarkWSGroupEmbedded sends b.N messages as fast as a window of 64
// allows to one group of 100 connections on an embedded Wharf and reports
// deliveries per second and the p99 fan-out latency.
func BenchmarkWSGroupEmbedded(b *testing.B) {
	benchmarkWS(b, WSModeGroup, 100)
}

// BenchmarkWSTopicEmbedded is BenchmarkWSGroupEmbedded with 100 topic
// subscribers.
func BenchmarkWSTopicEmbedded(b *testing.B) {
	benchmarkWS(b, WSModeTopic, 100)
}

func benchmarkWS(b *testing.B, mode string, conns int) {
	target, err := StartEmbeddedWharfWS(b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close()
	b.ResetTimer()
	res, err := RunWS(context.Background(), target.Name, WSOptions{
		URL: target.URL, User: "guest", Password: "guest", Mode: mode, Connections: conns, Groups: 1,
		Count: int64(b.N), Window: 64, Drain: time.Minute, DialConcurrency: 32,
	})
	if err != nil {
		b.Fatal(err)
	}
	if res.Lost != 0 || res.Duplicates != 0 {
		b.Fatalf("lost %d, duplicates %d", res.Lost, res.Duplicates)
	}
	b.ReportMetric(res.DeliveredPerSec, "deliveries/s")
	b.ReportMetric(res.P99Ms, "p99-ms")
}
