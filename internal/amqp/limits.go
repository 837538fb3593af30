package amqp

import (
	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// The connection and channel limits, answered as RabbitMQ answers them:
// connection.open beyond the listener's or the user's connection limit is
// refused with connection.close 530 NOT_ALLOWED, and so is a channel
// beyond the negotiated channel_max. Frame and message sizes are enforced
// by the frame reader and the content assembler (501 and 406); their
// errors carry the limit's setting (asCloseError). Every refusal writes
// one log line, at most one per kind per interval.

// admit takes a slot of the listener's connection limit and one of the
// user's for c, at connection.open; the slots are freed by release when
// the connection ends. A refusal is a 530 closeError.
func (s *Server) admit(c *conn) *closeError {
	freeConn, ok := s.gate.Acquire()
	if !ok {
		e := newCloseError(wire.ReplyNotAllowed, "connection refused: listener connection limit (%d) is reached", s.gate.Max())
		e.limit = "limits.amqp_max_connections"
		return e
	}
	freeUser, ok := s.opts.UserLimits.Acquire(c.user)
	if !ok {
		freeConn()
		e := newCloseError(wire.ReplyNotAllowed, "connection refused for user '%s': user connection limit (%d) is reached", c.user, s.opts.UserLimits.Max())
		e.limit = "limits.max_connections_per_user"
		return e
	}
	s.mu.Lock()
	s.admitted[c] = func() { freeUser(); freeConn() }
	s.mu.Unlock()
	return nil
}

// release frees the slots admit took for c, if it took any.
func (s *Server) release(c *conn) {
	s.mu.Lock()
	free := s.admitted[c]
	delete(s.admitted, c)
	s.mu.Unlock()
	if free != nil {
		free()
	}
}

// channelMaxError refuses a frame on a channel above the negotiated
// channel_max: a connection error, 530 NOT_ALLOWED, as RabbitMQ refuses a
// channel beyond channel_max.
func channelMaxError(channel, channelMax uint16) *closeError {
	e := newCloseError(wire.ReplyNotAllowed, "channel %d is above the negotiated channel_max (%d): at most %d channels can be open", channel, channelMax, channelMax)
	e.limit = "limits.amqp_channel_max"
	return e
}

// logRefusal writes the log line of a limit refusal through the server's
// sampler, and reports whether e was one (then the caller writes no line
// of its own). A refusal the core has logged writes nothing more.
func (c *conn) logRefusal(e *closeError) bool {
	switch {
	case e.quiet:
		return true
	case e.limit == "":
		return false
	}
	c.s.refusals.Warn(e.limit, "refused: limit reached",
		"conn", c.id, "remote", c.nc.RemoteAddr().String(), "user", c.user, "code", e.code, "text", e.text, "setting", e.limit)
	return true
}
