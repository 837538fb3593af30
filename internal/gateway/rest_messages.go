package gateway

import (
	"net/http"

	"github.com/wharfmq/wharf/internal/gateway/service"
)

// restDefaultExchange names the default exchange ("") in paths, as
// RabbitMQ's management API does: a path segment cannot be empty.
const restDefaultExchange = "amq.default"

// exchangeName reads the exchange from the path.
func exchangeName(r *http.Request) string {
	name := r.PathValue("exchange")
	if name == restDefaultExchange {
		return ""
	}
	return name
}

// publish routes a message through an exchange and answers once it is
// durable in every durable queue it reached (for a persistent message), as
// a publisher confirm.
func (a *restAPI) publish(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RoutingKey string              `json:"routing_key"`
		Properties *service.Properties `json:"properties"`
		Body       *string             `json:"body"`
		BodyB64    *string             `json:"body_b64"`
		Mandatory  bool                `json:"mandatory"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if len(req.RoutingKey) > 255 {
		return invalid("routing_key is longer than 255 bytes")
	}
	body, _, err := bytesIn("body", req.Body, req.BodyB64)
	if err != nil {
		return err
	}
	if body == nil {
		body = []byte{}
	}
	p := service.Publishing{Vhost: r.PathValue("vhost"), Exchange: exchangeName(r), RoutingKey: req.RoutingKey, Body: body, Mandatory: req.Mandatory}
	if req.Properties != nil {
		if dm := req.Properties.DeliveryMode; dm > 2 {
			return invalid("delivery_mode %d: give 1 (transient) or 2 (persistent)", dm)
		}
		if p.Properties, err = req.Properties.ToWire(); err != nil {
			return err
		}
	}
	routed, err := a.svc.Publish(r.Context(), p)
	if err != nil {
		return err
	}
	return a.reply(w, http.StatusOK, struct {
		Routed int `json:"routed"`
	}{routed})
}

// restMessage is a message got from a queue.
type restMessage struct {
	Exchange    string             `json:"exchange"`
	RoutingKey  string             `json:"routing_key"`
	Redelivered bool               `json:"redelivered"`
	Properties  service.Properties `json:"properties"`
	Body        *string            `json:"body,omitempty"`
	BodyB64     *string            `json:"body_b64,omitempty"`
	// Remaining is how many messages were left ready after this one.
	Remaining int `json:"remaining"`
}

// getMessages takes messages from a queue (basic.get) and settles them as
// the ack mode says, with the semantics of RabbitMQ's management API:
// ack_requeue_false removes them, ack_requeue_true and reject_requeue_true
// put them back (redelivered), reject_requeue_false drops them.
func (a *restAPI) getMessages(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Count   *int   `json:"count"`
		AckMode string `json:"ackmode"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	count := 1
	if req.Count != nil {
		count = *req.Count
	}
	if req.AckMode == "" {
		return invalid("missing ackmode: give %s, %s, %s or %s", service.AckRequeueFalse, service.AckRequeueTrue, service.RejectRequeueFalse, service.RejectRequeueTrue)
	}
	msgs, err := a.svc.Get(r.Context(), r.PathValue("vhost"), r.PathValue("queue"), "", count, req.AckMode)
	if err != nil {
		return err
	}
	out := make([]restMessage, len(msgs))
	for i, m := range msgs {
		o := restMessage{Exchange: m.Exchange, RoutingKey: m.RoutingKey, Redelivered: m.Redelivered, Properties: service.FromWire(&m.Properties), Remaining: m.Remaining}
		o.Body, o.BodyB64 = bytesOut(m.Body)
		if o.Body == nil && o.BodyB64 == nil {
			empty := ""
			o.Body = &empty
		}
		out[i] = o
	}
	return a.reply(w, http.StatusOK, struct {
		Messages []restMessage `json:"messages"`
	}{out})
}
