package gateway

import (
	"strings"
	"testing"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/crashcopy"
	"github.com/wharfmq/wharf/internal/storage"
)

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
	dir := crashcopy.Dir(t, e.dir)

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
