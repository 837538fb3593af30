package amqp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/drain"
)

// closeGrace is how long the server waits for connection.close-ok (or for
// its last frames to leave) before it closes the socket anyway.
const closeGrace = 2 * time.Second

// conn is one AMQP connection. Its reader goroutine (serve) does the
// handshake, then reads frames and handles them in order; the writer
// goroutine (writeLoop) sends the outbox; the heartbeat goroutine keeps the
// link alive and notices a silent peer.
type conn struct {
	s      *Server
	b      *broker.Broker
	nc     net.Conn
	id     string // owner id of exclusive queues
	logger *slog.Logger
	in     *drain.Reader // nc as the reader reads it: drained on shutdown
	br     *bufio.Reader // in, buffered; fr reads it (NewFrameReader keeps a bufio.Reader this size, so br holds all read-ahead)
	fr     *wire.FrameReader

	// Negotiated in the handshake, then read-only.
	frameMax   uint32
	channelMax uint16
	heartbeat  time.Duration
	vhost      string
	user       string
	// Client capabilities.
	cancelNotify bool

	chMu     sync.RWMutex // guards the map; the reader alone changes it
	channels map[uint16]*channel

	out              outbox
	throttled        atomic.Bool   // a consumer found the outbox busy
	readerWaiting    atomic.Bool   // the reader waits for the outbox to drain
	drained          chan struct{} // capacity 1: the writer tells the reader
	reads            atomic.Uint64 // frames read, for heartbeats
	missedHeartbeats atomic.Bool

	// Resource alarms (alarms.go).
	blockedCap    bool        // the client announced the connection.blocked capability
	publisher     atomic.Bool // a basic.publish was read: the connection publishes
	readerBlocked atomic.Bool // the reader waits for the alarms to clear; heartbeats are not expected
	blockMu       sync.Mutex
	blockedSent   bool // connection.blocked sent and connection.unblocked not yet; guarded by blockMu

	closing    atomic.Bool   // connection.close sent; awaiting close-ok
	opened     atomic.Bool   // the handshake has completed
	quit       chan struct{} // closed when the connection is done: stops writer and heartbeats
	writerDone chan struct{}
}

func newConn(s *Server, nc net.Conn, id string) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &conn{
		s: s, b: s.b, nc: nc, id: id,
		logger:     s.logger.With("conn", id, "remote", nc.RemoteAddr().String()),
		frameMax:   s.opts.FrameMax,
		channelMax: s.opts.ChannelMax,
		channels:   map[uint16]*channel{},
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		drained:    make(chan struct{}, 1),
	}
	c.out.wake = make(chan struct{}, 1)
	c.in = drain.NewReader(nc, closeGrace)
	c.br = bufio.NewReaderSize(c.in, 64<<10)
	c.fr = wire.NewFrameReader(c.br, s.opts.FrameMax)
	return c
}

// serve runs the connection to its end.
func (c *conn) serve() {
	go c.writeLoop()
	defer c.finish()
	if err := c.handshake(); err != nil {
		c.logger.Debug("handshake failed", "err", err)
		return
	}
	c.logger.Info("connection opened", "user", c.user, "vhost", c.vhost, "heartbeat", c.heartbeat, "frame_max", c.frameMax, "channel_max", c.channelMax)
	c.opened.Store(true)
	go c.heartbeatLoop(c.heartbeat)
	go c.consumerTimeoutLoop()
	for {
		if !c.waitOutbox() {
			return
		}
		if c.br.Buffered() == 0 && (!c.in.Stopping() || !c.midCommand()) {
			c.in.AtBoundary()
		}
		f, err := c.fr.ReadFrame()
		if errors.Is(err, drain.ErrDrained) {
			c.closeDrained()
			continue
		}
		if err != nil {
			if _, ok := wire.ReplyCode(err); ok && !c.closing.Load() {
				// The stream cannot be trusted past a bad frame: say why,
				// let it leave, and hang up.
				c.closeWith(asCloseError(err))
				return
			}
			c.logReadEnd(err)
			return
		}
		c.reads.Add(1)
		if c.closing.Load() {
			if c.closingFrame(f) {
				return
			}
			continue
		}
		if err := c.handleFrame(f); err != nil {
			if errors.Is(err, errPeerClosed) {
				return
			}
			c.closeWith(asCloseError(err))
		}
		if isPublish(f) && !c.closing.Load() {
			c.blockWhileAlarmed()
		}
	}
}

var errPeerClosed = errors.New("amqp: peer closed the connection")

func (c *conn) logReadEnd(err error) {
	switch {
	case c.missedHeartbeats.Load():
		c.logger.Warn("connection closed: missed heartbeats")
	case c.closing.Load():
		c.logger.Debug("connection closed while closing", "err", err)
	case errors.Is(err, io.EOF):
		c.logger.Info("client closed the socket without connection.close")
	default:
		c.logger.Info("connection lost", "err", err)
	}
}

// closingFrame handles a frame read after connection.close was sent: only
// close-ok (or the peer's own close) matters. It reports whether the
// connection is done.
func (c *conn) closingFrame(f wire.Frame) bool {
	if f.Type != wire.FrameMethod || f.Channel != 0 {
		return false
	}
	m, err := wire.DecodeMethod(f.Payload)
	if err != nil {
		return false
	}
	switch m.(type) {
	case *wire.ConnectionCloseOk:
		return true
	case *wire.ConnectionClose:
		c.sendMethod(0, &wire.ConnectionCloseOk{})
		return true
	}
	return false
}

// closeWith starts closing the connection with a hard error (a soft one is
// a server bug, and is sent as 541): every channel is torn down, and the
// reader then waits closeGrace for close-ok.
func (c *conn) closeWith(e *closeError) {
	if !e.hard() {
		e = &closeError{code: wire.ReplyInternalError, text: shortString("INTERNAL_ERROR - channel error on the connection: " + e.text), classID: e.classID, methodID: e.methodID}
	}
	switch {
	case c.logRefusal(e):
	case e.code == wire.ReplyInternalError:
		c.logger.Error("closing connection", "code", e.code, "text", e.text)
	default:
		c.logger.Warn("closing connection", "code", e.code, "text", e.text)
	}
	c.startClose(e)
}

// shutdown is Shutdown's way out, from any goroutine. An open connection's
// reader reads what the client has already sent, then closeDrained closes
// the connection; one still in its handshake gets connection.close 320 at
// once.
func (c *conn) shutdown() {
	if !c.opened.Load() {
		c.startClose(newCloseError(wire.ReplyConnectionForced, "broker shutdown"))
		return
	}
	c.in.Stop()
}

// closeDrained runs in the reader once a shutdown has read everything the
// client sent before it: every publish read is confirmed, then
// connection.close 320 CONNECTION_FORCED goes out (its unacknowledged
// messages go back to their queues when the connection ends).
func (c *conn) closeDrained() {
	if c.closing.Load() {
		c.in.Finish(time.Now().Add(closeGrace)) // closing already: wait for close-ok
		return
	}
	c.chMu.RLock()
	var confirmers []*confirmer
	for _, ch := range c.channels {
		if ch.confirms != nil {
			confirmers = append(confirmers, ch.confirms)
		}
	}
	c.chMu.RUnlock()
	for _, f := range confirmers {
		f.flush(c.s.forced)
	}
	c.startClose(newCloseError(wire.ReplyConnectionForced, "broker shutdown"))
}

// midCommand reports whether a channel holds part of a command (a publish
// whose content frames have not all arrived): the input is then not at a
// boundary where a shutdown may stop reading.
func (c *conn) midCommand() bool {
	c.chMu.RLock()
	defer c.chMu.RUnlock()
	for _, ch := range c.channels {
		if ch.asm.Pending() {
			return true
		}
	}
	return false
}

func (c *conn) startClose(e *closeError) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.sendMethod(0, &wire.ConnectionClose{ReplyCode: e.code, ReplyText: e.text, FailingClassID: e.classID, FailingMethodID: e.methodID})
	c.in.Finish(time.Now().Add(closeGrace))
}

// finish tears the connection down: channels (their consumers cancelled,
// unacknowledged messages requeued), exclusive queues, then the writer
// drains and the socket closes.
func (c *conn) finish() {
	c.chMu.Lock()
	chans := c.channels
	c.channels = map[uint16]*channel{}
	c.chMu.Unlock()
	for _, ch := range chans {
		ch.teardown()
	}
	if err := c.b.ConnectionClosed(context.Background(), c.id); err != nil {
		c.logger.Warn("deleting exclusive queues", "err", err)
	}
	close(c.quit)
	select {
	case <-c.writerDone:
	case <-time.After(closeGrace):
	}
	c.nc.Close()
	<-c.writerDone
	c.logger.Debug("connection closed")
}

// handleFrame handles one frame after the handshake.
func (c *conn) handleFrame(f wire.Frame) error {
	if f.Type == wire.FrameHeartbeat {
		return nil
	}
	if f.Channel == 0 {
		return c.handleChannel0(f)
	}
	if f.Channel > c.channelMax {
		return channelMaxError(f.Channel, c.channelMax)
	}
	c.chMu.RLock()
	ch := c.channels[f.Channel]
	c.chMu.RUnlock()
	if ch == nil {
		return c.openChannel(f)
	}
	ch.rmu.Lock()
	defer ch.rmu.Unlock()
	return ch.handleFrame(f)
}

// handleChannel0 handles connection-class methods after the handshake.
func (c *conn) handleChannel0(f wire.Frame) error {
	if f.Type != wire.FrameMethod {
		return newCloseError(wire.ReplyUnexpectedFrame, "content frame on channel 0")
	}
	m, err := wire.DecodeMethod(f.Payload)
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case *wire.ConnectionClose:
		c.logger.Info("client closed the connection", "code", m.ReplyCode, "text", m.ReplyText)
		c.closing.Store(true)
		c.persistSettlements()
		c.sendMethod(0, &wire.ConnectionCloseOk{})
		return errPeerClosed
	case *wire.ConnectionBlocked, *wire.ConnectionUnblocked:
		return nil // a client may tell us; nothing to do
	case *wire.ConnectionUpdateSecret:
		return newCloseError(wire.ReplyNotImplemented, "connection.update-secret is not supported").forMethod(m)
	}
	if m.ClassID() == wire.ClassConnection {
		return newCloseError(wire.ReplyCommandInvalid, "%s is not expected after the handshake", m.Name()).forMethod(m)
	}
	return newCloseError(wire.ReplyCommandInvalid, "%s on channel 0", m.Name()).forMethod(m)
}

// openChannel handles a frame on a channel that is not open: only
// channel.open is allowed.
func (c *conn) openChannel(f wire.Frame) error {
	if f.Type == wire.FrameMethod {
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			return err
		}
		if _, ok := m.(*wire.ChannelOpen); ok {
			ch := newChannel(c, f.Channel)
			c.chMu.Lock()
			c.channels[f.Channel] = ch
			c.chMu.Unlock()
			return c.sendMethod(f.Channel, &wire.ChannelOpenOk{})
		}
		return newCloseError(wire.ReplyChannelError, "expected 'channel.open' on channel %d, got %s", f.Channel, m.Name()).forMethod(m)
	}
	return newCloseError(wire.ReplyChannelError, "expected 'channel.open' on channel %d", f.Channel)
}

// removeChannel forgets a closed channel so its number can be reused.
func (c *conn) removeChannel(id uint16) {
	c.chMu.Lock()
	delete(c.channels, id)
	c.chMu.Unlock()
}

// kickConsumers asks every queue this connection consumes from to deliver
// again, once the outbox has drained.
func (c *conn) kickConsumers() {
	for _, ch := range c.openChannels() {
		ch.kickQueues()
	}
}

// openChannels returns the open channels, in no order.
func (c *conn) openChannels() []*channel {
	c.chMu.RLock()
	defer c.chMu.RUnlock()
	chans := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chans = append(chans, ch)
	}
	return chans
}
