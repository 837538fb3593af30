package storage

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// benchBatch is an uncompressed batch of size/1024 records with 1 KiB
// values, as a producer would send.
func benchBatch(size, seed int) []byte {
	recs := make([]Record, size/1024)
	for i := range recs {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = byte(seed + i + j)
		}
		recs[i] = Record{Timestamp: 1_700_000_000_000 + int64(i), Value: v}
	}
	return AppendBatch(nil, BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// BenchmarkAppend measures acknowledged append throughput: fsync policy x
// batch size x concurrent appenders on one log. Each appender appends its
// own pre-built batch over and over (Append rewrites the header in place,
// which is harmless here).
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		for _, size := range []int{16 << 10, 256 << 10, 1 << 20} {
			for _, appenders := range []int{1, 8} {
				name := fmt.Sprintf("fsync=%s/batch=%s/appenders=%d", policy, sizeName(size), appenders)
				b.Run(name, func(b *testing.B) { benchAppend(b, policy, size, appenders) })
			}
		}
	}
}

func benchAppend(b *testing.B, policy FsyncPolicy, size, appenders int) {
	cfg := DefaultLogConfig()
	cfg.Fsync = policy
	cfg.MaxBatchBytes = 2 << 20
	cfg.SegmentBytes = 256 << 20
	l, err := Open(b.TempDir(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	bufs := make([][]byte, appenders)
	for a := range bufs {
		bufs[a] = benchBatch(size, a)
	}
	b.SetBytes(int64(len(bufs[0])))
	ctx := context.Background()
	var claimed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for a := range appenders {
		wg.Go(func() {
			for claimed.Add(1) <= int64(b.N) {
				if _, err := l.Append(ctx, bufs[a]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := l.Delete(); err != nil {
		b.Fatal(err)
	}
}

// benchReadLog is a log of about 64 MiB in 16 KiB batches of 1 KiB records,
// in 16 MiB segments. Reads come from the page cache: this measures the
// engine, not the disk.
func benchReadLog(b *testing.B) (*Log, int64) {
	b.Helper()
	cfg := DefaultLogConfig()
	cfg.Fsync = FsyncNever
	cfg.SegmentBytes = 16 << 20
	l, err := Open(b.TempDir(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch(16<<10, 0)
	for l.Size() < 64<<20 {
		if _, err := l.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return l, l.Size()
}

// nextOffset returns the offset after the last of the whole batches in buf,
// reading only their headers.
func nextOffset(buf []byte) int64 {
	var next int64
	for len(buf) >= batchHeaderSize {
		b := Batch(buf)
		next = b.NextOffset()
		buf = buf[min(b.Size(), len(buf)):]
	}
	return next
}

// BenchmarkReadSequential reads the whole log from offset 0 in fetches of
// up to 1 MiB, as a consumer catching up does.
func BenchmarkReadSequential(b *testing.B) {
	l, size := benchReadLog(b)
	defer l.Close()
	_, hw, _ := l.Offsets()
	const maxBytes = 1 << 20

	// The fetch offsets, found once by reading, for the variants that do
	// not see the bytes.
	var plan []int64
	var buf []byte
	for off := int64(0); off < hw; {
		res, err := l.Read(off, maxBytes)
		if err != nil {
			b.Fatal(err)
		}
		buf, err = res.AppendTo(buf[:0])
		res.Release()
		if err != nil {
			b.Fatal(err)
		}
		plan = append(plan, off)
		off = nextOffset(buf)
	}

	b.Run("AppendTo", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]byte, 0, 2*maxBytes)
		for b.Loop() {
			for off := int64(0); off < hw; {
				res, err := l.Read(off, maxBytes)
				if err != nil {
					b.Fatal(err)
				}
				buf, err = res.AppendTo(buf[:0])
				res.Release()
				if err != nil {
					b.Fatal(err)
				}
				off = nextOffset(buf)
			}
		}
	})

	writeAll := func(b *testing.B, w io.Writer) {
		for _, off := range plan {
			res, err := l.Read(off, maxBytes)
			if err != nil {
				b.Fatal(err)
			}
			_, err = res.WriteTo(w)
			res.Release()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("WriteTo=discard", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			writeAll(b, io.Discard)
		}
	})
	b.Run("WriteTo=tcp", func(b *testing.B) { benchTCP(b, size, func(conn net.Conn) { writeAll(b, conn) }) })
	b.Run("WriteTo=tcp-nosendfile", func(b *testing.B) {
		// Hiding the socket makes WriteTo copy through user space.
		benchTCP(b, size, func(conn net.Conn) { writeAll(b, struct{ io.Writer }{conn}) })
	})
}

// benchTCP sends the log to a loopback TCP receiver once per iteration.
func benchTCP(b *testing.B, size int64, send func(net.Conn)) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Skip("no loopback TCP:", err)
	}
	defer ln.Close()
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		received <- n
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	var iters int64
	for b.Loop() {
		send(conn)
		iters++
	}
	conn.Close()
	if n := <-received; n != iters*size {
		b.Fatalf("receiver got %d bytes, sent %d", n, iters*size)
	}
}

// BenchmarkCheckBatch measures the CRC32C validation every append pays.
func BenchmarkCheckBatch(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			batch := benchBatch(size, 0)
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				if _, err := CheckBatch(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
