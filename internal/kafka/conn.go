package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/drain"
)

// request is one decoded request and what is known of its sender.
type request struct {
	key, version int16
	corr         int32
	clientID     string
	kreq         kmsg.Request
	conn         *conn
}

// reply is a response in the making. The part of a request that must run in
// order with the connection's other requests (an append, for instance) runs
// in the handler; finish runs later, in the connection's writer, and may wait
// (for an fsync, or for fetch data). A nil finish, or a nil response from it,
// means no response is sent (Produce with acks=0).
type reply struct {
	finish func(ctx context.Context) kmsg.Response
	// release, if set, runs once the response has been written (or
	// dropped): it returns buffers the response borrowed.
	release func()
}

func now(resp kmsg.Response) reply {
	return reply{finish: func(context.Context) kmsg.Response { return resp }}
}

// handler serves one API key.
type handler struct {
	min, max int16
	serve    func(ctx context.Context, r *request) (reply, error)
}

type pending struct {
	req   *request
	reply reply
}

// conn is one client connection. The reader goroutine decodes requests and
// runs their handlers in arrival order; the writer goroutine finishes and
// writes the responses in the same order, so requests pipeline while
// responses stay in request order.
type conn struct {
	s      *Server
	nc     net.Conn
	rd     *drain.Reader // nc as the reader reads it; see stopReading
	queue  chan pending
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	idle   idleState // conn_read.go

	throttleUntil atomic.Int64 // Unix ns before which nothing more is read (memory alarm; alarms.go)

	sasl saslState // authentication (sasl.go); the reader goroutine's own
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{s: s, nc: nc, rd: drain.NewReader(nc, drainGrace), queue: make(chan pending, s.opts.MaxInFlight), ctx: ctx, cancel: cancel}
}

// drainGrace bounds how long, once the server stops reading, a request the
// client had begun to send may take to arrive in full.
const drainGrace = 2 * time.Second

// stopReading makes the reader read only the requests the client has
// already sent, then stop; every request read is still answered.
func (c *conn) stopReading() { c.rd.Stop() }

func (c *conn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	if !errors.Is(err, errStopped) {
		// The client is gone or broke the protocol: nobody waits for the
		// answers, so requests still waiting (a fetch's long poll) end now.
		c.cancel()
	}
	close(c.queue)
	<-writerDone
	c.cancel()
	c.nc.Close()
	if errors.Is(err, errIdle) {
		c.s.logger.Debug("closed an idle connection", "remote", c.nc.RemoteAddr().String(), "idle", c.s.opts.ConnectionsMaxIdle)
	} else if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errStopped) {
		c.s.logger.Debug("connection closed", "remote", c.nc.RemoteAddr().String(), "reason", err)
	}
}

var errStopped = errors.New("connection stopped")

func (c *conn) readLoop() error {
	for {
		if err := c.waitThrottle(); err != nil {
			return err
		}
		body, err := c.readRequest()
		if err != nil {
			return err
		}
		p, err := c.handle(body)
		if err != nil {
			return err
		}
		// A produce request's bytes are not kept once its batches are
		// appended, so they are recycled at once (a client that pipelines
		// produces and reads no answers pins none of them); other
		// requests may hand slices of their bytes to longer-lived state,
		// so theirs are not.
		if p.req != nil && p.req.key == 0 {
			p.req.kreq = nil // its records are slices of body
			c.s.bufs.put(body)
		}
		select {
		case c.queue <- p:
		case <-c.ctx.Done():
			return errStopped
		}
	}
}

// handle decodes one request and runs its handler. An error closes the
// connection, as Kafka does for a request it cannot parse.
func (c *conn) handle(body []byte) (p pending, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.s.logger.Error("panic serving a request; closing the connection", "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error")
		}
	}()
	rd := kbin.Reader{Src: body}
	r := &request{key: rd.Int16(), version: rd.Int16(), corr: rd.Int32(), conn: c}
	if id := rd.NullableString(); id != nil {
		r.clientID = *id
	}
	if !rd.Ok() {
		return p, fmt.Errorf("truncated request header")
	}
	h, ok := c.s.handlers[r.key]
	if !ok {
		return p, fmt.Errorf("unsupported API key %d", r.key)
	}
	if r.version < h.min || r.version > h.max {
		if r.key == 18 {
			// ApiVersions of an unknown version: a v0 answer with
			// UNSUPPORTED_VERSION and our range, so the client can retry.
			p.req, p.reply = r, now(c.s.unsupportedAPIVersions(r))
			return p, nil
		}
		return p, fmt.Errorf("API key %d version %d outside [%d, %d]", r.key, r.version, h.min, h.max)
	}
	if err := c.admitted(r.key); err != nil {
		return p, err
	}
	r.kreq = kmsg.RequestForKey(r.key)
	r.kreq.SetVersion(r.version)
	if r.kreq.IsFlexible() {
		kmsg.SkipTags(&rd)
		if !rd.Ok() {
			return p, fmt.Errorf("truncated request header tags")
		}
	}
	if err := r.kreq.ReadFrom(rd.Src); err != nil {
		return p, fmt.Errorf("decoding API key %d v%d: %w", r.key, r.version, err)
	}
	deny, patch := c.authorize(r)
	if deny != nil {
		return pending{req: r, reply: now(deny)}, nil
	}
	rep, err := h.serve(c.ctx, r)
	if err != nil {
		return p, err
	}
	if patch != nil && rep.finish != nil {
		finish := rep.finish
		rep.finish = func(ctx context.Context) kmsg.Response {
			resp := finish(ctx)
			if resp != nil {
				patch(resp)
			}
			return resp
		}
	}
	return pending{req: r, reply: rep}, nil
}

func (c *conn) writeLoop() {
	var buf []byte
	failed := false
	for p := range c.queue {
		c.writeOne(p, &buf, &failed)
		c.answered()
		if p.reply.release != nil {
			p.reply.release()
		}
	}
}

// writeOne finishes one reply and writes its response into buf and the
// socket.
func (c *conn) writeOne(p pending, bufp *[]byte, failed *bool) {
	if *failed || p.reply.finish == nil {
		return
	}
	resp := c.finish(p)
	if resp == nil {
		return
	}
	buf := *bufp
	if need := sizeHint(resp); cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = append(buf[:0], 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(p.req.corr))
	// Flexible responses carry header v1 (tagged fields), except
	// ApiVersions, whose response header is always v0.
	if resp.IsFlexible() && p.req.key != 18 {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	c.s.buffered.Add(int64(len(buf)))
	_, err := c.nc.Write(buf)
	c.s.buffered.Add(-int64(len(buf)))
	if err != nil {
		*failed = true
		c.cancel()
		c.nc.Close()
	}
	if cap(buf) > 16<<20 {
		buf = nil // do not keep a huge buffer for an idle connection
	}
	*bufp = buf
}

// sizeHint estimates the encoded size of a response whose bulk is record
// batches, so the encode buffer is allocated once instead of grown.
func sizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 256
	for _, t := range f.Topics {
		n += len(t.Topic) + 64
		for _, p := range t.Partitions {
			n += len(p.RecordBatches) + 96
		}
	}
	return n
}

func (c *conn) finish(p pending) (resp kmsg.Response) {
	defer func() {
		if v := recover(); v != nil {
			c.s.logger.Error("panic finishing a request; closing the connection", "panic", v, "stack", string(debug.Stack()))
			resp = nil
			c.cancel()
			c.nc.Close()
		}
	}()
	return p.reply.finish(c.ctx)
}
