package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestProtocolHeader(t *testing.T) {
	if err := ReadProtocolHeader(strings.NewReader(ProtocolHeader + "rest")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"AMQP\x01\x01\x00\x09", "AMQP\x00\x00\x09\x00", "GET / HTTP/1.1\r\n", "AMQP\x00\x00\x08\x00"} {
		err := ReadProtocolHeader(strings.NewReader(bad))
		var pe *ProtocolHeaderError
		if !errors.As(err, &pe) || !errors.Is(err, ErrBadProtocolHeader) || string(pe.Got[:]) != bad[:8] {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if err := ReadProtocolHeader(strings.NewReader("AMQP")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short header: %v", err)
	}
	// Through a FrameReader, whose buffering must not lose the first frame.
	stream := append([]byte(ProtocolHeader), AppendHeartbeat(nil)...)
	fr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	if err := fr.ReadProtocolHeader(); err != nil {
		t.Fatal(err)
	}
	if f, err := fr.ReadFrame(); err != nil || f.Type != FrameHeartbeat {
		t.Fatalf("frame after header: %+v, %v", f, err)
	}
}

func TestHeartbeatBytes(t *testing.T) {
	if got, want := AppendHeartbeat(nil), unhex(t, "08 0000 00000000 ce"); !bytes.Equal(got, want) {
		t.Fatalf("heartbeat % x, want % x", got, want)
	}
}

// frameStream builds a stream of frames: a method, a message with a body
// over several frames, and a heartbeat.
func frameStream(t testing.TB, frameMax uint32, body []byte) []byte {
	b, err := AppendMethodFrame(nil, 0, &ConnectionTuneOk{ChannelMax: 1, FrameMax: frameMax, Heartbeat: 5}, frameMax)
	if err != nil {
		t.Fatal(err)
	}
	b, err = AppendMessage(b, 3, &BasicPublish{RoutingKey: "q"}, &Properties{ContentType: "text/plain"}, body, frameMax)
	if err != nil {
		t.Fatal(err)
	}
	return AppendHeartbeat(b)
}

func readAll(t testing.TB, r io.Reader, frameMax uint32) []Frame {
	fr := NewFrameReader(r, frameMax)
	var out []Frame
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(out), err)
		}
		f.Payload = bytes.Clone(f.Payload)
		out = append(out, f)
	}
}

func TestFrameReaderSplitReads(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	stream := frameStream(t, 4096, body)
	whole := readAll(t, bytes.NewReader(stream), 4096)
	// tune-ok, publish, header, 3 body frames (4088+4088+1824), heartbeat
	if len(whole) != 7 {
		t.Fatalf("%d frames", len(whole))
	}
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
		"half":     iotest.HalfReader(bytes.NewReader(stream)),
		"data+err": iotest.DataErrReader(bytes.NewReader(stream)),
	} {
		if got := readAll(t, r, 4096); !reflect.DeepEqual(got, whole) {
			t.Fatalf("%s: frames differ", name)
		}
	}
	for i, f := range whole[3:6] {
		if f.Type != FrameBody || f.Channel != 3 || len(f.Payload) > 4096-8 {
			t.Fatalf("body frame %d: type %d channel %d size %d", i, f.Type, f.Channel, len(f.Payload))
		}
	}
	if got := len(whole[3].Payload) + len(whole[4].Payload) + len(whole[5].Payload); got != len(body) {
		t.Fatalf("body frames hold %d bytes", got)
	}
}

func frameBytes(typ uint8, channel uint16, size uint32, payload []byte, end byte) []byte {
	b := []byte{typ, byte(channel >> 8), byte(channel), byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)}
	return append(append(b, payload...), end)
}

func TestFrameReaderErrors(t *testing.T) {
	cases := []struct {
		name     string
		stream   []byte
		frameMax uint32
		cause    error
	}{
		{"payload over frame-max", frameBytes(1, 1, 4097, make([]byte, 4097), FrameEnd), 0, ErrFrameTooLarge},
		{"payload over tuned frame-max", frameBytes(3, 1, 10001, nil, FrameEnd), 10000, ErrFrameTooLarge},
		{"huge claimed size", frameBytes(3, 1, 0xFFFFFFFF, nil, FrameEnd), 0, ErrFrameTooLarge},
		{"bad frame-end", frameBytes(1, 1, 4, []byte{0, 10, 0, 51}, 0xCD), 0, ErrFrameEnd},
		{"unknown type", frameBytes(4, 1, 0, nil, FrameEnd), 0, ErrUnknownFrameType},
		{"type zero", frameBytes(0, 0, 0, nil, FrameEnd), 0, ErrUnknownFrameType},
		{"heartbeat on a channel", frameBytes(8, 1, 0, nil, FrameEnd), 0, ErrBadHeartbeat},
		{"heartbeat with payload", frameBytes(8, 0, 1, []byte{0}, FrameEnd), 0, ErrBadHeartbeat},
	}
	for _, c := range cases {
		_, err := NewFrameReader(bytes.NewReader(c.stream), c.frameMax).ReadFrame()
		if !errors.Is(err, c.cause) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.cause)
		}
		wantCode(t, err, ReplyFrameError, c.cause)
	}
}

func TestFrameReaderLimits(t *testing.T) {
	// A payload of exactly frame-max-8 bytes fits; RabbitMQ also lets a
	// payload of frame-max bytes through, and so do we.
	for _, size := range []uint32{4096 - 8, 4096} {
		f, err := NewFrameReader(bytes.NewReader(frameBytes(3, 1, size, make([]byte, size), FrameEnd)), 0).ReadFrame()
		if err != nil || len(f.Payload) != int(size) {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	fr := NewFrameReader(bytes.NewReader(frameBytes(3, 1, 100000, make([]byte, 100000), FrameEnd)), 0)
	fr.SetFrameMax(131072)
	if _, err := fr.ReadFrame(); err != nil {
		t.Fatalf("after SetFrameMax: %v", err)
	}
}

func TestFrameReaderEOF(t *testing.T) {
	stream := frameStream(t, 4096, []byte("body"))
	fr := NewFrameReader(bytes.NewReader(stream[:len(stream)-3]), 0)
	var err error
	for err == nil {
		_, err = fr.ReadFrame()
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut inside a frame: %v", err)
	}
	if _, err := NewFrameReader(bytes.NewReader(nil), 0).ReadFrame(); err != io.EOF {
		t.Fatalf("empty stream: %v", err)
	}
	if _, err := NewFrameReader(bytes.NewReader([]byte{1, 0}), 0).ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut header: %v", err)
	}
}

// TestFrameReaderGrowsWithData checks that a large claimed size does not
// allocate ahead of the bytes that arrive.
func TestFrameReaderGrowsWithData(t *testing.T) {
	fr := NewFrameReader(bytes.NewReader(frameBytes(3, 1, 1<<30, make([]byte, 10), FrameEnd)), 1<<31)
	if _, err := fr.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
	if c := cap(fr.buf); c > 2*readChunk {
		t.Fatalf("buffer grew to %d bytes for 10 received", c)
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestFrameWriterMessageInOneWrite(t *testing.T) {
	for _, size := range []int{0, 1, 4088, 4089, 3*4088 + 5, 200000} {
		var w countingWriter
		fw := NewFrameWriter(&w, 0)
		body := bytes.Repeat([]byte{0xAB}, size)
		props := fullProperties()
		if err := fw.WriteMessage(7, &BasicDeliver{ConsumerTag: "c", DeliveryTag: 9, RoutingKey: "k"}, &props, body); err != nil {
			t.Fatal(err)
		}
		if w.writes != 1 {
			t.Fatalf("size %d: %d writes", size, w.writes)
		}
		frames := readAll(t, &w.Buffer, 0)
		wantBodies := (size + 4087) / 4088
		if len(frames) != 2+wantBodies {
			t.Fatalf("size %d: %d frames, want %d", size, len(frames), 2+wantBodies)
		}
		a := NewAssembler(0)
		var cmd Command
		for i, f := range frames {
			if f.Channel != 7 {
				t.Fatalf("frame on channel %d", f.Channel)
			}
			c, done, err := a.Add(f)
			if err != nil {
				t.Fatal(err)
			}
			if done != (i == len(frames)-1) {
				t.Fatalf("size %d: done %v at frame %d of %d", size, done, i, len(frames))
			}
			cmd = c
		}
		if !bytes.Equal(cmd.Body, body) || cmd.Properties.ContentType != props.ContentType || cmd.Method.(*BasicDeliver).DeliveryTag != 9 {
			t.Fatalf("size %d: assembled %+v", size, cmd)
		}
	}
}

func TestFrameWriterErrors(t *testing.T) {
	var w countingWriter
	fw := NewFrameWriter(&w, 0)
	if err := fw.WriteMethod(1, &BasicPublish{}); err == nil {
		t.Fatal("WriteMethod took a content method")
	}
	if err := fw.WriteMessage(1, &BasicAck{}, nil, nil); err == nil {
		t.Fatal("WriteMessage took a method without content")
	}
	big := Table{"k": strings.Repeat("x", 5000)}
	err := fw.WriteMethod(0, &ConnectionStart{ServerProperties: big})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("method over frame-max: %v", err)
	}
	if _, ok := ReplyCode(err); ok {
		t.Fatal("an encoding error carries a reply code")
	}
	err = fw.WriteMessage(1, &BasicPublish{}, &Properties{Headers: big}, nil)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("header over frame-max: %v", err)
	}
	if err := fw.WriteFrame(Frame{Type: FrameBody, Payload: make([]byte, 4089)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("WriteFrame over frame-max: %v", err)
	}
	if w.writes != 0 {
		t.Fatalf("%d writes for failed calls", w.writes)
	}
	fw.SetFrameMax(16384)
	if err := fw.WriteMethod(0, &ConnectionStart{ServerProperties: big}); err != nil {
		t.Fatalf("after SetFrameMax: %v", err)
	}
	if fw.FrameMax() != 16384 {
		t.Fatalf("FrameMax %d", fw.FrameMax())
	}
	if err := NewFrameWriter(failWriter{}, 0).WriteHeartbeat(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write failure: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, net.ErrClosed }

func TestFrameWriterSmallCalls(t *testing.T) {
	var w countingWriter
	fw := NewFrameWriter(&w, 0)
	if err := fw.WriteProtocolHeader(); err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteHeartbeat(); err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteMethod(0, &ConnectionCloseOk{}); err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteFrame(Frame{Type: FrameBody, Channel: 2, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	want := ProtocolHeader + "\x08\x00\x00\x00\x00\x00\x00\xce" +
		"\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x33\xce" +
		"\x03\x00\x02\x00\x00\x00\x01x\xce"
	if w.String() != want || w.writes != 4 {
		t.Fatalf("wrote %q in %d writes", w.String(), w.writes)
	}
}
