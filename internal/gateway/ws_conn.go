package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wharfmq/wharf/internal/gateway/hub"
	"github.com/wharfmq/wharf/internal/gateway/wsproto"
)

// wsConn is one WebSocket session.
//
// Goroutines: the HTTP handler's goroutine reads and handles requests in
// order; a writer goroutine runs only while the outbox has frames (an idle
// connection has none); a ping runs in a short-lived goroutine started by a
// timer; each topic subscription partition has a reader goroutine; and
// produce and publish replies wait for durability in their own goroutines,
// so a reply may overtake an earlier one (match them by id).
//
// Lock order: a queue's lock (Deliver runs under it) before c.mu and
// sub.mu; c.mu is never held while calling into the hub, the broker or the
// library.
type wsConn struct {
	ws     *WebSocket
	c      *websocket.Conn
	remote string
	ctx    context.Context
	cancel context.CancelFunc

	sess     atomic.Pointer[hub.Session]
	authOnce sync.Once
	// id is the session's identity (ws_access.go), set by login before
	// the session is stored.
	id identity
	// releaseUser gives back the user's connection slot; set before the
	// session runs (handshake login) or by handleAuth on the reader
	// goroutine, called by finish on the same goroutine.
	releaseUser func()

	mu        sync.Mutex
	out       []wsproto.Frame
	outBytes  int
	writing   bool
	closing   bool
	closeSent bool
	room      chan struct{} // closed when outBytes falls to the low mark

	subsMu sync.Mutex
	subs   map[string]subscription
	subSeq int

	pingTimer *time.Timer
	lastPing  atomic.Int64   // unix ns of the last ping sent; 0 before the first
	lastPong  atomic.Int64   // unix ns of the last pong received
	inflight  sync.WaitGroup // produce and publish replies still waiting
	sem       chan struct{}  // bounds inflight; made on first use
}

func newWSConn(ws *WebSocket, c *websocket.Conn, remote string) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsConn{ws: ws, c: c, remote: remote, ctx: ctx, cancel: cancel, subs: map[string]subscription{}}
}

// lowMark is the outbox size below which producers (subscriptions) may add
// more.
func (c *wsConn) lowMark() int { return c.ws.opts.OutboxBytes / 2 }

// Send queues a frame without blocking. A frame that would take the outbox
// past its bound closes the connection as slow, with 4001.
func (c *wsConn) Send(f wsproto.Frame) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if queued := c.outBytes; queued+len(f.Data) > c.ws.opts.OutboxBytes && queued > 0 {
		c.closing = true
		c.mu.Unlock()
		c.ws.metrics.slowClients.Add(1)
		c.ws.logger.Info("closing a slow websocket client", "remote", c.remote, "outbox_bytes", queued)
		go c.closeNow(CloseSlowClient, "slow client: outbound buffer full")
		return false
	}
	c.out = append(c.out, f)
	c.outBytes += len(f.Data)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writer()
	}
	return true
}

// busy reports whether the outbox is above its low mark: subscriptions
// hold back until it drains.
func (c *wsConn) busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outBytes > c.lowMark()
}

// sendFlow queues a frame of a subscription: it waits, instead of closing
// the connection, until the frame fits under the outbox's low mark (or the
// outbox is empty), so subscriptions never push a connection past its
// bound; a slow reader makes them lag. It returns false when the
// connection is closing or ctx ends.
func (c *wsConn) sendFlow(ctx context.Context, f wsproto.Frame) bool {
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return false
		}
		if c.outBytes == 0 || c.outBytes+len(f.Data) <= c.lowMark() {
			c.out = append(c.out, f)
			c.outBytes += len(f.Data)
			start := !c.writing
			c.writing = true
			c.mu.Unlock()
			if start {
				go c.writer()
			}
			return true
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		ch := c.room
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// writer sends the outbox until it is empty, then ends.
func (c *wsConn) writer() {
	for {
		c.mu.Lock()
		batch := c.out
		c.out = nil
		if len(batch) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		n := 0
		_ = c.c.SetWriteDeadline(time.Now().Add(writeTimeout))
		for i, f := range batch {
			typ := websocket.TextMessage
			if f.Binary {
				typ = websocket.BinaryMessage
			}
			if err := c.c.WriteMessage(typ, f.Data); err != nil {
				c.cancel()
				c.mu.Lock()
				c.writing = false
				c.out = nil
				c.mu.Unlock()
				return
			}
			n += len(f.Data)
			batch[i] = wsproto.Frame{}
		}
		c.mu.Lock()
		wasBusy := c.outBytes > c.lowMark()
		c.outBytes -= n
		nowFree := wasBusy && c.outBytes <= c.lowMark()
		var room chan struct{}
		if c.outBytes <= c.lowMark() && c.room != nil {
			room, c.room = c.room, nil
		}
		c.mu.Unlock()
		if room != nil {
			close(room)
		}
		if nowFree {
			c.kickQueues()
		}
	}
}

// writeTimeout bounds the writes of one batch of frames: a client that
// takes longer is not reading, and its outbox fills and closes it anyway.
const writeTimeout = 30 * time.Second

// schedulePing arms the next ping.
func (c *wsConn) schedulePing() {
	c.c.SetPongHandler(func(string) error {
		c.lastPong.Store(time.Now().UnixNano())
		return nil
	})
	c.pingTimer = time.AfterFunc(c.ws.opts.PingInterval, c.ping)
}

// ping runs every ping interval: if the previous ping got no pong, the
// client is gone (4008); otherwise it sends the next ping.
func (c *wsConn) ping() {
	if c.ctx.Err() != nil {
		return
	}
	if sent := c.lastPing.Load(); sent != 0 && c.lastPong.Load() < sent {
		c.ws.logger.Info("websocket client did not answer a ping; closing", "remote", c.remote)
		c.closeNow(ClosePingTimeout, "no pong")
		return
	}
	c.lastPing.Store(time.Now().UnixNano())
	if err := c.c.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.ws.opts.PingInterval)); err != nil {
		c.cancelAndClose()
		return
	}
	c.pingTimer.Reset(c.ws.opts.PingInterval)
}

// cancelAndClose ends the connection at once, without a close frame.
func (c *wsConn) cancelAndClose() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.cancel()
	_ = c.c.Close()
}

// closeWith starts the close handshake: no more frames are queued, the
// close frame goes out, and TCP is closed when the client answers with its
// own (the reader then ends) or after CloseTimeout.
func (c *wsConn) closeWith(code int, reason string) {
	c.mu.Lock()
	already := c.closing && c.closeSent
	c.closing, c.closeSent = true, true
	c.mu.Unlock()
	if already {
		return
	}
	deadline := time.Now().Add(c.ws.opts.CloseTimeout)
	if err := c.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline); err != nil {
		c.cancelAndClose()
		return
	}
	time.AfterFunc(c.ws.opts.CloseTimeout, c.cancelAndClose)
}

// closeNow is closeWith for a client that is failing.
func (c *wsConn) closeNow(code int, reason string) {
	c.closeWith(code, reason)
}

// closeAfterFlush is closeWith once what is already queued has been sent
// (at most CloseTimeout), so that a last reply reaches the client before
// the close frame.
func (c *wsConn) closeAfterFlush(code int, reason string) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	deadline := time.Now().Add(c.ws.opts.CloseTimeout)
	for time.Now().Before(deadline) && c.ctx.Err() == nil {
		c.mu.Lock()
		idle := !c.writing
		c.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.closeWith(code, reason)
}

// serve runs the session until the connection ends.
func (c *wsConn) serve(id identity, authed bool) {
	defer c.finish()
	c.schedulePing()
	switch {
	case authed:
		c.login(id)
	case c.ws.opts.Anonymous:
		c.login(identity{clientID: "anon-" + randomID()})
	default:
		t := time.AfterFunc(c.ws.opts.AuthTimeout, func() {
			if c.sess.Load() == nil {
				c.closeWith(CloseAuthTimeout, "authentication required")
			}
		})
		defer t.Stop()
	}
	for {
		typ, data, err := c.c.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			c.ws.refusals.Warn("message size", "websocket closed: frame larger than the maximum (1009)",
				"remote", c.remote, "limit", c.ws.opts.MaxMessageBytes, "setting", "websocket.max_message_bytes")
			c.drainAfterTooBig()
			return
		}
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) && c.ctx.Err() == nil {
				c.ws.logger.Debug("websocket read ended", "remote", c.remote, "err", err)
			}
			return
		}
		c.ws.metrics.framesIn.Add(1)
		var req *wsproto.Request
		if typ == websocket.BinaryMessage {
			req, err = wsproto.DecodeBinary(data)
		} else {
			req, err = wsproto.Decode(data)
		}
		if err != nil {
			var pe *wsproto.Error
			id := ""
			if errors.As(err, &pe) {
				id = pe.ID
			}
			c.Send(wsproto.EncodeError(id, "invalid_argument", err.Error()))
			continue
		}
		c.handle(req)
	}
}

// drainAfterTooBig ends the close handshake of a frame over the read
// limit. The library has sent the close frame (1009, message too big) and
// reads no more; the rest of the oversized frame is still arriving, and
// closing the socket with it unread would reset the connection before
// the client reads the 1009. So the socket is drained, until the client
// answers and hangs up or for at most CloseTimeout and a bounded number
// of bytes, and only then closed.
func (c *wsConn) drainAfterTooBig() {
	c.mu.Lock()
	c.closing, c.closeSent = true, true
	c.mu.Unlock()
	nc := c.c.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(c.ws.opts.CloseTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, c.ws.opts.MaxMessageBytes+1<<20))
}

// login registers the session with the hub and greets the client.
func (c *wsConn) login(id identity) {
	c.authOnce.Do(func() {
		c.id = id
		sess := c.ws.hub.Add(id.clientID, id.broadcast, c)
		c.sess.Store(sess)
		c.Send(wsproto.EncodeWelcome(id.clientID, sess.ID, int(c.ws.opts.PingInterval/time.Second), int(c.ws.opts.MaxMessageBytes)))
	})
}

// finish tears the session down: subscriptions end (unacknowledged queue
// messages go back to their queues), the hub forgets the session, and the
// connection is closed if it is not already.
func (c *wsConn) finish() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.cancel()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	c.subsMu.Lock()
	subs := c.subs
	c.subs = map[string]subscription{}
	c.subsMu.Unlock()
	for _, s := range subs {
		s.stop(context.Background())
	}
	if sess := c.sess.Load(); sess != nil {
		c.ws.hub.Remove(sess)
	}
	c.inflight.Wait()
	_ = c.c.Close()
	if c.releaseUser != nil {
		c.releaseUser()
	}
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
