package wire

import (
	"bytes"
	"testing"
)

func methodFrame(t testing.TB, channel uint16, m Method) Frame {
	t.Helper()
	p, err := m.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Frame{Type: FrameMethod, Channel: channel, Payload: p}
}

func headerFrame(t testing.TB, classID uint16, size uint64, props Properties) Frame {
	t.Helper()
	p, err := AppendContentHeader(nil, &ContentHeader{ClassID: ClassBasic, BodySize: size, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	p[0], p[1] = byte(classID>>8), byte(classID)
	return Frame{Type: FrameHeader, Channel: 1, Payload: p}
}

func bodyFrame(s string) Frame { return Frame{Type: FrameBody, Channel: 1, Payload: []byte(s)} }

func TestAssemblerCommands(t *testing.T) {
	a := NewAssembler(100)
	c, done, err := a.Add(methodFrame(t, 1, &QueueDeclare{Queue: "q"}))
	if err != nil || !done || c.Method.(*QueueDeclare).Queue != "q" || c.Body != nil {
		t.Fatalf("method without content: %+v %v %v", c, done, err)
	}
	steps := []Frame{
		methodFrame(t, 1, &BasicPublish{RoutingKey: "q"}),
		headerFrame(t, ClassBasic, 11, Properties{ContentType: "text/plain"}),
		bodyFrame("hello "),
		bodyFrame(""),
		bodyFrame("world"),
	}
	for i, f := range steps {
		c, done, err = a.Add(f)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if done != (i == len(steps)-1) {
			t.Fatalf("step %d: done %v", i, done)
		}
		if !done && !a.Pending() {
			t.Fatalf("step %d: not pending", i)
		}
	}
	if string(c.Body) != "hello world" || c.Properties.ContentType != "text/plain" || c.Method.(*BasicPublish).RoutingKey != "q" {
		t.Fatalf("assembled %+v", c)
	}
	if a.Pending() {
		t.Fatal("pending after a complete command")
	}
	// An empty body completes at the header.
	if _, done, _ := a.Add(methodFrame(t, 1, &BasicPublish{})); done {
		t.Fatal("done at the method")
	}
	c, done, err = a.Add(headerFrame(t, ClassBasic, 0, Properties{}))
	if err != nil || !done || len(c.Body) != 0 {
		t.Fatalf("empty body: %+v %v %v", c, done, err)
	}
}

func TestAssemblerErrors(t *testing.T) {
	publish := methodFrame(t, 1, &BasicPublish{})
	header := func(size uint64) Frame { return headerFrame(t, ClassBasic, size, Properties{}) }
	cases := []struct {
		name   string
		frames []Frame
		code   uint16
		cause  error
		method [2]uint16
	}{
		{"body first", []Frame{bodyFrame("x")}, ReplyUnexpectedFrame, ErrUnexpectedFrame, [2]uint16{}},
		{"header first", []Frame{header(1)}, ReplyUnexpectedFrame, ErrUnexpectedFrame, [2]uint16{}},
		{"heartbeat", []Frame{{Type: FrameHeartbeat}}, ReplyUnexpectedFrame, ErrUnexpectedFrame, [2]uint16{}},
		{"method instead of header", []Frame{publish, methodFrame(t, 1, &BasicAck{})}, ReplyUnexpectedFrame, ErrUnexpectedFrame, [2]uint16{60, 40}},
		{"body instead of header", []Frame{publish, bodyFrame("x")}, ReplyUnexpectedFrame, ErrUnexpectedFrame, [2]uint16{60, 40}},
		{"method instead of body", []Frame{publish, header(2), bodyFrame("x"), publish}, ReplyUnexpectedFrame, ErrUnexpectedFrame, [2]uint16{60, 40}},
		{"header instead of body", []Frame{publish, header(2), header(2)}, ReplyUnexpectedFrame, ErrUnexpectedFrame, [2]uint16{60, 40}},
		{"header of another class", []Frame{publish, headerFrame(t, ClassQueue, 1, Properties{})}, ReplyUnexpectedFrame, ErrUnexpectedFrame, [2]uint16{60, 40}},
		{"body too long", []Frame{publish, header(2), bodyFrame("xyz")}, ReplyFrameError, ErrBodyTooLong, [2]uint16{60, 40}},
		{"too large", []Frame{publish, header(101)}, ReplyPreconditionFailed, ErrContentTooLarge, [2]uint16{60, 40}},
		{"bad header", []Frame{publish, {Type: FrameHeader, Payload: []byte{0, 60}}}, ReplyFrameError, ErrTruncated, [2]uint16{60, 40}},
		{"bad method", []Frame{{Type: FrameMethod, Payload: []byte{0, 60, 0, 40}}}, ReplyFrameError, ErrTruncated, [2]uint16{60, 40}},
	}
	for _, c := range cases {
		a := NewAssembler(100)
		var err error
		for i, f := range c.frames {
			_, _, err = a.Add(f)
			if i < len(c.frames)-1 && err != nil {
				t.Fatalf("%s: frame %d: %v", c.name, i, err)
			}
		}
		e := wantCode(t, err, c.code, c.cause)
		if e.ClassID != c.method[0] || e.MethodID != c.method[1] {
			t.Fatalf("%s: error names %d/%d", c.name, e.ClassID, e.MethodID)
		}
		if a.Pending() {
			t.Fatalf("%s: still pending after an error", c.name)
		}
		// The assembler takes a new command after the error.
		if _, done, err := a.Add(methodFrame(t, 1, &BasicAck{})); err != nil || !done {
			t.Fatalf("%s: next command: %v", c.name, err)
		}
	}
	if IsHardError(ReplyPreconditionFailed) {
		t.Fatal("content too large must be a channel error")
	}
}

// TestAssemblerGrowsWithData checks that a header claiming a large body
// does not allocate ahead of the bytes that arrive.
func TestAssemblerGrowsWithData(t *testing.T) {
	a := NewAssembler(0)
	a.Add(methodFrame(t, 1, &BasicPublish{}))
	if _, _, err := a.Add(headerFrame(t, ClassBasic, 1<<40, Properties{})); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 1000)
	for range 5 {
		if _, _, err := a.Add(Frame{Type: FrameBody, Payload: chunk}); err != nil {
			t.Fatal(err)
		}
	}
	if c := cap(a.body); c > 2*5000 {
		t.Fatalf("body buffer of %d bytes for 5000 received", c)
	}
	// The body handed out is not reused by the next command.
	a.Reset()
	a.Add(methodFrame(t, 1, &BasicPublish{}))
	a.Add(headerFrame(t, ClassBasic, 3, Properties{}))
	c1, _, _ := a.Add(bodyFrame("abc"))
	a.Add(methodFrame(t, 1, &BasicPublish{}))
	a.Add(headerFrame(t, ClassBasic, 3, Properties{}))
	a.Add(bodyFrame("xyz"))
	if string(c1.Body) != "abc" {
		t.Fatalf("first body became %q", c1.Body)
	}
}
