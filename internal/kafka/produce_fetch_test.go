package kafka

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceConsumeEveryCodec(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			if _, err := ts.admin().CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			p := ts.client(kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
			base := time.UnixMilli(1_700_000_000_000)
			var want []*kgo.Record
			for i := range 300 {
				r := &kgo.Record{
					Key:       []byte(fmt.Sprintf("key-%d", i%17)),
					Value:     bytes.Repeat([]byte{byte(i)}, 100+i),
					Headers:   []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}, {Key: "empty"}},
					Timestamp: base.Add(time.Duration(i) * time.Millisecond),
				}
				if i%50 == 0 {
					r.Key = nil // null key
				}
				if i%70 == 0 {
					r.Value = nil // null value
				}
				want = append(want, r)
			}
			if err := p.ProduceSync(ctx, want...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			c := ts.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := map[string]*kgo.Record{}
			for len(got) < len(want) {
				fs := c.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					t.Fatal(err)
				}
				fs.EachRecord(func(r *kgo.Record) { got[string(r.Headers[0].Value)] = r })
			}
			for i, w := range want {
				g := got[fmt.Sprint(i)]
				if g == nil {
					t.Fatalf("record %d missing", i)
				}
				if !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
					t.Fatalf("record %d: key %q value len %d, want key %q value len %d", i, g.Key, len(g.Value), w.Key, len(w.Value))
				}
				if !g.Timestamp.Equal(w.Timestamp) || len(g.Headers) != 2 || g.Headers[1].Key != "empty" {
					t.Fatalf("record %d: timestamp %v headers %v", i, g.Timestamp, g.Headers)
				}
				if g.Partition != w.Partition || g.Offset != w.Offset {
					t.Fatalf("record %d: consumed at %d/%d, produced at %d/%d", i, g.Partition, g.Offset, w.Partition, w.Offset)
				}
			}
		})
	}
}

// TestShutdownEndsLongPoll checks that a fetch waiting for data does not
// hold a shutdown for its whole max wait: it is answered at once, so
// Shutdown finishes cleanly instead of running out its deadline and
// closing the connection.
func TestShutdownEndsLongPoll(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "idle"); err != nil {
		t.Fatal(err)
	}
	c := ts.client(kgo.ConsumeTopics("idle"), kgo.FetchMaxWait(time.Minute))
	go c.PollFetches(ctx)
	time.Sleep(200 * time.Millisecond) // let the long poll start
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown did not finish cleanly while a fetch long-polled: %v", err)
	}
}
