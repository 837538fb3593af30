package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/storage"
)

// waitClosed reads from nc until the server closes it, failing the test if
// the server answers with anything or has not closed it within limit.
func waitClosed(t *testing.T, nc net.Conn, limit time.Duration) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(limit))
	n, err := io.Copy(io.Discard, nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed by the server (read %d bytes): %v", n, err)
	}
	if n != 0 {
		t.Fatalf("the server answered %d bytes before closing", n)
	}
}

func fetchRequest(topic string, partition int32, offset int64, maxBytes, partMaxBytes int32, wait time.Duration) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.ReplicaID = -1
	r.MaxWaitMillis, r.MinBytes, r.MaxBytes = int32(wait/time.Millisecond), 1, maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, partMaxBytes
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return r
}

// TestIdleConnectionsAreClosed checks ConnectionsMaxIdle: a connection that
// sends nothing more is closed by the server; one waiting for a fetch
// longer than the idle time is not idle and gets its answer first; a
// franz-go client whose connection was closed for idleness reconnects and
// carries on.
func TestIdleConnectionsAreClosed(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.ConnectionsMaxIdle = time.Second })
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "idle"); err != nil {
		t.Fatal(err)
	}

	// Silent from the start.
	silent, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// One request, then silence.
	once := dialRaw(t, ts)
	if r := once.do(kmsg.NewPtrApiVersionsRequest(), 2).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("ApiVersions: error %d", r.ErrorCode)
	}

	// A long poll of four idle periods on an empty partition.
	poll := dialRaw(t, ts)
	poll.send(fetchRequest("idle", 0, 0, 1<<20, 1<<20, 4*time.Second), 11)

	waitClosed(t, silent, 30*time.Second)
	waitClosed(t, once.nc, 30*time.Second)
	resp := poll.recv().(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("long poll answered with errors: %+v", resp)
	}
	waitClosed(t, poll.nc, 30*time.Second)

	// franz-go notices the closed connection and dials again.
	cl := ts.client(kgo.DefaultProduceTopic("idle"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every connection closed as idle", 30*time.Second, func() bool { return ts.srv.Connections() == 0 })
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatalf("produce after the idle close: %v", err)
	}
}

// TestSizePrefixDoesNotAllocateAhead checks that a request's size prefix
// does not make the server allocate the size it claims before the bytes
// arrive: connections that each claim a request just under the limit and
// send a few bytes of it cost the server far less than what they claim.
func TestSizePrefixDoesNotAllocateAhead(t *testing.T) {
	ts := startServer(t, nil)
	const conns, claim = 20, 100<<20 - 1
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range conns {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		msg := binary.BigEndian.AppendUint32(nil, claim)
		msg = append(msg, bytes.Repeat([]byte{1}, 100)...)
		if _, err := nc.Write(msg); err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	// A connection is gone once the server has read its prefix and the
	// end of its truncated body.
	eventually(t, "the truncated requests' connections to close", 30*time.Second, func() bool {
		return ts.srv.Connections() == 0
	})
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d connections claiming %d MiB each: %.1f MiB allocated by the whole process", conns, claim>>20, float64(allocated)/(1<<20))
	if allocated > 64<<20 {
		t.Errorf("%d MiB allocated for %d connections that sent 104 bytes each", allocated>>20, conns)
	}

	// Requests that grow the buffer past the first chunk still arrive
	// whole: records of every size, produced and read back.
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 4, 1, nil, "big"); err != nil {
		t.Fatal(err)
	}
	cl := ts.client(kgo.DefaultProduceTopic("big"), kgo.ProducerLinger(50*time.Millisecond),
		kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var want [][]byte
	for i := range 64 {
		v := bytes.Repeat([]byte{byte(i)}, 1+i*13_000)
		want = append(want, v)
		cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = r.Value })
	}
	for i, v := range want {
		if !bytes.Equal(got[fmt.Sprint(i)], v) {
			t.Fatalf("record %d: %d bytes back, %d produced", i, len(got[fmt.Sprint(i)]), len(v))
		}
	}
}

// produceBig appends n batches of one record of size bytes each to
// topic/0.
func produceBig(t *testing.T, ts *testServer, topic string, n, size int) {
	t.Helper()
	c := dialRaw(t, ts)
	for i := range n {
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: []storage.Record{{Timestamp: int64(i), Value: bytes.Repeat([]byte{byte(i)}, size)}}})
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		resp := c.do(r, 9).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce %d: error %d", i, code)
		}
	}
}

// TestFetchResponseBoundedByServer checks FetchMaxBytes: whatever a fetch
// asks for, at any version, the response carries at most FetchMaxBytes of
// records, or a single batch when the first one is larger.
func TestFetchResponseBoundedByServer(t *testing.T) {
	const limit, batch = 1 << 20, 200 << 10
	ts := startServer(t, func(o *Options) { o.FetchMaxBytes = limit })
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "wide"); err != nil {
		t.Fatal(err)
	}
	produceBig(t, ts, "wide", 30, batch) // about 6 MiB
	c := dialRaw(t, ts)
	for _, v := range []int16{0, 2, 3, 4, 11, 12} {
		resp := c.do(fetchRequest("wide", 0, 0, 1<<30, 1<<30, 0), v).(*kmsg.FetchResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, p.ErrorCode)
		}
		n := len(p.RecordBatches)
		if n == 0 || n > limit {
			t.Errorf("v%d: %d bytes of records for a server limit of %d", v, n, limit)
		}
		t.Logf("v%d: %d bytes of records", v, n)
	}
	// The client's own smaller limit still holds.
	resp := c.do(fetchRequest("wide", 0, 0, 300<<10, 1<<30, 0), 11).(*kmsg.FetchResponse)
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n > 300<<10 {
		t.Errorf("%d bytes for a request max of %d", n, 300<<10)
	}
	// A limit below one batch still returns that batch, so the consumer
	// progresses.
	small := startServer(t, func(o *Options) { o.FetchMaxBytes = 1024 })
	if _, err := small.admin().CreateTopic(ctx, 1, 1, nil, "wide"); err != nil {
		t.Fatal(err)
	}
	produceBig(t, small, "wide", 2, 10_000)
	resp = dialRaw(t, small).do(fetchRequest("wide", 0, 0, 1<<30, 1<<30, 0), 11).(*kmsg.FetchResponse)
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n < 10_000 || n > 20_000 {
		t.Errorf("%d bytes: want exactly the first batch", n)
	}
}

// smallReadBuffer is a dialer whose sockets have a 64 KiB receive buffer,
// set before connecting, so the kernel holds little for a client that
// does not read.
var smallReadBuffer = net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
	})
	return errors.Join(err, serr)
}}

// TestStuckFetchersHoldBoundedMemory checks that consumers that send fetch
// after fetch and never read the answers cannot make the server buffer
// without bound: each holds at most the one response its writer is stuck
// on, while a reading consumer on another connection gets everything.
func TestStuckFetchersHoldBoundedMemory(t *testing.T) {
	const limit, batch, batches, stuck, pipelined = 2 << 20, 256 << 10, 64, 6, 200
	ts := startServer(t, func(o *Options) { o.FetchMaxBytes = limit })
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "flood"); err != nil {
		t.Fatal(err)
	}
	produceBig(t, ts, "flood", batches, batch) // 16 MiB

	// Each stuck fetcher pipelines fetches of everything and reads nothing.
	var wg sync.WaitGroup
	for range stuck {
		nc, err := smallReadBuffer.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var frames []byte
			for i := range pipelined {
				req := fetchRequest("flood", 0, 0, 1<<30, 1<<30, 0)
				req.SetVersion(11)
				frame := binary.BigEndian.AppendUint16(nil, 1)
				frame = binary.BigEndian.AppendUint16(frame, 11)
				frame = binary.BigEndian.AppendUint32(frame, uint32(i))
				frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
				frame = req.AppendTo(frame)
				frames = append(binary.BigEndian.AppendUint32(frames, uint32(len(frame))), frame...)
			}
			// The server stops reading once its pipeline is full, so this
			// write may never finish; closing the socket ends it.
			nc.Write(frames)
		}()
	}
	defer wg.Wait()

	// Sample what the server holds while the stuck fetchers are stuck and
	// a real consumer reads the whole partition.
	var peak int64
	sample := func() {
		if b := ts.srv.BufferedBytes(); b > peak {
			peak = b
		}
	}
	eventually(t, "every stuck fetcher to hold a response", 60*time.Second, func() bool {
		sample()
		return ts.srv.BufferedBytes() >= stuck*limit
	})
	cl := ts.client(kgo.ConsumeTopics("flood"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(limit))
	got := 0
	for got < batches {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
		sample()
	}
	for range 100 {
		sample()
		runtime.Gosched()
	}
	// Per connection: the response being written (at most the limit plus
	// one batch, and framing) and the pooled buffer of the records it was
	// built from (the same, rounded up to a power of two).
	perConn := int64(limit + batch + 64<<10 + 2*(limit+batch))
	bound := (stuck + 1) * perConn
	t.Logf("peak buffered: %.1f MiB for %d stuck fetchers with %d fetches each (bound %.1f MiB; all their responses would be %.0f MiB)",
		float64(peak)/(1<<20), stuck, pipelined, float64(bound)/(1<<20), float64(stuck*pipelined*limit)/(1<<20))
	if peak > bound {
		t.Errorf("the server buffered %d bytes; bound %d", peak, bound)
	}
	if peak < stuck*limit {
		t.Errorf("peak %d below what the stuck fetchers hold: the measure is wrong", peak)
	}
}

// TestStuckProducerPinsNoRequests has a client pipeline produce requests
// behind a fetch whose large answer it never reads: the writer is stuck on
// that answer, the reader appends the produces until the pipeline is full,
// and their bodies, appended already, are not held in memory meanwhile.
func TestStuckProducerPinsNoRequests(t *testing.T) {
	const batch, produces = 1000 << 10, 100
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "pinned"); err != nil {
		t.Fatal(err)
	}
	produceBig(t, ts, "pinned", 24, 256<<10) // a 6 MiB fetch answer, more than the kernel buffers
	part, err := ts.b.Partition("pinned", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, start := part.Offsets()

	var before runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)

	nc, err := smallReadBuffer.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	frame := func(req kmsg.Request, version int16, corr int32) []byte {
		req.SetVersion(version)
		b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, uint32(corr))
		b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
		b = req.AppendTo(b)
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
	}
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		if _, err := nc.Write(frame(fetchRequest("pinned", 0, 0, 1<<30, 1<<30, 0), 11, 0)); err != nil {
			return
		}
		for i := range produces {
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = 1, 10000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "pinned"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
				Records: []storage.Record{{Timestamp: int64(i), Value: bytes.Repeat([]byte{byte(i)}, batch)}}})
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			// The server stops reading once its pipeline is full; closing
			// the socket ends this write.
			if _, err := nc.Write(frame(req, 7, int32(i+1))); err != nil {
				return
			}
		}
	}()
	// The reader appends until the pipeline (64 requests behind the
	// fetch) is full.
	eventually(t, "the pipelined produces to be appended", 60*time.Second, func() bool {
		_, _, end := part.Offsets()
		return end >= start+60
	})
	var after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	_, _, end := part.Offsets()
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	answer := ts.srv.BufferedBytes()
	t.Logf("%d produces of %d KiB appended behind an unread 6 MiB fetch answer; heap grew by %.1f MiB, %.1f MiB of it the answer",
		end-start, batch>>10, float64(grown)/(1<<20), float64(answer)/(1<<20))
	// Besides the answer: the body being read, and the test's own client.
	if limit := answer + 16<<20; grown > limit {
		t.Errorf("the heap grew by %d MiB while a client left %d produces unanswered; want at most the answer and 16 MiB, %d MiB",
			grown>>20, end-start, limit>>20)
	}
	nc.Close()
	<-writeDone
}
