package wire

// Method is one AMQP method: a struct per method of the specification
// (ConnectionStart, BasicPublish, ExchangeDeclare, ...), always used through
// a pointer. The set is closed: only the generated types implement it.
type Method interface {
	// ClassID and MethodID are the method's ids on the wire.
	ClassID() uint16
	MethodID() uint16
	// Name is the specification's name, such as "basic.publish".
	Name() string
	// HasContent reports whether a content header and body frames follow
	// the method (basic.publish, basic.return, basic.deliver, basic.get-ok).
	HasContent() bool
	// Synchronous reports whether the specification marks the method as a
	// request that the peer answers with a reply method.
	Synchronous() bool
	// AppendTo appends the method frame payload: class id, method id and
	// the arguments.
	AppendTo(b []byte) ([]byte, error)

	write(e *encoder)
	read(d *decoder)
}

// appendMethod is AppendTo for every method type.
func appendMethod(b []byte, m Method) ([]byte, error) {
	e := encoder{buf: b}
	e.short(m.ClassID())
	e.short(m.MethodID())
	m.write(&e)
	if e.err != nil {
		return b, &encodeError{name: m.Name(), err: e.err}
	}
	return e.buf, nil
}

// DecodeMethod decodes a method frame payload: class id, method id and the
// arguments, which must fill the payload exactly. Errors are *Error values:
// an unknown class or method is NOT_IMPLEMENTED (540), a payload too short
// for the arguments or with bytes left over is a FRAME_ERROR (501), and an
// illegal field-table value is a SYNTAX_ERROR (502). The method holds no
// reference to payload.
func DecodeMethod(payload []byte) (Method, error) {
	d := decoder{buf: payload}
	classID := d.short()
	methodID := d.short()
	if d.err != nil {
		return nil, d.err
	}
	m := newMethod(classID, methodID)
	if m == nil {
		if ClassName(classID) == "" {
			return nil, protoErr(ReplyNotImplemented, ErrUnknownClass, "class %d (method %d)", classID, methodID)
		}
		e := protoErr(ReplyNotImplemented, ErrUnknownMethod, "method %d of class %s", methodID, ClassName(classID))
		e.ClassID, e.MethodID = classID, methodID
		return nil, e
	}
	m.read(&d)
	if err := d.finish(); err != nil {
		e := err.(*Error) // the decoder records only *Error values
		e.ClassID, e.MethodID = classID, methodID
		return nil, e
	}
	return m, nil
}

// encodeError is a failure to encode a method or content the server built.
type encodeError struct {
	name string
	err  error
}

func (e *encodeError) Error() string { return "amqp: encode " + e.name + ": " + e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }
