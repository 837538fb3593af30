package gateway

import (
	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
)

// Permissions on the WebSocket face, with the rules of service.Access:
// a session logged in as a Wharf user (a password, or a JWT whose subject
// names a user) needs read on a topic or queue to subscribe to it, write
// on a topic to produce and write on an exchange to publish. A refusal is
// an error frame with code "forbidden" and RabbitMQ's text; nothing
// happens. Messages between clients (send, groups, broadcast) are not
// broker resources and are not checked here. A session with no Wharf user
// (anonymous access, or a JWT for an identity that is not a user) is not
// restricted by permissions; require_auth turns anonymous access off.

// allowTopic checks an access to a topic for the session's user.
func (c *wsConn) allowTopic(x auth.Access, topic string) error {
	if c.user == "" {
		return nil
	}
	return c.ws.svc.Access().Topic(c.user, x, topic)
}

// allowResource checks an access to an exchange or queue in vhost ("" is
// the default vhost) for the session's user.
func (c *wsConn) allowExchange(x auth.Access, vhost, exchange string) error {
	if c.user == "" {
		return nil
	}
	if vhost == "" {
		vhost = broker.DefaultVhost
	}
	return c.ws.svc.Access().Exchange(c.user, vhost, x, exchange)
}

func (c *wsConn) allowQueue(x auth.Access, vhost, queue string) error {
	if c.user == "" {
		return nil
	}
	if vhost == "" {
		vhost = broker.DefaultVhost
	}
	return c.ws.svc.Access().Queue(c.user, vhost, x, queue)
}
