package amqp

import (
	"context"
	"slices"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// txState is a channel in transactional mode (tx.select): publishes and
// settlements wait for tx.commit, which applies them in order and answers
// once the persistent messages are fsynced; tx.rollback drops the
// publishes and gives the settled deliveries back to the channel as
// unacknowledged, as RabbitMQ does. Deliveries and basic.get are not
// transactional. tx.commit-ok also means the transaction's acks and
// rejects are durable: they survive a crash.
type txState struct {
	publishes []txPublish
	settles   []txSettle
}

type txPublish struct {
	mandatory bool
	refs      []broker.QueueRef // the queues it was routed to when published
	keys      []string          // its routing keys: direct replies are delivered at commit
	msg       *broker.Message
}

type txSettle struct {
	ds []unackedEntry
	op settleOp
}

// settledDeliveries returns the deliveries the transaction would settle,
// for a channel closing with it open: they go back to their queues.
func (t *txState) settledDeliveries() []unackedEntry {
	var out []unackedEntry
	for _, s := range t.settles {
		out = append(out, s.ds...)
	}
	return out
}

func (ch *channel) txSelect() error {
	if ch.confirms != nil {
		return newCloseError(wire.ReplyPreconditionFailed, "cannot switch from confirm to tx mode")
	}
	if ch.tx == nil {
		ch.tx = &txState{}
	}
	return ch.c.sendMethod(ch.id, &wire.TxSelectOk{})
}

func (ch *channel) txCommit() error {
	if ch.tx == nil {
		return newCloseError(wire.ReplyPreconditionFailed, "channel is not transactional")
	}
	t := ch.tx
	ch.tx = &txState{}
	var durable []broker.PublishResult
	for _, p := range t.publishes {
		res, err := ch.c.b.EnqueueFrom(ch.c.vhost, p.msg.Exchange, p.refs, p.msg)
		if err != nil {
			return newCloseError(wire.ReplyInternalError, "tx.commit: %v", err)
		}
		res.Routed += ch.c.b.DirectReplies(ch.c.vhost, p.msg.Exchange, p.keys, p.msg)
		if res.Routed == 0 && p.mandatory && !res.Duplicate {
			ret := &wire.BasicReturn{ReplyCode: wire.ReplyNoRoute, ReplyText: "NO_ROUTE", Exchange: p.msg.Exchange, RoutingKey: p.msg.RoutingKey}
			if err := ch.c.sendMessage(ch.id, ret, p.msg.Properties, p.msg.Body); err != nil {
				return err
			}
		}
		if res.Durable() {
			durable = append(durable, res)
		}
	}
	for _, s := range t.settles {
		applySettle(s.ds, s.op)
	}
	if len(t.settles) > 0 {
		ch.afterSettle()
	}
	// The acks and rejects are for good once committed: a crash must not
	// bring those messages back.
	for _, q := range settledQueues(t.settles) {
		if err := q.PersistSettlements(); err != nil {
			return newCloseError(wire.ReplyInternalError, "tx.commit: storing acknowledgements: %v", err)
		}
	}
	for i := range durable {
		if err := durable[i].Wait(context.Background()); err != nil {
			return newCloseError(wire.ReplyInternalError, "tx.commit: storing messages: %v", err)
		}
	}
	return ch.c.sendMethod(ch.id, &wire.TxCommitOk{})
}

// settledQueues lists, once each, the queues of the deliveries that
// settles ack or discard (a requeue changes nothing on disk).
func settledQueues(settles []txSettle) []*broker.Queue {
	var qs []*broker.Queue
	for _, s := range settles {
		if s.op == opRequeue {
			continue
		}
		for _, e := range s.ds {
			if !slices.Contains(qs, e.d.Queue) {
				qs = append(qs, e.d.Queue)
			}
		}
	}
	return qs
}

func (ch *channel) txRollback() error {
	if ch.tx == nil {
		return newCloseError(wire.ReplyPreconditionFailed, "channel is not transactional")
	}
	t := ch.tx
	ch.tx = &txState{}
	if ds := t.settledDeliveries(); len(ds) > 0 {
		ch.mu.Lock()
		ch.unacked.restore(ds)
		ch.mu.Unlock()
	}
	return ch.c.sendMethod(ch.id, &wire.TxRollbackOk{})
}
