package wire

// Command is a method with its content, when it carries content.
type Command struct {
	Method Method
	// Properties and Body are the content of a method with content
	// (Method.HasContent), zero otherwise. Body belongs to the caller.
	Properties Properties
	// RawProperties are the same properties as they came on the wire
	// (property flags, then the fields present), to store and send on
	// without encoding them again.
	RawProperties []byte
	Body          []byte
}

// Assembler turns the frames of one channel into commands: a method frame,
// and after a method with content a content header frame and body frames
// until the header's body size is reached.
//
// Frame sequence errors are *Error values with reply code UNEXPECTED_FRAME
// (505): a header or body frame with no content pending, any other frame
// while a header or body is awaited, a header of another class than its
// method. Body frames beyond the body size are a FRAME_ERROR (501). A body
// size above the maximum message size is ErrContentTooLarge with reply code
// PRECONDITION_FAILED (406), a soft error: the channel is closed, the
// connection stays. Method and header decoding errors are those of
// DecodeMethod and DecodeContentHeader. Errors carry the class and method
// of the pending command, and leave the assembler ready for a new command.
//
// The body buffer grows with the bytes received, never ahead of them to the
// size the header claims. An Assembler is not safe for concurrent use.
type Assembler struct {
	maxBody uint64

	method    Method // content method awaiting its content, or nil
	gotHeader bool
	props     Properties
	rawProps  []byte
	size      uint64
	body      []byte
}

// NewAssembler returns an assembler that refuses bodies larger than
// maxBodySize bytes (0: no limit).
func NewAssembler(maxBodySize uint64) *Assembler {
	return &Assembler{maxBody: maxBodySize}
}

// Pending reports whether a method with content is waiting for its header
// or body.
func (a *Assembler) Pending() bool { return a.method != nil }

// Reset drops a pending command.
func (a *Assembler) Reset() {
	*a = Assembler{maxBody: a.maxBody}
}

// Add takes the next frame of the channel. It returns the command and true
// when the frame completes one, false while more frames are needed.
func (a *Assembler) Add(f Frame) (Command, bool, error) {
	if a.method == nil {
		return a.start(f)
	}
	if !a.gotHeader {
		if f.Type != FrameHeader {
			return a.fail(protoErr(ReplyUnexpectedFrame, ErrUnexpectedFrame, "%s while expecting a content header", frameName(f.Type)))
		}
		h, err := DecodeContentHeader(f.Payload)
		if err != nil {
			return a.fail(err.(*Error)) // DecodeContentHeader returns only *Error values
		}
		if h.ClassID != a.method.ClassID() {
			return a.fail(protoErr(ReplyUnexpectedFrame, ErrUnexpectedFrame, "content header of class %d", h.ClassID))
		}
		if a.maxBody > 0 && h.BodySize > a.maxBody {
			return a.fail(protoErr(ReplyPreconditionFailed, ErrContentTooLarge, "message size %d is larger than the maximum %d", h.BodySize, a.maxBody))
		}
		a.gotHeader, a.props, a.size = true, h.Properties, h.BodySize
		a.rawProps = append([]byte(nil), f.Payload[contentHeaderFixed:]...)
		if a.size == 0 {
			return a.complete()
		}
		return Command{}, false, nil
	}
	if f.Type != FrameBody {
		return a.fail(protoErr(ReplyUnexpectedFrame, ErrUnexpectedFrame, "%s while expecting a content body", frameName(f.Type)))
	}
	left := a.size - uint64(len(a.body))
	if uint64(len(f.Payload)) > left {
		return a.fail(protoErr(ReplyFrameError, ErrBodyTooLong, "%d bytes in a body frame, %d left of %d", len(f.Payload), left, a.size))
	}
	if need := len(a.body) + len(f.Payload); need > cap(a.body) {
		grown := make([]byte, len(a.body), min(uint64(max(need, 2*cap(a.body))), a.size))
		copy(grown, a.body)
		a.body = grown
	}
	a.body = append(a.body, f.Payload...)
	if uint64(len(a.body)) == a.size {
		return a.complete()
	}
	return Command{}, false, nil
}

// start handles a frame with no command pending: it must be a method frame.
func (a *Assembler) start(f Frame) (Command, bool, error) {
	if f.Type != FrameMethod {
		return Command{}, false, protoErr(ReplyUnexpectedFrame, ErrUnexpectedFrame, "%s with no content method before it", frameName(f.Type))
	}
	m, err := DecodeMethod(f.Payload)
	if err != nil {
		return Command{}, false, err
	}
	if !m.HasContent() {
		return Command{Method: m}, true, nil
	}
	a.method = m
	return Command{}, false, nil
}

func (a *Assembler) complete() (Command, bool, error) {
	c := Command{Method: a.method, Properties: a.props, RawProperties: a.rawProps, Body: a.body}
	a.Reset()
	return c, true, nil
}

// fail resets the assembler and returns err, naming the pending method.
func (a *Assembler) fail(err *Error) (Command, bool, error) {
	if err.ClassID == 0 {
		err.ClassID, err.MethodID = a.method.ClassID(), a.method.MethodID()
	}
	a.Reset()
	return Command{}, false, err
}

// frameName names a frame type for error messages.
func frameName(t uint8) string {
	switch t {
	case FrameMethod:
		return "method frame"
	case FrameHeader:
		return "content header frame"
	case FrameBody:
		return "content body frame"
	case FrameHeartbeat:
		return "heartbeat frame"
	}
	return "frame of unknown type"
}
