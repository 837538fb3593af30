package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/wharfmq/wharf/internal/storage"
)

// Message and queue TTL, with RabbitMQ's semantics: a message's expiry is
// fixed when it enters a queue, from the lower of the queue's
// x-message-ttl and the message's expiration property (a string of
// milliseconds). An expired message is dropped only when it reaches the
// head of the queue (on delivery, basic.get, a declare's message count, or
// the periodic sweep), never from the middle; a requeued message keeps its
// expiry. With a TTL of 0 a message is delivered if a consumer can take it
// as it arrives, and expires otherwise.

// ParseExpiration checks a message's expiration property as RabbitMQ does:
// a non-negative integer count of milliseconds, in decimal.
func ParseExpiration(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("invalid expiration '%s': %w", s, err)
	case n < 0:
		return 0, fmt.Errorf("invalid expiration '%s': %w", s, errNegativeExpiration)
	}
	return n, nil
}

var errNegativeExpiration = errors.New("value_negative")

// Property flags of the basic class, in the order the fields follow them.
const (
	propContentType     = 1 << 15
	propContentEncoding = 1 << 14
	propHeaders         = 1 << 13
	propDeliveryMode    = 1 << 12
	propPriority        = 1 << 11
	propCorrelationID   = 1 << 10
	propReplyTo         = 1 << 9
	propExpiration      = 1 << 8
)

// propertyExpiration reads the expiration property from encoded basic
// properties, without decoding the rest. ok is false when it is absent or
// not a valid TTL.
func propertyExpiration(props []byte) (ttl int64, ok bool) {
	p, ok := propertyAt(props, propExpiration)
	if !ok || len(p) == 0 || len(p) < 1+int(p[0]) {
		return 0, false
	}
	n, err := ParseExpiration(string(p[1 : 1+int(p[0])]))
	return n, err == nil
}

// propertyAt returns encoded basic properties (the flags, then the fields
// present) from where the field of flag want starts. ok is false when the
// field is absent or the fields before it are malformed. want is
// expiration or a field before it.
func propertyAt(props []byte, want uint16) ([]byte, bool) {
	if len(props) < 2 {
		return nil, false
	}
	flags := binary.BigEndian.Uint16(props)
	if flags&want == 0 {
		return nil, false
	}
	p := props[2:]
	for flags&1 != 0 { // more flag words follow (none are defined)
		if len(p) < 2 {
			return nil, false
		}
		flags = binary.BigEndian.Uint16(p)
		p = p[2:]
	}
	for _, f := range []uint16{propContentType, propContentEncoding, propHeaders, propDeliveryMode, propPriority, propCorrelationID, propReplyTo} {
		if f <= want {
			break
		}
		if flags&f == 0 {
			continue
		}
		var n int
		switch f {
		case propHeaders:
			if len(p) < 4 {
				return nil, false
			}
			n = 4 + int(binary.BigEndian.Uint32(p))
		case propDeliveryMode, propPriority:
			n = 1
		default:
			if len(p) == 0 {
				return nil, false
			}
			n = 1 + int(p[0])
		}
		if n > len(p) {
			return nil, false
		}
		p = p[n:]
	}
	return p, true
}

// queueTTL returns a queue's x-message-ttl in milliseconds, -1 if none.
func queueTTL(args Table) int64 {
	v, ok := args["x-message-ttl"]
	if !ok {
		return -1
	}
	neg, mag, ok := intValue(v)
	if !ok || neg {
		return -1
	}
	return int64(mag)
}

// expiryFor returns when msg, arriving at arrival (ms since the epoch),
// expires in this queue: 0 for never. A nil msg (recovered paged out) has
// only the queue's TTL.
func (q *Queue) expiryFor(msg *Message, arrival int64) int64 {
	ttl := q.ttl
	if msg != nil {
		if e, ok := propertyExpiration(msg.Properties); ok && (ttl < 0 || e < ttl) {
			ttl = e
		}
	}
	if ttl < 0 {
		return 0
	}
	return max(1, arrival+ttl)
}

// expiredLocked reports whether m has expired at now (ms). A message
// that arrived with no time to live (graceTTL, x-message-ttl 0) has one
// chance to be delivered: as it arrives, or, if it is stored, when
// awaitDurable dispatches it once its append is durable (it cannot go out
// before). So it does not expire when offered (a consumer or basic.get is
// taking the next message), nor while its append is pending unless
// settle says the dispatch that follows durability is done.
func (q *Queue) expiredLocked(m *queued, now int64, offered, settle bool) bool {
	if m.expiresAt == 0 || m.expiresAt > now {
		return false
	}
	if m.graceTTL {
		if offered {
			return false
		}
		if m.pending != (storage.Pending{}) {
			if !settle {
				return false
			}
			if durable, discarded := q.durableLocked(m); !durable && !discarded {
				return false
			}
		}
	}
	return true
}

// recoveredExpiry sets the expiry of a message recovered from the log:
// from when it was published (its timestamp), as it was before the
// restart, or from recoveredAt if it has none.
func (q *Queue) recoveredExpiry(m *queued, recoveredAt int64) {
	arrival := recoveredAt
	if m.msg.Timestamp > 0 {
		arrival = m.msg.Timestamp
	}
	m.expiresAt = q.expiryFor(m.msg, arrival)
}

// resolveHeadLocked reads back a recovered paged-out message at the head
// when its expiry is unknown (it may carry an expiration), so that it
// expires as it would have without the restart. false means it could not
// be read back; popLocked then drops it.
func (q *Queue) resolveHeadLocked(m *queued) bool {
	if !m.expiryUnknown || q.store == nil {
		return true
	}
	msg, err := q.store.load(m.offset)
	if err != nil {
		return false
	}
	m.expiryUnknown = false
	m.msg = msg
	q.resident += msg.size()
	m.bytes = int64(len(msg.Body))
	q.readyBytes += m.bytes
	q.recoveredExpiry(m, q.now().UnixMilli())
	return true
}

// dropExpiredHeadLocked drops the next ready message if it has expired,
// reporting whether it did (see expiredLocked for offered and settle).
func (q *Queue) dropExpiredHeadLocked(now int64, offered, settle bool) bool {
	m := q.headLocked()
	if m == nil || !q.resolveHeadLocked(m) || !q.expiredLocked(m, now, offered, settle) {
		return false
	}
	q.takeHeadLocked()
	q.expireLocked(m)
	return true
}

// headLocked returns the next ready message, nil if none.
func (q *Queue) headLocked() *queued {
	l := q.topLocked()
	if l == nil {
		return nil
	}
	if len(l.requeued) > 0 {
		return l.requeued[0]
	}
	return l.ready.peek()
}

// takeHeadLocked removes the next ready message from the ready list,
// whether or not it is durable yet, and returns it; the caller settles it.
func (q *Queue) takeHeadLocked() *queued {
	var m *queued
	l := q.topLocked()
	if l == nil {
		return nil
	}
	if len(l.requeued) > 0 {
		m = l.requeued[0]
		l.requeued[0] = nil
		l.requeued = l.requeued[1:]
	} else {
		if m = l.ready.pop(); m == nil {
			return nil
		}
		if m.msg != nil {
			q.resident -= m.msg.size()
		}
	}
	m.popped = true
	q.readyBytes -= m.bytes
	return m
}

// expireLocked forgets an expired message, dead-lettering it.
func (q *Queue) expireLocked(m *queued) {
	q.deadLetterLocked(m, deathExpired)
	q.settledLocked(m)
}

// dropExpiredLocked drops the expired messages at the head of the queue.
func (q *Queue) dropExpiredLocked(now int64) {
	for q.dropExpiredHeadLocked(now, false, false) {
	}
}

// dropExpiredAfterDurableLocked is dropExpiredLocked once awaitDurable has
// dispatched what became durable: messages with no time to live that no
// consumer took go too.
func (q *Queue) dropExpiredAfterDurableLocked(now int64) {
	for q.dropExpiredHeadLocked(now, false, true) {
	}
}

// expire drops the expired messages at the head of the queue now.
func (q *Queue) expire() {
	q.mu.Lock()
	defer q.unlock()
	if !q.closed {
		q.dropExpiredLocked(q.now().UnixMilli())
	}
}

// ExpireMessages drops the expired messages at the head of every queue
// (the periodic sweep, so that expired messages do not wait for a consumer
// to be dropped).
func (b *Broker) ExpireMessages() {
	b.amqp.mu.RLock()
	qs := make([]*Queue, 0, len(b.queues.byID))
	for _, q := range b.queues.byID {
		qs = append(qs, q)
	}
	b.amqp.mu.RUnlock()
	for _, q := range qs {
		q.expire()
	}
}
