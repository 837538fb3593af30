package broker

import (
	"math"
	"time"
)

// Consumer timeouts (x-consumer-timeout): how long a delivery to a
// consumer that acknowledges may stay unacknowledged before the adapter
// closes its channel, as RabbitMQ does (the AMQP adapter keeps the
// deliveries and enforces it; the queue only knows its own override of
// the server's default).

// queueConsumerTimeout reads x-consumer-timeout, in milliseconds; -1 when
// the queue has none.
func queueConsumerTimeout(args Table) int64 {
	v, ok := args["x-consumer-timeout"]
	if !ok {
		return -1
	}
	neg, mag, ok := intValue(v)
	if !ok || neg {
		return -1
	}
	// Clamped to what a time.Duration holds (about 292 years).
	return int64(min(mag, uint64(math.MaxInt64/int64(time.Millisecond))))
}

// ConsumerTimeout returns the queue's x-consumer-timeout, and false when it
// has none (the server's default applies).
func (q *Queue) ConsumerTimeout() (time.Duration, bool) {
	if q.consumerTimeout < 0 {
		return 0, false
	}
	return time.Duration(q.consumerTimeout) * time.Millisecond, true
}
