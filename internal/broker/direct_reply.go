package broker

import (
	"strings"
	"sync"
)

// DirectReplyPrefix begins the routing keys of RabbitMQ's direct reply-to:
// a requester's reply-to is rewritten to a name with this prefix, and a
// reply published to the default exchange with that name as its routing
// key goes straight to the requester, without a queue.
const DirectReplyPrefix = "amq.rabbitmq.reply-to."

// DirectReplier hands direct replies to requesters. The adapter that knows
// the requesters (the AMQP one) registers one; the core calls it for every
// routing key of a message published to the default exchange that begins
// with DirectReplyPrefix, with no lock of the core held.
type DirectReplier interface {
	// DirectReply delivers msg to the requester that key names in vhost
	// and reports whether it did (false: no such requester, or it cannot
	// take the reply now; the reply is then dropped).
	DirectReply(vhost, key string, msg *Message) bool
}

// directRepliers are the registered DirectRepliers.
type directRepliers struct {
	mu   sync.RWMutex
	list []*DirectReplier
}

// RegisterDirectReplier adds r to the repliers the broker asks for direct
// replies; the function it returns removes it again.
func (b *Broker) RegisterDirectReplier(r DirectReplier) func() {
	d := &b.amqp.repliers
	p := &r
	d.mu.Lock()
	d.list = append(d.list, p)
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for i, have := range d.list {
			if have == p {
				d.list = append(d.list[:i:i], d.list[i+1:]...)
				return
			}
		}
	}
}

// DirectReplies delivers a message published to exchange in vhost to the
// requesters its routing keys name, each key once, and returns how many
// took it. Only the default exchange routes direct replies; other keys
// and exchanges return 0 at once. Publish calls it; a transaction, which
// routes when a message is published and enqueues at commit, calls it at
// commit.
func (b *Broker) DirectReplies(vhost, exchange string, keys []string, msg *Message) int {
	if exchange != "" {
		return 0
	}
	n := 0
	for i, k := range keys {
		if !strings.HasPrefix(k, DirectReplyPrefix) || containsBefore(keys, i, k) {
			continue
		}
		if b.directReply(vhost, k, msg) {
			n++
		}
	}
	return n
}

// containsBefore reports whether keys[:i] holds k.
func containsBefore(keys []string, i int, k string) bool {
	for _, have := range keys[:i] {
		if have == k {
			return true
		}
	}
	return false
}

func (b *Broker) directReply(vhost, key string, msg *Message) bool {
	d := &b.amqp.repliers
	d.mu.RLock()
	list := d.list
	d.mu.RUnlock()
	for _, r := range list {
		if (*r).DirectReply(vhost, key, msg) {
			return true
		}
	}
	return false
}
