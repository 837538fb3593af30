package gateway

import (
	"net/http"

	"github.com/wharfmq/wharf/internal/auth"
)

// Permissions on the REST face (the rules are service.Access's): each
// route names what its caller needs, checked after the login and before
// the handler runs, so a refused request changes nothing. A refusal is
// 403 with code "forbidden" and RabbitMQ's text. Routes whose resource is
// in the body (creating a topic) check in their handler.

// restAllow decides whether user may make request r.
type restAllow func(a *restAPI, r *http.Request, user string) error

// allowAdmin: the administrator tag.
func allowAdmin(a *restAPI, _ *http.Request, user string) error { return a.access.Admin(user) }

// allowMonitor: the administrator or monitoring tag.
func allowMonitor(a *restAPI, _ *http.Request, user string) error { return a.access.Monitor(user) }

// allowTopic: x on the {topic} of the path.
func allowTopic(x auth.Access) restAllow {
	return func(a *restAPI, r *http.Request, user string) error {
		return a.access.Topic(user, x, r.PathValue("topic"))
	}
}

// allowGroup: x on the {group} of the path.
func allowGroup(x auth.Access) restAllow {
	return func(a *restAPI, r *http.Request, user string) error {
		return a.access.Group(user, x, r.PathValue("group"))
	}
}

// restExchangeName is the exchange a path names: amq.default is "".
func restExchangeName(name string) string {
	if name == "amq.default" {
		return ""
	}
	return name
}

// allowExchange: x on the {exchange} of the path in its {vhost}.
func allowExchange(x auth.Access) restAllow {
	return func(a *restAPI, r *http.Request, user string) error {
		return a.access.Exchange(user, r.PathValue("vhost"), x, restExchangeName(r.PathValue("exchange")))
	}
}

// allowQueue: x on the {queue} of the path in its {vhost}.
func allowQueue(x auth.Access) restAllow {
	return func(a *restAPI, r *http.Request, user string) error {
		return a.access.Queue(user, r.PathValue("vhost"), x, r.PathValue("queue"))
	}
}

// allowBinding: write on the destination, read on the source, as AMQP's
// queue.bind and exchange.bind.
func allowBinding(toExchange bool) restAllow {
	return func(a *restAPI, r *http.Request, user string) error {
		vhost := r.PathValue("vhost")
		if err := a.access.Exchange(user, vhost, auth.Read, restExchangeName(r.PathValue("source"))); err != nil {
			return err
		}
		if toExchange {
			return a.access.Exchange(user, vhost, auth.Write, restExchangeName(r.PathValue("destination")))
		}
		return a.access.Queue(user, vhost, auth.Write, r.PathValue("destination"))
	}
}
