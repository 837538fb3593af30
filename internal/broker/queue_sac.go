package broker

// Single active consumer (x-single-active-consumer true), as in RabbitMQ's
// classic queues: every consumer is registered (basic.consume is answered
// with consume-ok), but only the first registered one receives messages.
// When it goes (basic.cancel, or its channel or connection closes), the
// next registered consumer becomes active; messages the old one left
// unacknowledged reach it once they are requeued (a closed channel
// requeues them).

// queueSingleActive reports whether a queue's arguments ask for a single
// active consumer.
func queueSingleActive(args Table) bool {
	v, ok := args["x-single-active-consumer"].(bool)
	return ok && v
}
