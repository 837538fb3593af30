package amqp

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// RabbitMQ's direct reply-to. A requester consumes from the pseudo-queue
// replyQueue in no-ack mode and publishes requests with reply_to set to
// replyQueue; the channel rewrites it to the name of its reply consumer,
// broker.DirectReplyPrefix and an opaque random token. A reply published
// to the default exchange with that name as routing key, from any
// connection or the gateway, reaches the consumer through the broker's
// DirectReplier hook (replyRegistry) without a queue: at most once, never
// stored, dropped when the requester is gone or cannot take it now.

// replyQueue is the pseudo-queue of direct reply-to.
const replyQueue = "amq.rabbitmq.reply-to"

// replyConsumer is a channel's consumer of replyQueue.
type replyConsumer struct {
	tag  string
	name string // broker.DirectReplyPrefix + token: the rewritten reply_to
}

// replyRegistry maps the names of reply consumers to their channels; the
// server registers it with the broker as its DirectReplier.
type replyRegistry struct {
	mu     sync.RWMutex
	byName map[string]*channel
}

func newReplyRegistry() *replyRegistry {
	return &replyRegistry{byName: map[string]*channel{}}
}

func (r *replyRegistry) add(name string, ch *channel) {
	r.mu.Lock()
	r.byName[name] = ch
	r.mu.Unlock()
}

func (r *replyRegistry) remove(name string) {
	r.mu.Lock()
	delete(r.byName, name)
	r.mu.Unlock()
}

func (r *replyRegistry) lookup(vhost, name string) *channel {
	r.mu.RLock()
	ch := r.byName[name]
	r.mu.RUnlock()
	if ch == nil || ch.c.vhost != vhost {
		return nil
	}
	return ch
}

// DirectReply delivers a reply to the channel consuming as name, if it
// still is and its connection can take it now.
func (r *replyRegistry) DirectReply(vhost, name string, msg *broker.Message) bool {
	ch := r.lookup(vhost, name)
	return ch != nil && ch.deliverReply(name, msg)
}

// exists reports whether name is a live reply consumer's name in vhost.
func (r *replyRegistry) exists(vhost, name string) bool {
	return r.lookup(vhost, name) != nil
}

// newReplyName makes the name of a new reply consumer.
func newReplyName() string {
	var t [18]byte
	rand.Read(t[:])
	return broker.DirectReplyPrefix + base64.RawURLEncoding.EncodeToString(t[:])
}

// consumeReply is basic.consume on replyQueue, with RabbitMQ's refusals:
// a consumer that would acknowledge, and a second one on the channel, are
// 406 PRECONDITION_FAILED.
func (ch *channel) consumeReply(m *wire.BasicConsume, tag string) error {
	if !m.NoAck {
		return newCloseError(wire.ReplyPreconditionFailed, "reply consumer cannot acknowledge")
	}
	if ch.direct != nil {
		return newCloseError(wire.ReplyPreconditionFailed, "reply consumer already set")
	}
	rc := &replyConsumer{tag: tag, name: newReplyName()}
	if !m.NoWait {
		if err := ch.c.sendMethod(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag}); err != nil {
			return err
		}
	}
	// Registered after consume-ok: no reply can precede it.
	ch.mu.Lock()
	ch.direct = rc
	ch.mu.Unlock()
	ch.c.s.replies.add(rc.name, ch)
	return nil
}

// cancelReply ends the channel's reply consumer, if it has one; replies to
// its name are dropped from then on.
func (ch *channel) cancelReply() {
	ch.mu.Lock()
	rc := ch.direct
	ch.direct = nil
	ch.mu.Unlock()
	if rc != nil {
		ch.c.s.replies.remove(rc.name)
	}
}

// deliverReply sends a direct reply to the channel's reply consumer, if it
// is still the one named. A reply is never buffered: while the channel's
// flow is off or its connection's outbox is full, it is dropped.
func (ch *channel) deliverReply(name string, msg *broker.Message) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed || ch.direct == nil || ch.direct.name != name || ch.flowOff.Load() || ch.c.out.pending.Load() > outboxHigh {
		return false
	}
	ch.nextTag++
	err := ch.c.sendMessage(ch.id, &wire.BasicDeliver{ConsumerTag: ch.direct.tag, DeliveryTag: ch.nextTag, Exchange: msg.Exchange, RoutingKey: msg.RoutingKey}, msg.Properties, msg.Body)
	if err != nil {
		if err != errConnClosed {
			ch.c.logger.Error("encoding a direct reply", "channel", ch.id, "err", err)
		}
		return false
	}
	return true
}

// replyTo is the reply_to a request published on the channel carries:
// replyQueue becomes the name of the channel's reply consumer, and without
// one the publish is 406 PRECONDITION_FAILED, as in RabbitMQ. ok is false
// when reply_to stays as it is.
func (ch *channel) replyTo(replyTo string) (name string, ok bool, err error) {
	if replyTo != replyQueue {
		return "", false, nil
	}
	if ch.direct == nil {
		return "", false, newCloseError(wire.ReplyPreconditionFailed, "fast reply consumer does not exist")
	}
	return ch.direct.name, true, nil
}

// declareReply answers queue.declare of a name beginning with replyQueue,
// which is always passive, as in RabbitMQ: replyQueue itself and a live
// reply consumer's name exist (no messages, one consumer); anything else
// is 404 NOT_FOUND.
func (ch *channel) declareReply(m *wire.QueueDeclare) error {
	name := m.Queue
	if name != replyQueue && !(strings.HasPrefix(name, broker.DirectReplyPrefix) && ch.c.s.replies.exists(ch.c.vhost, name)) {
		return newCloseError(wire.ReplyNotFound, "no queue '%s' in vhost '%s'", name, ch.c.vhost)
	}
	ch.lastQueue = name
	return ch.reply(m.NoWait, &wire.QueueDeclareOk{Queue: name, MessageCount: 0, ConsumerCount: 1})
}
