package broker

import (
	"errors"
	"time"
)

// Dead-lettering, with RabbitMQ's semantics for classic queues: a queue
// with x-dead-letter-exchange republishes the messages it drops because
// they were rejected (basic.reject or basic.nack without requeue), expired
// or pushed out by a length limit, to that exchange, with
// x-dead-letter-routing-key or else the message's own routing keys. The
// message gains an x-death entry per (queue, reason), counted, most recent
// first, and the x-first-death-* and x-last-death-* headers; a per-message
// expiration is removed (kept as the entry's original-expiration) so the
// message does not expire again. Dead-lettering is at most once: the
// message leaves its queue whether or not it reaches another. A message
// that would come back to a queue it was already dead-lettered from,
// without a rejection since, is dropped (a cycle).
//
// The queue collects dead letters under its lock and publishes them once
// it has released it (unlock), so that a dead letter routed back to the
// same queue, or to one whose consumer shares a channel, cannot deadlock.

// Reasons a message is dead-lettered, as x-death records them.
const (
	deathRejected = "rejected"
	deathExpired  = "expired"
	deathMaxLen   = "maxlen"
)

// deadLetter is a message a queue dropped, to be republished.
type deadLetter struct {
	msg    *Message
	reason string
}

// dlxConfig is a queue's dead-letter exchange and routing key.
type dlxConfig struct {
	exchange   string
	routingKey string
	hasKey     bool
}

// queueDLX reads a queue's dead-lettering arguments; nil if it has none.
func queueDLX(args Table) *dlxConfig {
	x, ok := args["x-dead-letter-exchange"].(string)
	if !ok {
		return nil
	}
	c := &dlxConfig{exchange: x}
	c.routingKey, c.hasKey = args["x-dead-letter-routing-key"].(string)
	return c
}

// deadLetterLocked hands a message the queue is dropping for reason to
// the dead-letter exchange, if the queue has one. The caller settles it.
func (q *Queue) deadLetterLocked(m *queued, reason string) {
	if q.dlx == nil || q.onDead == nil {
		return
	}
	msg := m.msg
	if msg == nil && q.store != nil {
		var err error
		if msg, err = q.store.load(m.offset); err != nil {
			q.store.logger.Error("a stored message to dead-letter cannot be read back; dropping it", "queue", q.Name, "vhost", q.Vhost, "offset", m.offset, "err", err)
			return
		}
	}
	if msg != nil {
		q.dead = append(q.dead, deadLetter{msg: msg, reason: reason})
	}
}

// unlock releases the queue's lock, then publishes the dead letters
// collected under it.
func (q *Queue) unlock() {
	dead := q.dead
	q.dead = nil
	dlx := q.dlx
	q.mu.Unlock()
	if len(dead) > 0 {
		q.onDead(q, dlx, dead)
	}
}

// deadLetter republishes dead letters of q to its dead-letter exchange.
// A message that cannot be rewritten or routed is dropped and logged.
func (b *Broker) deadLetter(q *Queue, dlx *dlxConfig, dead []deadLetter) {
	for _, dl := range dead {
		if err := b.deadLetterOne(q, dlx, dl); err != nil {
			b.logger.Warn("a dead-lettered message was dropped", "vhost", q.Vhost, "queue", q.Name,
				"reason", dl.reason, "dead_letter_exchange", dlx.exchange, "err", err)
		}
	}
}

func (b *Broker) deadLetterOne(q *Queue, dlx *dlxConfig, dl deadLetter) error {
	msg, keys, headers, err := deadLetterMessage(q.Name, dlx, dl, b.opts.Now())
	if err != nil {
		return err
	}
	refs, err := b.Route(q.Vhost, dlx.exchange, keys, headers)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil // no such exchange: RabbitMQ drops the message too
		}
		return err
	}
	if dl.reason != deathRejected {
		deaths, _ := headers["x-death"].([]any)
		refs = deleteCycles(refs, deaths)
	}
	if len(refs) == 0 {
		return nil
	}
	_, err = b.Enqueue(refs, msg)
	return err
}

// deleteCycles removes the queues the message would cycle back to: a
// queue already in its x-death with no rejection in the deaths since (and
// including) that one.
func deleteCycles(refs []QueueRef, deaths []any) []QueueRef {
	out := refs[:0]
	for _, r := range refs {
		if !isDeathCycle(r.Name, deaths) {
			out = append(out, r)
		}
	}
	return out
}

func isDeathCycle(queue string, deaths []any) bool {
	for _, d := range deaths {
		t, ok := asTable(d)
		if !ok {
			return false
		}
		if t["reason"] == deathRejected {
			return false
		}
		if t["queue"] == queue {
			return true
		}
	}
	return false
}

// deadLetterMessage is the message dl becomes when queue dead-letters it:
// the new message, the routing keys to publish it with, and its headers.
func deadLetterMessage(queue string, dlx *dlxConfig, dl deadLetter, now time.Time) (*Message, []string, Table, error) {
	old := dl.msg
	bp, err := splitProperties(old.Properties)
	if err != nil {
		return nil, nil, nil, err
	}
	headers, err := bp.headers()
	if err != nil {
		return nil, nil, nil, err
	}
	if headers == nil {
		headers = Table{}
	}
	// The keys the message was published with: its routing key and its
	// CC keys (BCC ones were removed when it was published).
	keys := []string{old.RoutingKey}
	if cc, ok := headers["CC"].([]any); ok {
		for _, k := range cc {
			if s, ok := k.(string); ok {
				keys = append(keys, s)
			}
		}
	}
	routingKeys := make([]any, len(keys))
	for i, k := range keys {
		routingKeys[i] = k
	}
	death := Table{
		"reason":       dl.reason,
		"queue":        queue,
		"time":         time.Unix(now.Unix(), 0).UTC(),
		"exchange":     old.Exchange,
		"routing-keys": routingKeys,
	}
	if e := bp.fields[propIndexExpiration]; e != nil {
		death["original-expiration"] = string(e[1:])
		bp.fields[propIndexExpiration] = nil
	}
	deaths, _ := headers["x-death"].([]any)
	var rest []any
	found := false
	for _, d := range deaths {
		t, ok := asTable(d)
		if !found && ok && t["queue"] == queue && t["reason"] == dl.reason {
			found = true
			n := int64(1)
			if _, mag, ok := intValue(t["count"]); ok {
				n = int64(mag) + 1
			}
			death = Table{}
			for k, v := range t {
				death[k] = v
			}
			death["count"] = n
			continue
		}
		rest = append(rest, d)
	}
	if !found {
		death["count"] = int64(1)
	}
	headers["x-death"] = append([]any{death}, rest...)
	if _, ok := headers["x-first-death-reason"]; !ok {
		headers["x-first-death-reason"] = dl.reason
		headers["x-first-death-queue"] = queue
		headers["x-first-death-exchange"] = old.Exchange
	}
	headers["x-last-death-reason"] = dl.reason
	headers["x-last-death-queue"] = queue
	headers["x-last-death-exchange"] = old.Exchange
	if dlx.hasKey {
		keys = []string{dlx.routingKey}
		delete(headers, "CC")
	}
	enc, err := appendWireTable(nil, headers, 1)
	if err != nil {
		return nil, nil, nil, err
	}
	bp.fields[propIndexHeaders] = enc
	msg := &Message{
		Exchange:   dlx.exchange,
		RoutingKey: keys[0],
		Properties: bp.encode(),
		Body:       old.Body,
		Persistent: old.Persistent,
		Timestamp:  now.UnixMilli(),
	}
	return msg, keys, headers, nil
}
