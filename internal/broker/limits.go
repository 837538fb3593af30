package broker

import (
	"errors"
	"fmt"
)

// The queue and topic limits. Both are checked under Broker.mu, in the same
// critical section as the creation they guard, so concurrent creations can
// never take a count past its limit. A limit lowered below what already
// exists (after a restart with a new configuration) deletes nothing: it
// refuses new queues or topics until enough are gone.

// limitError is a topic refusal: its text says which limit, and it is
// ErrLimitReached.
type limitError struct{ text string }

func (e *limitError) Error() string        { return e.text }
func (e *limitError) Is(target error) bool { return target == ErrLimitReached }

// checkTopicLimit refuses a new topic when MaxTopics topics exist. Callers
// hold b.mu.
func (b *Broker) checkTopicLimit(name string) error {
	max := b.opts.MaxTopics
	if max <= 0 || len(b.state.topics) < max {
		return nil
	}
	b.refusals.Warn("topic limit", "topic refused: topic limit reached",
		"topic", name, "limit", max, "setting", "limits.max_topics")
	return &limitError{text: fmt.Sprintf("cannot create topic '%s': topic limit (%d) is reached", name, max)}
}

// checkQueueLimit refuses a new queue in a vhost that has
// MaxQueuesPerVhost queues, with RabbitMQ's 406 text. Callers hold b.mu.
func (b *Broker) checkQueueLimit(vh *amqpVhost, vhost, name string) error {
	max := b.opts.MaxQueuesPerVhost
	if max <= 0 || len(vh.queues) < max {
		return nil
	}
	b.refusals.Warn("queue limit", "queue refused: queue limit of the vhost reached",
		"vhost", vhost, "queue", name, "limit", max, "setting", "limits.max_queues_per_vhost")
	return &ModelError{
		Kind: errors.Join(ErrPreconditionFailed, ErrLimitReached),
		Text: fmt.Sprintf("cannot declare queue '%s': queue limit in vhost '%s' (%d) is reached", name, vhost, max),
	}
}
