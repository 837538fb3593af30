package gateway

import (
	"regexp"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// Permissions on the WebSocket face, with the rules of service.Access:
// a session logged in as a Wharf user (a password, or a JWT whose subject
// names a user) needs read on a topic or queue to subscribe to it, write
// on a topic to produce and write on an exchange to publish. A JWT's
// "permissions" claim ({"read": "...", "write": "..."}) narrows that
// further: the name must match the claim too. A JWT whose subject is not
// a Wharf user may message clients (send, groups, broadcast) but touch no
// topic, queue or exchange. A refusal is an error frame with code
// "forbidden" and RabbitMQ's text; nothing happens. An anonymous session
// (websocket.anonymous, off under require_auth) is not restricted.

// allow checks one access for the session.
func (c *wsConn) allow(x auth.Access, check func(user string) error, kind, name string) error {
	id := c.id
	if id.token {
		if id.user == "" && c.ws.users != nil {
			return service.Errorf(service.CodeForbidden, "token subject '%s' is not a Wharf user: it may message clients but not use %s '%s'", id.clientID, kind, name)
		}
		var claim *regexp.Regexp
		switch x {
		case auth.Read:
			claim = id.read
		case auth.Write:
			claim = id.write
		}
		if claim != nil && !claim.MatchString(name) {
			return service.Errorf(service.CodeForbidden, "the token's permissions do not allow %s on %s '%s'", x, kind, name)
		}
	}
	if id.user == "" {
		return nil
	}
	return check(id.user)
}

// allowTopic checks an access to a topic.
func (c *wsConn) allowTopic(x auth.Access, topic string) error {
	return c.allow(x, func(u string) error { return c.ws.svc.Access().Topic(u, x, topic) }, "topic", topic)
}

// allowExchange checks an access to an exchange in vhost ("" is the
// default vhost).
func (c *wsConn) allowExchange(x auth.Access, vhost, exchange string) error {
	if vhost == "" {
		vhost = broker.DefaultVhost
	}
	name := exchange
	if name == "" {
		name = service.DefaultExchangeResource
	}
	return c.allow(x, func(u string) error { return c.ws.svc.Access().Exchange(u, vhost, x, exchange) }, "exchange", name)
}

// allowQueue checks an access to a queue in vhost ("" is the default
// vhost).
func (c *wsConn) allowQueue(x auth.Access, vhost, queue string) error {
	if vhost == "" {
		vhost = broker.DefaultVhost
	}
	return c.allow(x, func(u string) error { return c.ws.svc.Access().Queue(u, vhost, x, queue) }, "queue", queue)
}
