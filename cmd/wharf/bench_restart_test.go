//go:build unix

package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/bench"
	"github.com/wharfmq/wharf/internal/buildinfo"
)

// TestBenchRestart runs `wharf bench restart` with tiny sizes: the data
// goes in through both protocols, every restart serves it again, a start
// after SIGTERM is clean and one after SIGKILL recovers, and the data dir
// is gone afterwards.
func TestBenchRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Setenv(asWharfEnv, "1") // the children: this binary as wharf (see TestMain)
	work := t.TempDir()
	root := newRootCmd(buildinfo.Info{}, noEnv)
	var stdout, stderr strings.Builder
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"bench", "restart", "--size", "256KiB", "--topics", "2", "--queues", "2",
		"--message-size", "512", "--runs", "2", "--work-dir", work})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("bench restart: %v\n%s", err, stderr.String())
	}
	var res bench.RestartResult
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if res.Records != 2*128 || res.Messages != 2*128 {
		t.Errorf("wrote %d records and %d messages, want 256 of each", res.Records, res.Messages)
	}
	if res.DataBytes < 256<<10 {
		t.Errorf("data dir held %d bytes, want at least the 256 KiB written", res.DataBytes)
	}
	for kind, k := range map[string]bench.RestartKind{"clean": res.Clean, "unclean": res.Unclean} {
		if len(k.Runs) != 2 {
			t.Fatalf("%s: %d runs, want 2", kind, len(k.Runs))
		}
		for i, r := range k.Runs {
			if r.ReadyMs <= 0 || r.FirstFetchMs < r.ReadyMs || r.FirstGetMs < r.ReadyMs {
				t.Errorf("%s run %d: ready %.1f ms, first fetch %.1f ms, first get %.1f ms", kind, i, r.ReadyMs, r.FirstFetchMs, r.FirstGetMs)
			}
		}
	}
	for i, r := range res.Clean.Runs {
		if r.Recovery != "clean start" || r.ScannedBytes != 0 || r.StopMs <= 0 {
			t.Errorf("start %d after SIGTERM: %+v, want a clean start that read nothing", i, r)
		}
	}
	for i, r := range res.Unclean.Runs {
		if r.Recovery != "recovered an unclean shutdown" || r.ScannedBytes == 0 {
			t.Errorf("start %d after SIGKILL: %+v, want the active segments recovered", i, r)
		}
	}
	if left, err := os.ReadDir(work); err != nil || len(left) != 0 {
		t.Errorf("work dir after the bench: %v, %v; want it empty", left, err)
	}
}
