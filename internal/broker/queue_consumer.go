package broker

import (
	"fmt"
	"sync/atomic"
)

// Consumer is a subscription to a queue (basic.consume). The adapter fills
// it in and keeps it; the queue calls Deliver and Cancelled.
type Consumer struct {
	Tag       string
	NoAck     bool
	Exclusive bool
	// Priority is x-priority: ready messages go to the highest-priority
	// consumers that can take them, round-robin among equals.
	Priority int64
	// Limit bounds the consumer's unsettled deliveries (basic.qos with
	// global=false); Channel bounds those of all consumers of its channel
	// (global=true). Either may be nil. Neither applies with NoAck.
	Limit   *Credit
	Channel *Credit
	// Busy reports that the consumer's connection cannot take more for
	// now; the queue skips it until someone calls Kick. Nil means never.
	Busy func() bool
	// Deliver hands over a message. It runs under the queue's lock: it
	// must not block, and must not call into the queue or the broker.
	Deliver func(Delivery)
	// Cancelled is called once, outside the queue's lock, when the queue
	// is deleted under the consumer.
	Cancelled func()

	// unsettled counts the consumer's deliveries not yet settled; guarded
	// by its queue's mu.
	unsettled int
}

func (c *Consumer) canTake() bool {
	if c.Busy != nil && c.Busy() {
		return false
	}
	if c.NoAck {
		return true
	}
	return c.Limit.available() && c.Channel.available()
}

// take uses one unit of the consumer's credit, false if another queue took
// the channel's last unit meanwhile.
func (c *Consumer) take() bool {
	if c.NoAck {
		return true
	}
	c.Limit.add(1)
	if !c.Channel.tryTake() {
		c.Limit.add(-1)
		return false
	}
	return true
}

func (c *Consumer) give() {
	c.Limit.add(-1)
	c.Channel.add(-1)
}

// Credit is a prefetch window: at most Limit deliveries out and unsettled;
// a limit of zero is no limit. It is safe for concurrent use; a nil Credit
// is no limit.
type Credit struct {
	limit atomic.Int64
	used  atomic.Int64
}

// NewCredit returns a window of limit deliveries (0: unlimited).
func NewCredit(limit int) *Credit {
	c := &Credit{}
	c.limit.Store(int64(limit))
	return c
}

// SetLimit changes the window; deliveries already out stay out.
func (c *Credit) SetLimit(limit int) { c.limit.Store(int64(limit)) }

// Limit returns the window (0: unlimited).
func (c *Credit) Limit() int64 {
	if c == nil {
		return 0
	}
	return c.limit.Load()
}

// Used returns the deliveries out and unsettled.
func (c *Credit) Used() int64 {
	if c == nil {
		return 0
	}
	return c.used.Load()
}

func (c *Credit) available() bool {
	if c == nil {
		return true
	}
	l := c.limit.Load()
	return l <= 0 || c.used.Load() < l
}

func (c *Credit) tryTake() bool {
	if c == nil {
		return true
	}
	for {
		u, l := c.used.Load(), c.limit.Load()
		if l > 0 && u >= l {
			return false
		}
		if c.used.CompareAndSwap(u, u+1) {
			return true
		}
	}
}

func (c *Credit) add(n int64) {
	if c != nil {
		c.used.Add(n)
	}
}

// Consume adds a consumer. A consumer asking for exclusive use of a queue
// that has consumers, or any consumer of a queue in exclusive use, is
// ErrAccessRefused, as in RabbitMQ.
func (q *Queue) Consume(c *Consumer) error {
	q.mu.Lock()
	defer q.unlock()
	if q.closed {
		return modelErr(ErrNotFound, "no %s", rs("queue", q.Vhost, q.Name))
	}
	if q.exclusive || (c.Exclusive && len(q.consumers) > 0) {
		return modelErr(ErrAccessRefused, "%s in exclusive use", rs("queue", q.Vhost, q.Name))
	}
	q.exclusive = c.Exclusive
	q.consumers = append(q.consumers, c)
	q.hadConsumer = true
	q.touchLocked()
	q.dispatchLocked()
	return nil
}

// Cancel removes a consumer. It reports whether the queue is auto-delete
// and has just lost its last consumer, so the caller should delete it
// (Broker.QueueUnused). Deliveries already made stay unsettled. With a
// single active consumer, cancelling the active one hands the queue to the
// next (queue_sac.go), which gets the ready messages at once.
func (q *Queue) Cancel(c *Consumer) (unused bool) {
	q.mu.Lock()
	defer q.unlock()
	for i, x := range q.consumers {
		if x == c {
			q.consumers = append(q.consumers[:i], q.consumers[i+1:]...)
			if q.rr > i {
				q.rr--
			}
			if c.Exclusive {
				q.exclusive = false
			}
			q.touchLocked()
			if q.active == c {
				q.active = nil
			}
			if q.singleActive && !q.closed {
				q.dispatchLocked()
			}
			break
		}
	}
	return !q.closed && q.AutoDelete && q.hadConsumer && len(q.consumers) == 0
}

// String names the queue for logs and errors.
func (q *Queue) String() string { return fmt.Sprintf("queue '%s' in vhost '%s'", q.Name, q.Vhost) }
