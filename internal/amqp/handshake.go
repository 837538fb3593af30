package amqp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// errAuthRefused ends a handshake whose login was refused.
var errAuthRefused = errors.New("amqp: login refused")

// handshake runs from the protocol header to connection.open-ok: start,
// authentication, tune, open. It sets the negotiated limits, user and
// vhost. On failure it has answered as the protocol wants (the supported
// protocol header, a connection.close, or nothing for a refused login
// from a client that did not ask for authentication_failure_close).
func (c *conn) handshake() error {
	deadline := time.Now().Add(c.s.opts.HandshakeTimeout)
	c.nc.SetDeadline(deadline)
	defer func() {
		c.nc.SetDeadline(time.Time{})
		if c.closing.Load() {
			// A connection.close crossed the handshake: keep its grace
			// period for close-ok.
			c.in.Finish(time.Now().Add(closeGrace))
		}
	}()
	if err := c.fr.ReadProtocolHeader(); err != nil {
		var he *wire.ProtocolHeaderError
		if errors.As(err, &he) {
			c.logger.Info("refused a connection with an unsupported protocol header", "err", err)
			c.nc.Write([]byte(wire.ProtocolHeader))
		}
		return err
	}
	err := c.sendMethod(0, &wire.ConnectionStart{
		VersionMajor: 0, VersionMinor: 9,
		ServerProperties: c.s.serverProperties(),
		Mechanisms:       "PLAIN AMQPLAIN",
		Locales:          "en_US",
	})
	if err != nil {
		return err
	}
	m, err := c.handshakeMethod()
	if err != nil {
		return err
	}
	startOk, ok := m.(*wire.ConnectionStartOk)
	if !ok {
		return c.failHandshake(newCloseError(wire.ReplyCommandInvalid, "expected connection.start-ok, got %s", m.Name()).forMethod(m))
	}
	authFailureClose := false
	if caps, ok := startOk.ClientProperties["capabilities"].(wire.Table); ok {
		authFailureClose, _ = caps["authentication_failure_close"].(bool)
		c.cancelNotify, _ = caps["consumer_cancel_notify"].(bool)
		c.blockedCap, _ = caps["connection.blocked"].(bool)
	}
	if err := c.authenticate(startOk, authFailureClose); err != nil {
		return err
	}

	heartbeat := uint16(0)
	if c.s.opts.Heartbeat > 0 {
		heartbeat = uint16(min(c.s.opts.Heartbeat/time.Second, 65535))
	}
	if err := c.sendMethod(0, &wire.ConnectionTune{ChannelMax: c.s.opts.ChannelMax, FrameMax: c.s.opts.FrameMax, Heartbeat: heartbeat}); err != nil {
		return err
	}
	if m, err = c.handshakeMethod(); err != nil {
		return err
	}
	tuneOk, ok := m.(*wire.ConnectionTuneOk)
	if !ok {
		return c.failHandshake(newCloseError(wire.ReplyCommandInvalid, "expected connection.tune-ok, got %s", m.Name()).forMethod(m))
	}
	if err := c.tune(tuneOk); err != nil {
		return c.failHandshake(err.forMethod(tuneOk))
	}

	if m, err = c.handshakeMethod(); err != nil {
		return err
	}
	open, ok := m.(*wire.ConnectionOpen)
	if !ok {
		return c.failHandshake(newCloseError(wire.ReplyCommandInvalid, "expected connection.open, got %s", m.Name()).forMethod(m))
	}
	if !c.b.VhostExists(open.VirtualHost) {
		return c.failHandshake(newCloseError(wire.ReplyNotAllowed, "vhost '%s' not found", open.VirtualHost).forMethod(open))
	}
	if !c.s.opts.Users.VhostAllowed(c.user, open.VirtualHost) {
		return c.failHandshake(newCloseError(wire.ReplyNotAllowed, "access to vhost '%s' refused for user '%s'", open.VirtualHost, c.user).forMethod(open))
	}
	if e := c.s.admit(c); e != nil {
		return c.failHandshake(e.forMethod(open))
	}
	c.vhost = open.VirtualHost
	return c.sendMethod(0, &wire.ConnectionOpenOk{})
}

// tune applies connection.tune-ok: the client may lower the limits offered,
// not raise them; zero means "no limit of mine", so the server's.
func (c *conn) tune(t *wire.ConnectionTuneOk) *closeError {
	switch {
	case t.FrameMax != 0 && t.FrameMax < wire.FrameMinSize:
		return newCloseError(wire.ReplyNotAllowed, "frame_max=%d < %d min size", t.FrameMax, wire.FrameMinSize)
	case t.FrameMax > c.s.opts.FrameMax:
		return newCloseError(wire.ReplyNotAllowed, "frame_max=%d > %d max size", t.FrameMax, c.s.opts.FrameMax)
	case t.ChannelMax > c.s.opts.ChannelMax:
		return newCloseError(wire.ReplyNotAllowed, "channel_max=%d > %d max", t.ChannelMax, c.s.opts.ChannelMax)
	}
	c.frameMax = c.s.opts.FrameMax
	if t.FrameMax != 0 {
		c.frameMax = t.FrameMax
	}
	c.channelMax = c.s.opts.ChannelMax
	if t.ChannelMax != 0 {
		c.channelMax = t.ChannelMax
	}
	c.heartbeat = time.Duration(t.Heartbeat) * time.Second
	c.fr.SetFrameMax(c.frameMax)
	return nil
}

// handshakeMethod reads the next method on channel 0, skipping heartbeats.
func (c *conn) handshakeMethod() (wire.Method, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			if _, ok := wire.ReplyCode(err); ok {
				return nil, c.failHandshake(asCloseError(err))
			}
			return nil, err
		}
		if c.closing.Load() {
			// Shutdown sent connection.close: the handshake is over, only
			// close-ok (or the client's own close) matters now.
			if c.closingFrame(f) {
				return nil, errConnClosed
			}
			continue
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type != wire.FrameMethod || f.Channel != 0 {
			return nil, c.failHandshake(newCloseError(wire.ReplyCommandInvalid, "frame type %d on channel %d during the handshake", f.Type, f.Channel))
		}
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			return nil, c.failHandshake(asCloseError(err))
		}
		if cl, ok := m.(*wire.ConnectionClose); ok {
			// The client gives up (a refused tune, say): answer and end.
			c.logger.Info("client closed the connection during the handshake", "code", cl.ReplyCode, "text", cl.ReplyText)
			c.closing.Store(true)
			c.sendMethod(0, &wire.ConnectionCloseOk{})
			return nil, errPeerClosed
		}
		return m, nil
	}
}

// failHandshake sends connection.close and waits a moment for close-ok.
func (c *conn) failHandshake(e *closeError) error {
	if !c.logRefusal(e) {
		c.logger.Info("handshake refused", "code", e.code, "text", e.text)
	}
	c.startClose(e)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil || c.closingFrame(f) {
			return e
		}
	}
}

// authenticate checks the start-ok response with its mechanism. A refused
// login is answered with connection.close 403 when the client announced
// authentication_failure_close, and by closing the socket otherwise.
func (c *conn) authenticate(s *wire.ConnectionStartOk, failureClose bool) error {
	var user, pass string
	var perr error
	switch s.Mechanism {
	case "PLAIN":
		user, pass, perr = parsePlain(s.Response)
	case "AMQPLAIN":
		user, pass, perr = parseAMQPlain(s.Response)
	default:
		return c.failHandshake(newCloseError(wire.ReplyCommandInvalid, "unknown authentication mechanism '%s'", s.Mechanism).forMethod(s))
	}
	if perr != nil {
		return c.failHandshake(newCloseError(wire.ReplySyntaxError, "%s response: %v", s.Mechanism, perr).forMethod(s))
	}
	u, err := c.s.opts.Users.Authenticate(user, pass, c.nc.RemoteAddr())
	if err != nil {
		c.logger.Warn("login refused", "mechanism", s.Mechanism, "err", err)
		if failureClose {
			c.failHandshake(newCloseError(wire.ReplyAccessRefused, "Login was refused using authentication mechanism %s. For details see the broker logfile.", s.Mechanism).forMethod(s))
		}
		return errAuthRefused
	}
	c.user = u.Name
	return nil
}

// parsePlain reads a SASL PLAIN response: [authzid] NUL authcid NUL passwd.
func parsePlain(resp string) (string, string, error) {
	parts := bytes.Split([]byte(resp), []byte{0})
	if len(parts) != 3 {
		return "", "", fmt.Errorf("want authzid NUL user NUL password, got %d fields", len(parts))
	}
	return string(parts[1]), string(parts[2]), nil
}

// parseAMQPlain reads an AMQPLAIN response: a field table without its
// length prefix, holding LOGIN and PASSWORD.
func parseAMQPlain(resp string) (string, string, error) {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(resp)))
	t, err := wire.DecodeTable(append(b, resp...))
	if err != nil {
		return "", "", err
	}
	user, ok1 := t["LOGIN"].(string)
	pass, ok2 := t["PASSWORD"].(string)
	if !ok1 || !ok2 {
		return "", "", errors.New("LOGIN and PASSWORD must be long strings")
	}
	return user, pass, nil
}
