package broker

import "errors"

// Length limits, with RabbitMQ's semantics for classic queues:
// x-max-length bounds the ready messages (not those delivered and
// unacknowledged) and x-max-length-bytes the sum of their body sizes.
// x-overflow says what happens when a publish would go over:
//
//   - drop-head (the default): the message is enqueued (and delivered if
//     a consumer can take it), then the oldest ready messages are dropped,
//     dead-lettered with reason maxlen, until the queue is within its
//     limits;
//   - reject-publish: the new message is refused: it is not enqueued, and
//     a publisher in confirm mode gets basic.nack (PublishResult.Rejected,
//     ErrQueueFull from Wait);
//   - reject-publish-dlx: the same, and the refused message is
//     dead-lettered with reason maxlen.
//
// Messages recovered paged out after a restart count for x-max-length but
// not for x-max-length-bytes until they are read back.

// ErrQueueFull is a publish that a full queue refused (x-overflow
// reject-publish or reject-publish-dlx).
var ErrQueueFull = errors.New("queue full")

// The x-overflow behaviours.
const (
	overflowDropHead         = "drop-head"
	overflowRejectPublish    = "reject-publish"
	overflowRejectPublishDLX = "reject-publish-dlx"
)

// lengthLimits is a queue's x-max-length, x-max-length-bytes (-1: none)
// and x-overflow.
type lengthLimits struct {
	messages int64
	bytes    int64
	overflow string
}

func queueLengthLimits(args Table) lengthLimits {
	l := lengthLimits{messages: intArg(args, "x-max-length"), bytes: intArg(args, "x-max-length-bytes"), overflow: overflowDropHead}
	if o, ok := args["x-overflow"].(string); ok {
		l.overflow = o
	}
	return l
}

// intArg returns a non-negative integer argument, -1 if absent.
func intArg(args Table, key string) int64 {
	v, ok := args[key]
	if !ok {
		return -1
	}
	neg, mag, ok := intValue(v)
	if !ok || neg {
		return -1
	}
	return int64(mag)
}

// refuseLocked reports whether a full queue refuses m (reject-publish and
// reject-publish-dlx: the queue would go over a limit with it), and
// dead-letters it under reject-publish-dlx.
func (q *Queue) refuseLocked(m *queued) bool {
	l := q.limits
	if l.overflow == overflowDropHead {
		return false
	}
	over := l.messages >= 0 && int64(q.readyLocked())+1 > l.messages ||
		l.bytes >= 0 && q.readyBytes+m.bytes > l.bytes
	if !over {
		return false
	}
	if l.overflow == overflowRejectPublishDLX {
		q.deadLetterLocked(m, deathMaxLen)
	}
	return true
}

// dropOverLimitLocked drops (dead-letters with reason maxlen) the oldest
// ready messages while the queue is over a limit (drop-head).
func (q *Queue) dropOverLimitLocked() {
	l := q.limits
	if l.overflow != overflowDropHead {
		return
	}
	for l.messages >= 0 && int64(q.readyLocked()) > l.messages || l.bytes >= 0 && q.readyBytes > l.bytes {
		m := q.takeHeadLocked()
		if m == nil {
			return
		}
		q.deadLetterLocked(m, deathMaxLen)
		q.settledLocked(m)
	}
}
