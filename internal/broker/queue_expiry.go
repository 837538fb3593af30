package broker

import (
	"context"
	"fmt"
)

// Queue expiry (x-expires), with RabbitMQ's semantics: a queue that has
// been unused for the period is deleted, with its messages (they are not
// dead-lettered). Unused means no consumers, no basic.get and no
// redeclaration for that long; each of those renews the lease, and the
// cancellation of the last consumer starts a new one. The periodic sweep
// (ExpireQueues) deletes the expired queues.

// queueExpires returns a queue's x-expires in milliseconds, -1 if none.
func queueExpires(args Table) int64 { return intArg(args, "x-expires") }

// touchLocked renews the queue's lease.
func (q *Queue) touchLocked() { q.lastUsed = q.now().UnixMilli() }

// Touch renews the queue's lease (a redeclaration).
func (q *Queue) Touch() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.touchLocked()
}

// expiredLeaseLocked reports whether the queue has been unused for its
// x-expires period.
func (q *Queue) expiredLeaseLocked() bool {
	return q.expires >= 0 && !q.closed && len(q.consumers) == 0 && q.now().UnixMilli()-q.lastUsed >= q.expires
}

// ExpireQueues deletes every queue unused for its x-expires period.
func (b *Broker) ExpireQueues(ctx context.Context) error {
	b.amqp.mu.RLock()
	var due []*Queue
	for _, q := range b.queues.byID {
		q.mu.Lock()
		if q.expiredLeaseLocked() {
			due = append(due, q)
		}
		q.mu.Unlock()
	}
	b.amqp.mu.RUnlock()
	for _, q := range due {
		if err := b.expireQueue(ctx, q); err != nil {
			return fmt.Errorf("expiring %s: %w", q, err)
		}
	}
	return nil
}

// expireQueue deletes q if it is still in the model and still unused.
func (b *Broker) expireQueue(ctx context.Context, q *Queue) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	vh, err := b.state.amqp.vhost(q.Vhost)
	if err != nil {
		return nil
	}
	aq, ok := vh.queues[q.Name]
	if !ok || aq.def.ID != q.ID {
		return nil
	}
	q.mu.Lock()
	expired := q.expiredLeaseLocked()
	q.mu.Unlock()
	if !expired {
		return nil
	}
	p := newAMQPPlan()
	p.deleteQueue(aq)
	if err := b.commitAMQP(ctx, p); err != nil {
		return err
	}
	b.logger.Info("queue expired", "vhost", q.Vhost, "queue", q.Name)
	return nil
}
