package amqp

import (
	"errors"

	"github.com/wharfmq/wharf/internal/amqp/tables"
	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// publish is basic.publish with its content. In a transaction the message
// waits for tx.commit; otherwise it is routed now. In confirm mode it gets
// the next sequence number, confirmed once routed and, if it went to a
// durable queue's log, once that is fsynced. A request's reply_to of
// amq.rabbitmq.reply-to becomes the channel's reply name (replyto.go).
func (ch *channel) publish(m *wire.BasicPublish, cmd *wire.Command) error {
	if m.Immediate {
		return newCloseError(wire.ReplyNotImplemented, "immediate=true")
	}
	if uid := cmd.Properties.UserID; uid != "" && uid != ch.c.user {
		return newCloseError(wire.ReplyPreconditionFailed, "user_id property set to '%s' but authenticated user was '%s'", uid, ch.c.user)
	}
	if e := cmd.Properties.Expiration; e != "" {
		if _, err := broker.ParseExpiration(e); err != nil {
			return newCloseError(wire.ReplyPreconditionFailed, "%v", err)
		}
	}
	props := cmd.RawProperties
	p := cmd.Properties
	replyTo, rewrite, err := ch.replyTo(p.ReplyTo)
	if err != nil {
		return err
	}
	if rewrite {
		p.ReplyTo = replyTo
	}
	headers := cmd.Properties.Headers
	keys, bcc := tables.RoutingKeys(m.RoutingKey, headers)
	if bcc {
		// BCC keys route the message but are not delivered with it.
		p.Headers = tables.WithoutBCC(headers)
		rewrite = true
	}
	if rewrite {
		enc, err := wire.EncodeProperties(&p)
		if err != nil {
			return newCloseError(wire.ReplySyntaxError, "message properties: %v", err)
		}
		props = enc
	}
	msg := &broker.Message{
		Exchange:   m.Exchange,
		RoutingKey: m.RoutingKey,
		Properties: props,
		Body:       cmd.Body,
		Persistent: cmd.Properties.DeliveryMode == 2,
		Timestamp:  ch.c.s.opts.Now().UnixMilli(),
	}
	var routeHeaders broker.Table
	if len(headers) > 0 {
		routeHeaders = tables.ToBroker(headers)
	}
	if ch.tx != nil {
		x, ok := ch.c.b.LookupExchange(ch.c.vhost, m.Exchange)
		if !ok {
			return newCloseError(wire.ReplyNotFound, "no exchange '%s' in vhost '%s'", m.Exchange, ch.c.vhost)
		}
		if x.Internal {
			// Refused now, as RabbitMQ does: at tx.commit the publishes
			// before it would already have been routed.
			return newCloseError(wire.ReplyAccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", m.Exchange, ch.c.vhost)
		}
		// Routed now, as in RabbitMQ, and enqueued at commit: a later
		// change to the exchanges cannot split the transaction.
		refs, err := ch.c.b.Route(ch.c.vhost, m.Exchange, keys, routeHeaders)
		if err != nil {
			return err
		}
		ch.tx.publishes = append(ch.tx.publishes, txPublish{mandatory: m.Mandatory, refs: refs, keys: keys, msg: msg})
		return nil
	}
	res, err := ch.route(m.Mandatory, keys, routeHeaders, msg)
	if ch.confirms == nil {
		return err
	}
	ch.publishes++
	if err != nil {
		var me *broker.ModelError
		if errors.As(err, &me) {
			return err // the channel closes; RabbitMQ confirms nothing then either
		}
		ch.c.logger.Error("publish failed; nacking", "channel", ch.id, "exchange", m.Exchange, "err", err)
		ch.confirms.add(ch.publishes, nil, err)
		return nil
	}
	ch.confirms.add(ch.publishes, &res, nil)
	return nil
}

// route publishes a message and returns it with basic.return 312 NO_ROUTE
// if it is mandatory and reached no queue.
func (ch *channel) route(mandatory bool, keys []string, headers broker.Table, msg *broker.Message) (broker.PublishResult, error) {
	res, err := ch.c.b.Publish(ch.c.vhost, msg.Exchange, keys, headers, msg)
	if err != nil {
		var me *broker.ModelError
		if !errors.As(err, &me) && ch.confirms == nil {
			ch.c.logger.Error("publish failed", "channel", ch.id, "exchange", msg.Exchange, "err", err)
		}
		return res, err
	}
	if res.Routed == 0 && mandatory && !res.Duplicate {
		ret := &wire.BasicReturn{ReplyCode: wire.ReplyNoRoute, ReplyText: "NO_ROUTE", Exchange: msg.Exchange, RoutingKey: msg.RoutingKey}
		if err := ch.c.sendMessage(ch.id, ret, msg.Properties, msg.Body); err != nil && err != errConnClosed {
			return res, err
		}
	}
	return res, nil
}

// ack is basic.ack: tag with multiple settles every delivery up to it (0:
// all of them). An unknown tag is 406 PRECONDITION_FAILED.
func (ch *channel) ack(tag uint64, multiple bool) error {
	ds, err := ch.takeDeliveries(tag, multiple)
	if err != nil {
		return err
	}
	if ch.tx != nil {
		ch.tx.settles = append(ch.tx.settles, txSettle{ds: ds, op: opAck})
		return nil
	}
	settleByQueue(ds, (*broker.Queue).Ack)
	ch.noteSettled(ds)
	ch.afterSettle()
	return nil
}

// reject is basic.reject and basic.nack: back to the queue (in order,
// marked redelivered) with requeue, else dropped.
func (ch *channel) reject(tag uint64, multiple, requeue bool, m wire.Method) error {
	ds, err := ch.takeDeliveries(tag, multiple)
	if err != nil {
		return err
	}
	op := opDiscard
	if requeue {
		op = opRequeue
	}
	if ch.tx != nil {
		ch.tx.settles = append(ch.tx.settles, txSettle{ds: ds, op: op})
		return nil
	}
	applySettle(ds, op)
	if op == opDiscard {
		ch.noteSettled(ds)
	}
	ch.afterSettle()
	return nil
}

// takeDeliveries removes the deliveries an ack, nack or reject names.
func (ch *channel) takeDeliveries(tag uint64, multiple bool) ([]unackedEntry, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if multiple {
		if tag == 0 {
			return creditStreams(ch.unacked.takeAll()), nil
		}
		if !ch.unacked.has(tag) {
			return nil, newCloseError(wire.ReplyPreconditionFailed, "unknown delivery tag %d", tag)
		}
		return creditStreams(ch.unacked.takeUpTo(tag, nil)), nil
	}
	e, ok := ch.unacked.take(tag)
	if !ok {
		return nil, newCloseError(wire.ReplyPreconditionFailed, "unknown delivery tag %d", tag)
	}
	return creditStreams([]unackedEntry{e}), nil
}

// afterSettle lets queues waiting on the channel's shared prefetch deliver
// again: a settlement in one queue frees credit for the others. (A
// consumer's own prefetch needs no kick: its queue dispatches as it
// settles.)
func (ch *channel) afterSettle() {
	if ch.shared.Limit() > 0 {
		ch.kickQueues()
	}
}

type settleOp int

const (
	opAck settleOp = iota
	opRequeue
	opDiscard
)

func applySettle(ds []unackedEntry, op settleOp) {
	switch op {
	case opAck:
		settleByQueue(ds, (*broker.Queue).Ack)
	case opRequeue:
		settleByQueue(ds, (*broker.Queue).Requeue)
	case opDiscard:
		settleByQueue(ds, (*broker.Queue).Discard)
	}
}

// recover is basic.recover (and the deprecated recover-async): every
// unacknowledged delivery of the channel goes back to its queue. RabbitMQ
// does not implement requeue=false, and neither does Wharf.
func (ch *channel) recover(requeue, reply bool) error {
	if !requeue {
		return newCloseError(wire.ReplyNotImplemented, "requeue=false")
	}
	ch.mu.Lock()
	ds := creditStreams(ch.unacked.takeAll())
	ch.mu.Unlock()
	requeueByQueue(ds)
	if !reply {
		return nil
	}
	return ch.c.sendMethod(ch.id, &wire.BasicRecoverOk{})
}
