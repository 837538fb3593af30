package service

import (
	"github.com/wharfmq/wharf/internal/auth"
)

// Access decides what an authenticated user of the gateway faces (REST,
// gRPC, WebSocket) may do, with the same model as AMQP and Kafka
// (internal/auth): configure, write and read expressions per vhost, Kafka
// topics and groups in the Kafka vhost, and the administrator tag, which
// allows everything on these faces (as RabbitMQ's management API lets an
// administrator do everything). A nil Users allows everything (a service
// without users, in tests of other concerns).
type Access struct {
	Users      *auth.Store
	KafkaVhost string // "" means "/"
}

// Access returns the service's access checker.
func (s *Service) Access() Access {
	return Access{Users: s.opts.Users, KafkaVhost: s.opts.KafkaVhost}
}

// DefaultExchangeResource is the name the default exchange has in
// permission checks, as in RabbitMQ.
const DefaultExchangeResource = "amq.default"

func (a Access) kafkaVhost() string {
	if a.KafkaVhost == "" {
		return auth.DefaultVhost
	}
	return a.KafkaVhost
}

// hasTag reports whether the user carries one of tags.
func (a Access) hasTag(user string, tags ...string) bool {
	u, ok := a.Users.Lookup(user)
	if !ok {
		return false
	}
	for _, t := range tags {
		if u.HasTag(t) {
			return true
		}
	}
	return false
}

// Check refuses, with CodeForbidden and RabbitMQ's text, an access the
// user may not have to the resource (kind names it in the message:
// "exchange", "queue", "topic", "group").
func (a Access) Check(user, vhost string, x auth.Access, kind, name string) error {
	if a.Users == nil || a.hasTag(user, auth.TagAdministrator) || a.Users.Allowed(user, vhost, x, name) {
		return nil
	}
	return Errorf(CodeForbidden, "access to %s '%s' in vhost '%s' refused for user '%s'", kind, name, vhost, user)
}

// Topic checks an access to a Kafka topic.
func (a Access) Topic(user string, x auth.Access, topic string) error {
	return a.Check(user, a.kafkaVhost(), x, "topic", topic)
}

// Group checks an access to a consumer group.
func (a Access) Group(user string, x auth.Access, group string) error {
	return a.Check(user, a.kafkaVhost(), x, "group", group)
}

// Exchange checks an access to an exchange; "" is the default exchange.
func (a Access) Exchange(user, vhost string, x auth.Access, exchange string) error {
	if exchange == "" {
		exchange = DefaultExchangeResource
	}
	return a.Check(user, vhost, x, "exchange", exchange)
}

// Queue checks an access to a queue.
func (a Access) Queue(user, vhost string, x auth.Access, queue string) error {
	return a.Check(user, vhost, x, "queue", queue)
}

// Admin refuses a user without the administrator tag (users, permissions,
// vhosts, bridges).
func (a Access) Admin(user string) error {
	if a.Users == nil || a.hasTag(user, auth.TagAdministrator) {
		return nil
	}
	return Errorf(CodeForbidden, "user '%s' needs the administrator tag for this", user)
}

// Monitor refuses a user with neither the administrator nor the
// monitoring tag (listings and descriptions of the whole broker).
func (a Access) Monitor(user string) error {
	if a.Users == nil || a.hasTag(user, auth.TagAdministrator, auth.TagMonitoring) {
		return nil
	}
	return Errorf(CodeForbidden, "user '%s' needs the administrator or monitoring tag for this", user)
}
