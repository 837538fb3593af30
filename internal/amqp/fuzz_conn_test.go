package amqp

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// fuzzServer is a server for a fuzz function: started once per process,
// shared by every input.
type fuzzServer struct {
	addr, url string
}

// startFuzzServer is startServer for a *testing.F: a broker in a fresh
// directory and a server on a loopback port, stopped when the fuzz
// function ends.
func startFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	b, err := broker.Open(broker.Options{DataDir: f.TempDir(), Logger: testLogger()})
	if err != nil {
		f.Fatalf("open broker: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		f.Fatal(err)
	}
	srv := NewServer(b, Options{Logger: testLogger(), HandshakeTimeout: 5 * time.Second})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			f.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			f.Errorf("Serve: %v", err)
		}
		if err := b.Close(); err != nil {
			f.Errorf("closing broker: %v", err)
		}
	})
	addr := ln.Addr().String()
	return &fuzzServer{addr: addr, url: "amqp://guest:guest@" + addr + "/"}
}

// fuzzSeeds are frames a client sends after opening channel 1: valid
// commands, commands the server refuses, and garbage.
func fuzzSeeds(tb testing.TB) [][]byte {
	m := func(ch uint16, x wire.Method) []byte { return methodFrame(tb, ch, x) }
	msg := func(ch uint16, x wire.Method, body string) []byte {
		return messageFrames(tb, ch, x, []byte(body), 4096)
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	declare := m(1, &wire.QueueDeclare{Queue: "fuzz-q", AutoDelete: true})
	publish := msg(1, &wire.BasicPublish{RoutingKey: "fuzz-q"}, "hello")
	badEnd := m(1, &wire.BasicQos{PrefetchCount: 1})
	badEnd[len(badEnd)-1] = 0xAB
	return [][]byte{
		nil,
		wire.AppendHeartbeat(nil),
		declare,
		cat(declare, publish, m(1, &wire.BasicGet{Queue: "fuzz-q"}), m(1, &wire.BasicAck{DeliveryTag: 1})),
		cat(declare, m(1, &wire.BasicConsume{Queue: "fuzz-q", ConsumerTag: "c"}), publish, m(1, &wire.BasicNack{DeliveryTag: 1, Requeue: true})),
		cat(m(1, &wire.ConfirmSelect{}), publish, publish),
		cat(m(1, &wire.TxSelect{}), declare, publish, m(1, &wire.TxCommit{}), m(1, &wire.TxRollback{})),
		cat(m(1, &wire.ExchangeDeclare{Exchange: "fuzz-x", Type: "topic", AutoDelete: true}),
			m(1, &wire.QueueBind{Queue: "fuzz-q", Exchange: "fuzz-x", RoutingKey: "#", Arguments: wire.Table{"k": int32(1), "t": wire.Table{"a": []any{"x", true}}}})),
		cat(m(1, &wire.ChannelClose{ReplyCode: 200}), m(1, &wire.ChannelOpen{})),
		cat(m(1, &wire.QueueDeclare{Queue: "fuzz-q", Passive: true}), m(1, &wire.ChannelCloseOk{})),
		cat(m(2, &wire.ChannelOpen{}), m(2, &wire.BasicQos{PrefetchCount: 3, Global: true}), m(2, &wire.ChannelFlow{Active: false})),
		m(0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "bye"}),
		m(1, &wire.BasicPublish{RoutingKey: "fuzz-q", Immediate: true}),
		badTableQueueDeclare(tb),
		badEnd,
		frameBytes(9, 0, nil),
		frameBytes(wire.FrameHeader, 1, []byte{0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0}),
		frameBytes(wire.FrameMethod, 1, rawPayload(99, 1)),
		[]byte("\x01\x00\x01\xff\xff\xff\xff"), // a frame claiming 4 GiB
		[]byte("\x01\x00\x01\x00\x00\x00"),     // a truncated frame header
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		[]byte(wire.ProtocolHeader),
		bytes.Repeat([]byte{0xCE}, 64),
	}
}

// fuzzChecks counts inputs, so that the full health check runs on every
// healthEvery-th one when fuzzing (seeds are all checked).
var fuzzChecks atomic.Uint64

const healthEvery = 8

// FuzzConnection writes arbitrary bytes to channel 1 of an open
// connection, then half-closes, and reads what the server sends until it
// hangs up. The server must not crash (it runs in this process), must send
// only well-formed frames, must close with a reply code of the
// specification when it closes, must hang up after the client's EOF, and
// must go on serving new clients.
func FuzzConnection(f *testing.F) {
	srv := startFuzzServer(f)
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := dialRaw(t, srv.addr)
		r.handshake()
		r.openChannel(1)

		// Read concurrently, so a server answering a lot never blocks on
		// a client busy writing.
		type result struct {
			closes []*wire.ConnectionClose
			err    error // the read error that ended it
			bad    error // a malformed frame from the server
		}
		done := make(chan result, 1)
		go func() {
			var res result
			r.nc.SetReadDeadline(time.Now().Add(rawTimeout))
			for {
				f, err := r.fr.ReadFrame()
				if err != nil {
					if _, ok := wire.ReplyCode(err); ok {
						res.bad = err
					}
					res.err = err
					done <- res
					return
				}
				switch f.Type {
				case wire.FrameMethod:
					m, err := wire.DecodeMethod(f.Payload)
					if err != nil {
						res.bad = err
						break
					}
					if cl, ok := m.(*wire.ConnectionClose); ok && f.Channel == 0 {
						res.closes = append(res.closes, cl)
					}
				case wire.FrameHeader:
					if _, err := wire.DecodeContentHeader(f.Payload); err != nil {
						res.bad = err
					}
				}
			}
		}()
		r.tryWrite(data) // the server may hang up before reading it all
		r.nc.(*net.TCPConn).CloseWrite()
		res := <-done

		if res.bad != nil {
			t.Errorf("the server sent a malformed frame: %v", res.bad)
		}
		var ne net.Error
		if errors.As(res.err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open %v after the client's EOF", rawTimeout)
		}
		if res.err != nil && !errors.Is(res.err, io.EOF) && !errors.Is(res.err, io.ErrUnexpectedEOF) && !isReset(res.err) {
			t.Errorf("reading from the server: %v", res.err)
		}
		if len(res.closes) > 1 {
			t.Errorf("the server sent connection.close %d times", len(res.closes))
		}
		for _, cl := range res.closes {
			if wire.ReplyName(cl.ReplyCode) == "" {
				t.Errorf("connection.close with reply code %d, not one of the specification's (%q)", cl.ReplyCode, cl.ReplyText)
			}
			if !wire.IsHardError(cl.ReplyCode) && cl.ReplyCode != wire.ReplySuccess {
				t.Errorf("connection.close with the soft code %d (%q)", cl.ReplyCode, cl.ReplyText)
			}
		}

		n := fuzzChecks.Add(1)
		if n%healthEvery == 0 || !fuzzing() {
			assertHealthy(t, srv.url)
		} else {
			// Cheap check: a raw handshake still completes.
			h := dialRaw(t, srv.addr)
			h.handshake()
			h.nc.Close()
		}
	})
}

// isReset reports a connection reset by the server: it closed with bytes
// of ours unread.
func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

// fuzzing reports whether the test binary runs with -test.fuzz, rather
// than running the seed corpus as a normal test.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}
