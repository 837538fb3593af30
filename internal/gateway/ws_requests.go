package gateway

import (
	"context"
	"errors"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/hub"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/gateway/wsproto"
)

// maxInflight bounds the produce and publish requests of one connection
// waiting for durability; past it the reader waits, which pushes back on
// the client through TCP.
const maxInflight = 256

// handle answers one request.
func (c *wsConn) handle(req *wsproto.Request) {
	sess := c.sess.Load()
	if req.Type == wsproto.TypeAuth {
		c.handleAuth(req, sess)
		return
	}
	if sess == nil {
		c.replyError(req, service.Errorf(service.CodeUnauthorized, "authenticate first: send an auth request"))
		return
	}
	switch req.Type {
	case wsproto.TypePing:
		c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Pong: true}))
	case wsproto.TypeSend:
		f := wsproto.EncodeMessage(sess.ClientID, req.Group, false, req.Data)
		var n int
		if req.To != "" {
			n = c.ws.hub.SendToClient(req.To, f)
		} else {
			n = c.ws.hub.SendToGroup(req.Group, f)
		}
		c.ws.metrics.fanout.Add(int64(n))
		c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Delivered: &n}))
	case wsproto.TypeBroadcast:
		if !sess.Broadcast {
			c.replyError(req, service.Errorf(service.CodeForbidden, "client '%s' may not broadcast", sess.ClientID))
			return
		}
		n := c.ws.hub.Broadcast(wsproto.EncodeMessage(sess.ClientID, "", true, req.Data))
		c.ws.metrics.fanout.Add(int64(n))
		c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Delivered: &n}))
	case wsproto.TypeJoin:
		if err := c.ws.hub.Join(sess, req.Group); err != nil {
			if errors.Is(err, hub.ErrTooManyGroups) {
				c.replyError(req, service.Errorf(service.CodeInvalid, "a connection may be in at most %d groups", hub.MaxGroupsPerSession))
				return
			}
			c.replyError(req, service.AsError(err))
			return
		}
		c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID}))
	case wsproto.TypeLeave:
		if !c.ws.hub.Leave(sess, req.Group) {
			c.replyError(req, service.Errorf(service.CodeNotFound, "not in group '%s'", req.Group))
			return
		}
		c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID}))
	case wsproto.TypePresence:
		c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Members: c.ws.hub.Members(req.Group)}))
	case wsproto.TypeSubscribe:
		c.subscribe(req)
	case wsproto.TypeUnsubscribe:
		c.unsubscribe(req)
	case wsproto.TypeAck, wsproto.TypeNack:
		c.settle(req)
	case wsproto.TypeProduce:
		c.produce(req)
	case wsproto.TypePublish:
		c.publish(req)
	}
}

func (c *wsConn) handleAuth(req *wsproto.Request, sess *hub.Session) {
	if sess != nil {
		c.replyError(req, service.Errorf(service.CodeInvalid, "already authenticated as '%s'", sess.ClientID))
		return
	}
	var id identity
	var err error
	if req.Token != "" {
		id, err = c.ws.verifyToken(req.Token)
	} else {
		id, err = c.ws.verifyPassword(req.Username, req.Password, c.remote)
	}
	if err != nil {
		c.ws.metrics.authFailures.Add(1)
		c.ws.logger.Info("websocket login refused", "remote", c.remote, "err", err)
		c.replyError(req, service.Errorf(service.CodeUnauthorized, "authentication failed"))
		go c.closeAfterFlush(CloseAuthFailed, "authentication failed")
		return
	}
	release, ok := c.ws.opts.UserLimits.Acquire(id.clientID)
	if !ok {
		msg := c.ws.refuseUser(id.clientID, c.remote)
		c.Send(wsproto.EncodeError(req.ID, service.CodeLimitReached, msg))
		go c.closeAfterFlush(CloseLimit, "connection limit reached")
		return
	}
	c.releaseUser = release
	c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID}))
	c.login(id)
}

func (c *wsConn) replyError(req *wsproto.Request, err error) {
	e := service.AsError(err)
	c.Send(wsproto.EncodeError(req.ID, e.Code, e.Message))
}

// whenDurable runs reply once wait returns, in its own goroutine, so the
// reader goes on with the next request; at most maxInflight wait at once.
func (c *wsConn) whenDurable(wait func(context.Context) error, reply func(error)) {
	c.inflightSem()
	c.inflight.Add(1)
	go func() {
		defer c.inflight.Done()
		defer c.inflightRelease()
		reply(wait(c.ctx))
	}()
}

func (c *wsConn) inflightSem() {
	c.mu.Lock()
	if c.sem == nil {
		c.sem = make(chan struct{}, maxInflight)
	}
	sem := c.sem
	c.mu.Unlock()
	sem <- struct{}{}
}

func (c *wsConn) inflightRelease() { <-c.sem }

func (c *wsConn) produce(req *wsproto.Request) {
	if err := c.allowTopic(auth.Write, req.Topic); err != nil {
		c.replyError(req, err)
		return
	}
	rec := service.ProduceRecord{Partition: req.Partition, Key: req.Key, Value: req.Value, Timestamp: req.Timestamp}
	for _, h := range req.Headers {
		rec.Headers = append(rec.Headers, broker.Header{Key: h.Key, Value: h.Value})
	}
	pr, err := c.ws.svc.Append(c.ctx, req.Topic, []service.ProduceRecord{rec})
	if err != nil {
		c.replyError(req, err)
		return
	}
	var out []service.Produced
	c.whenDurable(func(ctx context.Context) error {
		var err error
		out, err = pr.Wait(ctx)
		return err
	}, func(err error) {
		if err != nil {
			c.replyError(req, err)
			return
		}
		c.ws.metrics.produced.Add(1)
		c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Partition: &out[0].Partition, Offset: &out[0].Offset}))
	})
}

func (c *wsConn) publish(req *wsproto.Request) {
	if err := c.allowExchange(auth.Write, req.Vhost, req.Exchange); err != nil {
		c.replyError(req, err)
		return
	}
	props, err := req.Properties.ToWire()
	if err != nil {
		c.replyError(req, err)
		return
	}
	res, err := c.ws.svc.Route(service.Publishing{
		Vhost: req.Vhost, Exchange: req.Exchange, RoutingKey: req.RoutingKey,
		Properties: props, Body: req.Body, Mandatory: req.Mandatory,
	})
	if err != nil {
		c.replyError(req, err)
		return
	}
	c.whenDurable(res.Wait, func(err error) {
		if err != nil {
			c.replyError(req, service.AsError(err))
			return
		}
		c.ws.metrics.published.Add(1)
		routed := res.Routed
		c.Send(wsproto.EncodeOK(wsproto.OK{ID: req.ID, Routed: &routed}))
	})
}
