package storage

import (
	"errors"
	"syscall"
	"testing"
)

// TestPendingPoll: Poll tells, without waiting, what Wait would: not done
// while the covering fsync has not run, done and nil once it has, done with
// ErrStorage once a failed fsync discarded the append. The zero Pending
// (nothing to wait for) is done.
func TestPendingPoll(t *testing.T) {
	if done, err := (Pending{}).Poll(); !done || err != nil {
		t.Fatalf("zero Pending: %v, %v; want done", done, err)
	}
	fs := newFaultFS()
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.Fsync = FsyncAlways }, Options{FS: fs})
	defer l.Close()
	mustAppend(t, l, faultBatch(0, 100))

	hold, held := make(chan struct{}), make(chan struct{}, 1)
	fs.setOnSync(func(string) {
		select {
		case held <- struct{}{}:
		default:
		}
		<-hold
	})
	_, p, err := l.AppendAsync(faultBatch(1, 100))
	if err != nil {
		t.Fatal(err)
	}
	<-held // the syncer is inside the fsync that will cover p
	if done, err := p.Poll(); done || err != nil {
		t.Fatalf("before its fsync: %v, %v; want not done", done, err)
	}
	fs.failSyncs(syscall.EIO, 1)
	close(hold)
	if err := p.Wait(appendCtx(t)); !errors.Is(err, ErrStorage) {
		t.Fatalf("Wait after a failed fsync: %v, want ErrStorage", err)
	}
	if done, err := p.Poll(); !done || !errors.Is(err, ErrStorage) {
		t.Fatalf("after a failed fsync: %v, %v; want done with ErrStorage", done, err)
	}
	fs.setOnSync(nil)
	_, p2, err := l.AppendAsync(faultBatch(2, 100))
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Wait(appendCtx(t)); err != nil {
		t.Fatal(err)
	}
	if done, err := p2.Poll(); !done || err != nil {
		t.Fatalf("after its fsync: %v, %v; want done", done, err)
	}
	// The discarded append stays discarded although p2 reused its offset.
	if done, err := p.Poll(); !done || !errors.Is(err, ErrStorage) {
		t.Fatalf("discarded append after a later one: %v, %v", done, err)
	}
}
