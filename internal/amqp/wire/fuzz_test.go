package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// seedMethods returns encodings of every method with every field set and
// with none set.
func seedMethods(t testing.TB) [][]byte {
	var out [][]byte
	for _, m := range allMethods() {
		zero, err := m.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		full := newMethod(m.ClassID(), m.MethodID())
		fillMethod(full, func(i int) bool { return i%2 == 0 })
		b, err := full.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, zero, b)
	}
	return out
}

// wantProtocolError fails unless err carries a reply code.
func wantProtocolError(t *testing.T, err error) {
	t.Helper()
	if _, ok := ReplyCode(err); !ok {
		t.Fatalf("error without a reply code: %v", err)
	}
}

func FuzzDecodeMethod(f *testing.F) {
	for _, b := range seedMethods(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := DecodeMethod(payload)
		if err != nil {
			wantProtocolError(t, err)
			return
		}
		b1, err := m.AppendTo(nil)
		if err != nil {
			t.Fatalf("%s: re-encode: %v", m.Name(), err)
		}
		if len(b1) > len(payload) {
			t.Fatalf("%s: re-encoding grew from %d to %d bytes", m.Name(), len(payload), len(b1))
		}
		m2, err := DecodeMethod(b1)
		if err != nil {
			t.Fatalf("%s: decode of re-encoding: %v", m.Name(), err)
		}
		b2, err := m2.AppendTo(nil)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("%s: unstable: % x then % x (%v)", m.Name(), b1, b2, err)
		}
	})
}

func FuzzDecodeTable(f *testing.F) {
	for _, tab := range []Table{nil, sampleTable(), {"k": nest(MaxTableDepth - 1)}, {"a": []any{[]any{}, Table{}}}} {
		b, err := AppendTable(nil, tab)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(wrapTable(MaxTableDepth + 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := DecodeTable(b)
		if err != nil {
			wantProtocolError(t, err)
			return
		}
		b1, err := AppendTable(nil, tab)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if len(b1) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(b1))
		}
		tab2, err := DecodeTable(b1)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		b2, err := AppendTable(nil, tab2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("unstable: % x then % x (%v)", b1, b2, err)
		}
	})
}

func FuzzDecodeProperties(f *testing.F) {
	for _, p := range []Properties{{}, fullProperties(), {Flags: FlagPriority | FlagTimestamp}, {Headers: Table{"x": []any{int64(1)}}}} {
		b, err := AppendContentHeader(nil, &ContentHeader{ClassID: ClassBasic, BodySize: 42, Properties: p})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeContentHeader(b)
		if err != nil {
			wantProtocolError(t, err)
			return
		}
		if h.Properties.Present() != h.Properties.Flags {
			t.Fatalf("decoded flags %#04x, present %#04x", h.Properties.Flags, h.Properties.Present())
		}
		b1, err := AppendContentHeader(nil, &h)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if len(b1) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(b1))
		}
		h2, err := DecodeContentHeader(b1)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		b2, err := AppendContentHeader(nil, &h2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("unstable: % x then % x (%v)", b1, b2, err)
		}
	})
}

// smallStream is a short frame stream for fuzz seeds (small inputs keep
// the fuzzer's minimisation fast): a method without content, then a
// publish whose body comes in three frames, then a heartbeat.
func smallStream(t testing.TB) []byte {
	b, err := AppendMethodFrame(nil, 1, &BasicQos{PrefetchCount: 10}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err = AppendMethodFrame(b, 1, &BasicPublish{RoutingKey: "q", Mandatory: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := AppendContentHeader(nil, &ContentHeader{ClassID: ClassBasic, BodySize: 11,
		Properties: Properties{ContentType: "text/plain", Headers: Table{"k": int32(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	b = AppendFrame(b, Frame{Type: FrameHeader, Channel: 1, Payload: h})
	for _, part := range []string{"hello", " ", "world"} {
		b = AppendFrame(b, Frame{Type: FrameBody, Channel: 1, Payload: []byte(part)})
	}
	return AppendHeartbeat(b)
}

func FuzzReadFrame(f *testing.F) {
	f.Add(smallStream(f), uint32(0))
	f.Add(frameStream(f, 4096, []byte("body")), uint32(131072))
	f.Add(AppendHeartbeat(nil), uint32(4096))
	f.Add(frameBytes(3, 1, 1<<30, []byte("short"), FrameEnd), uint32(1<<31))
	f.Add(frameBytes(1, 1, 4, []byte{0, 10, 0, 51}, 0xCD), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, frameMax uint32) {
		fr := NewFrameReader(bytes.NewReader(data), frameMax)
		off := 0
		for {
			fm, err := fr.ReadFrame()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
					wantProtocolError(t, err)
				}
				break
			}
			if uint64(len(fm.Payload)) > uint64(normFrameMax(frameMax)) {
				t.Fatalf("payload of %d bytes with frame-max %d", len(fm.Payload), frameMax)
			}
			enc := AppendFrame(nil, fm)
			if !bytes.Equal(enc, data[off:off+len(enc)]) {
				t.Fatalf("frame at %d re-encodes differently", off)
			}
			off += len(enc)
		}
		if c := cap(fr.buf); c > 2*(len(data)+readChunk) {
			t.Fatalf("buffer of %d bytes for %d bytes of input", c, len(data))
		}
	})
}

func FuzzContentAssembly(f *testing.F) {
	f.Add(smallStream(f), uint64(0))
	f.Add(smallStream(f), uint64(10))
	f.Add(frameStream(f, 4096, nil), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, maxBody uint64) {
		fr := NewFrameReader(bytes.NewReader(data), 0)
		a := NewAssembler(maxBody)
		var cmds []Command
		for {
			fm, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if fm.Type == FrameHeartbeat {
				continue
			}
			c, done, err := a.Add(fm)
			if err != nil {
				wantProtocolError(t, err)
				if a.Pending() {
					t.Fatal("pending after an error")
				}
				continue
			}
			if !done {
				continue
			}
			if c.Method.HasContent() {
				if maxBody > 0 && uint64(len(c.Body)) > maxBody {
					t.Fatalf("body of %d bytes over the maximum %d", len(c.Body), maxBody)
				}
			} else if c.Body != nil || !reflect.DeepEqual(c.Properties, Properties{}) {
				t.Fatalf("%s has content", c.Method.Name())
			}
			cmds = append(cmds, c)
		}
		// Re-encode the commands and assemble them again.
		const frameMax = 1 << 20
		var stream []byte
		for _, c := range cmds {
			var err error
			if c.Method.HasContent() {
				stream, err = AppendMessage(stream, 1, c.Method, &c.Properties, c.Body, frameMax)
			} else {
				stream, err = AppendMethodFrame(stream, 1, c.Method, frameMax)
			}
			if err != nil {
				t.Fatalf("re-encode %s: %v", c.Method.Name(), err)
			}
		}
		fr = NewFrameReader(bytes.NewReader(stream), frameMax)
		a = NewAssembler(maxBody)
		var again []Command
		for {
			fm, err := fr.ReadFrame()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("re-read: %v", err)
			}
			c, done, err := a.Add(fm)
			if err != nil {
				t.Fatalf("re-assemble: %v", err)
			}
			if done {
				again = append(again, c)
			}
		}
		if len(again) != len(cmds) {
			t.Fatalf("%d commands, %d after re-encoding", len(cmds), len(again))
		}
		for i := range cmds {
			b1, _ := encodeCommand(cmds[i])
			b2, _ := encodeCommand(again[i])
			if !bytes.Equal(b1, b2) {
				t.Fatalf("command %d (%s) changed on re-encoding", i, cmds[i].Method.Name())
			}
		}
	})
}

// encodeCommand encodes a command for comparison.
func encodeCommand(c Command) ([]byte, error) {
	if c.Method.HasContent() {
		return AppendMessage(nil, 1, c.Method, &c.Properties, c.Body, 1<<20)
	}
	return AppendMethodFrame(nil, 1, c.Method, 1<<20)
}
