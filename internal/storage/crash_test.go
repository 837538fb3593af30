//go:build unix

package storage

// The crash test kills a process that is appending to a log with SIGKILL at
// a random moment, then recovers the log and checks that every append the
// process acknowledged is there, byte for byte. SIGKILL tests process
// crashes: the kernel's page cache survives them, so written but unsynced
// data is still there afterwards. Power loss, which loses the page cache, is
// covered by the fsync-before-acknowledge discipline (an append returns only
// after an fsync that covers it; see the fault tests), not by this test.

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	crashDirEnv   = "WHARF_CRASH_CHILD_DIR"
	crashRoundEnv = "WHARF_CRASH_CHILD_ROUND"
	crashWriters  = 4
)

func crashConfig(c *LogConfig) {
	c.SegmentBytes = 64 << 10
	c.IndexIntervalBytes = 4096
	c.Fsync = FsyncAlways
}

// crashBatch is the deterministic batch that appender a appends as its
// seq-th batch in round r; the parent regenerates it to check the log.
func crashBatch(r, a, seq int) []byte {
	seed := r*1_000_003 + a*10_007 + seq
	n := 1 + seq%7
	size := 50 + (seed*131)%1500
	recs := make([]Record, n)
	for i := range recs {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(seed + i*7 + j)
		}
		recs[i] = Record{Timestamp: int64(seed) + int64(i), Key: fmt.Appendf(nil, "%d/%d/%d/%d", r, a, seq, i), Value: v}
	}
	return AppendBatch(nil, BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
}

// TestCrashChild is the process the crash test kills. It appends from
// several goroutines and prints "ack appender seq baseOffset" after each
// successful append, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrash")
	}
	round, err := strconv.Atoi(os.Getenv(crashRoundEnv))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, func() LogConfig { c := DefaultLogConfig(); crashConfig(&c); return c }(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
		out.Flush() // one write(2) per line
	}
	say("ready\n")
	// The parent kills us long before this; the bound only keeps an
	// orphaned child from running forever.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for a := range crashWriters {
		wg.Go(func() {
			for seq := 0; ctx.Err() == nil; seq++ {
				res, err := l.Append(ctx, crashBatch(round, a, seq))
				if err != nil {
					say("error %d %d %v\n", a, seq, err)
					return
				}
				say("ack %d %d %d\n", a, seq, res.BaseOffset)
			}
		})
	}
	wg.Wait()
}

type crashAck struct {
	round, appender, seq int
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	rounds := 15
	if longTests() {
		rounds = 200
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[int64]crashAck{} // base offset -> the batch acknowledged there
	var kills, totalAcks int
	var present int
	for round := range rounds {
		lines := runCrashChild(t, exe, dir, round, time.Duration(1+rng.IntN(200))*time.Millisecond)
		kills++
		for _, line := range lines {
			f := strings.Fields(line)
			switch {
			case len(f) == 4 && f[0] == "ack":
				a, _ := strconv.Atoi(f[1])
				seq, _ := strconv.Atoi(f[2])
				base, err := strconv.ParseInt(f[3], 10, 64)
				if err != nil {
					t.Fatalf("round %d: bad line %q", round, line)
				}
				if prev, dup := acked[base]; dup {
					t.Fatalf("round %d: offset %d acknowledged twice: %+v and appender %d seq %d", round, base, prev, a, seq)
				}
				acked[base] = crashAck{round, a, seq}
				totalAcks++
			case len(f) >= 1 && f[0] == "error":
				t.Fatalf("round %d: child append failed: %s", round, line)
			}
		}
		present = checkCrashLog(t, dir, round, acked)
	}
	t.Logf("%d kills, %d appends acknowledged, %d batches present at the end", kills, totalAcks, present)
}

// runCrashChild starts the child on dir, waits until it has opened the log,
// lets it append for delay, kills it, and returns the lines it printed in
// full.
func runCrashChild(t *testing.T, exe, dir string, round int, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	linesCh := make(chan []string, 1)
	go func() {
		var lines []string
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // a partial last line was never acknowledged
			}
			if line == "ready\n" {
				close(ready)
				continue
			}
			lines = append(lines, line)
		}
		linesCh <- lines
	}()
	var lines []string
	select {
	case <-ready:
		time.Sleep(delay)
	case lines = <-linesCh:
		cmd.Wait()
		t.Fatalf("round %d: child exited before opening the log:\n%s", round, strings.Join(lines, ""))
	case <-time.After(time.Minute):
		t.Errorf("round %d: child did not open the log in time", round)
	}
	kerr := cmd.Process.Signal(syscall.SIGKILL)
	lines = <-linesCh
	if kerr != nil {
		cmd.Wait()
		t.Fatalf("round %d: kill: %v; child output:\n%s", round, kerr, strings.Join(lines, ""))
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child did not die of SIGKILL: %v; output:\n%s", round, err, strings.Join(lines, ""))
	}
	if t.Failed() {
		t.FailNow()
	}
	return lines
}

// checkCrashLog recovers the log and checks it against every acknowledged
// append so far; it returns the number of batches present.
func checkCrashLog(t *testing.T, dir string, round int, acked map[int64]crashAck) int {
	t.Helper()
	l := openTestLog(t, dir, crashConfig, Options{})
	defer l.Close()
	start, hw, end := l.Offsets()
	if start != 0 || hw != end {
		t.Fatalf("round %d: offsets %d/%d/%d after recovery", round, start, hw, end)
	}
	batches := readAll(t, l, 0)
	byBase := map[int64]Batch{}
	var next int64
	for _, b := range batches {
		if _, err := CheckBatch(b, 0); err != nil {
			t.Fatalf("round %d: stored batch at %d: %v", round, b.BaseOffset(), err)
		}
		if b.BaseOffset() != next {
			t.Fatalf("round %d: batch at %d follows offset %d: offsets are not dense", round, b.BaseOffset(), next)
		}
		next = b.NextOffset()
		byBase[b.BaseOffset()] = b
	}
	if next != end {
		t.Fatalf("round %d: batches end at %d, log end is %d", round, next, end)
	}
	for base, a := range acked {
		want := crashBatch(a.round, a.appender, a.seq)
		Batch(want).setBaseOffset(base)
		got, ok := byBase[base]
		if !ok {
			t.Fatalf("round %d: acknowledged batch (round %d, appender %d, seq %d) at offset %d is missing", round, a.round, a.appender, a.seq, base)
		}
		if string(got) != string(want) {
			t.Fatalf("round %d: acknowledged batch (round %d, appender %d, seq %d) at offset %d differs", round, a.round, a.appender, a.seq, base)
		}
	}
	return len(batches)
}
