package gateway

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/storage"
)

// crashCopy copies a live data directory as a process crash would leave
// it: every write made so far is there, nothing a clean close would add.
// Files that vanish while it copies (a flush renaming them) are skipped.
func crashCopy(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if strings.HasSuffix(path, ".tmp") || e.Name() == ".lock" {
			return nil
		}
		in, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
	return dst
}

// An ack or drop the server answered is on disk: after a crash right
// after the answer, the settled messages do not come back.
func TestWSAnsweredAckSurvivesCrash(t *testing.T) {
	e := newWSEnv(t, WSOptions{})
	ctx := t.Context()
	if _, _, err := e.b.DeclareQueue(ctx, broker.DefaultVhost, "c1", broker.QueueSpec{Name: "jobs", Durable: true}); err != nil {
		t.Fatal(err)
	}
	c := e.dial(t, basicAuth("alice", "wonderland"))
	c.next("welcome")
	for _, body := range []string{"a", "b", "c", "d"} {
		c.ok(map[string]any{"type": "publish", "exchange": "", "routing_key": "jobs", "body": body, "properties": map[string]any{"delivery_mode": 2}})
	}
	sub := c.ok(map[string]any{"type": "subscribe", "queue": "jobs", "prefetch": 4})["sub"]
	for range 4 {
		c.next("delivery")
	}
	c.ok(map[string]any{"type": "ack", "sub": sub, "tag": 2, "multiple": true})
	c.ok(map[string]any{"type": "nack", "sub": sub, "tag": 3, "requeue": false})
	dir := crashCopy(t, e.dir)

	b, err := broker.Open(broker.Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, err := b.Queue(broker.DefaultVhost, "", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		d, ok := q.Get(t.Context(), true)
		if !ok {
			break
		}
		got = append(got, string(d.Message.Body))
	}
	if strings.Join(got, ",") != "d" {
		t.Fatalf("after a crash the queue holds %v, want only d (a, b acked and c dropped, answered)", got)
	}
}
