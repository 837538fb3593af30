package gateway

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

func TestRESTVhosts(t *testing.T) {
	e := newRESTEnv(t)
	var list struct{ Vhosts []restVhost }
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/vhosts", nil, &list)
	if len(list.Vhosts) != 1 || list.Vhosts[0].Name != "/" {
		t.Fatalf("vhosts: %+v", list)
	}
	var v restVhost
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/vhosts/%2F", nil, &v)
	if v.Name != "/" {
		t.Fatalf("default vhost: %+v", v)
	}
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/v1", nil, nil)
	if p, ok := e.users.Permissions("guest")["v1"]; !ok || p.Configure != ".*" || p.Write != ".*" || p.Read != ".*" {
		t.Fatalf("the creator's permissions on the new vhost: %+v %v", p, ok)
	}
	e.must(t, http.StatusOK, http.MethodPut, "/api/v1/vhosts/v1", nil, nil)
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/vhosts/v1", nil, &v)
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/vhosts", nil, &list)
	if len(list.Vhosts) != 2 {
		t.Fatalf("vhosts: %+v", list)
	}
	// A new vhost has the predeclared exchanges.
	if _, ok := e.b.LookupExchange("v1", "amq.topic"); !ok {
		t.Fatal("v1 has no amq.topic")
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/vhosts/nope", nil)
	for _, p := range []string{"/exchanges", "/queues", "/bindings"} {
		e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/vhosts/nope"+p, nil)
	}
}

func TestRESTExchanges(t *testing.T) {
	e := newRESTEnv(t)
	const x = "/api/v1/vhosts/%2F/exchanges/"
	var list struct{ Exchanges []restExchange }
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/vhosts/%2F/exchanges", nil, &list)
	names := map[string]string{}
	for _, ex := range list.Exchanges {
		names[ex.Name] = ex.Type
	}
	if names[""] != "direct" || names["amq.topic"] != "topic" || names["amq.headers"] != "headers" {
		t.Fatalf("predeclared: %v", names)
	}
	var def restExchange
	e.must(t, http.StatusOK, http.MethodGet, x+"amq.default", nil, &def)
	if def.Name != "" || def.Type != "direct" {
		t.Fatalf("default exchange: %+v", def)
	}

	var ex restExchange
	e.must(t, http.StatusCreated, http.MethodPut, x+"orders", map[string]any{"type": "topic"}, &ex)
	if ex.Name != "orders" || ex.Type != "topic" || !ex.Durable || ex.AutoDelete || ex.Internal || ex.Vhost != "/" {
		t.Fatalf("declared: %+v", ex)
	}
	e.must(t, http.StatusOK, http.MethodPut, x+"orders", map[string]any{"type": "topic"}, nil)
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodPut, x+"orders", map[string]any{"type": "direct"})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPut, x+"other", map[string]any{})
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodPut, x+"other", map[string]any{"type": "sideways"})
	e.wantErr(t, http.StatusForbidden, service.CodeForbidden, http.MethodPut, x+"amq.mine", map[string]any{"type": "direct"})
	e.wantErr(t, http.StatusForbidden, service.CodeForbidden, http.MethodPut, x+"amq.default", map[string]any{"type": "direct"})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPut, "/api/v1/vhosts/nope/exchanges/orders", map[string]any{"type": "direct"})

	e.must(t, http.StatusCreated, http.MethodPut, x+"spill", map[string]any{"type": "fanout", "durable": false, "auto_delete": true,
		"arguments": map[string]any{"alternate-exchange": "orders", "x-n": 3}}, nil)
	e.must(t, http.StatusOK, http.MethodGet, x+"spill", nil, &ex)
	if ex.Durable || !ex.AutoDelete || ex.Arguments["alternate-exchange"] != "orders" || ex.Arguments["x-n"] != 3.0 {
		t.Fatalf("spill: %+v", ex)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, x+"nope", nil)

	// Deleting: not while a binding's source with if_unused, never the
	// predeclared ones, 404 for an unknown one.
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/queues/q", nil, nil)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/vhosts/%2F/bindings/e/orders/q/q", map[string]any{"routing_key": "#"}, nil)
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodDelete, x+"orders?if_unused=true", nil)
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodDelete, x+"orders?if_unused=maybe", nil)
	var del restDeleted
	e.must(t, http.StatusOK, http.MethodDelete, x+"orders", nil, &del)
	if del.Deleted != "orders" {
		t.Fatalf("delete: %+v", del)
	}
	if _, ok := e.b.LookupExchange("/", "orders"); ok {
		t.Fatal("orders still there")
	}
	var bl struct{ Bindings []restBinding }
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/vhosts/%2F/bindings", nil, &bl)
	if len(bl.Bindings) != 0 {
		t.Fatalf("bindings of a deleted exchange: %+v", bl)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, x+"orders", nil)
	e.wantErr(t, http.StatusForbidden, service.CodeForbidden, http.MethodDelete, x+"amq.direct", nil)
	e.wantErr(t, http.StatusForbidden, service.CodeForbidden, http.MethodDelete, x+"amq.default", nil)
}

func TestRESTQueues(t *testing.T) {
	e := newRESTEnv(t)
	const qs = "/api/v1/vhosts/%2F/queues/"
	var q restQueue
	e.must(t, http.StatusCreated, http.MethodPut, qs+"work", map[string]any{"durable": false, "arguments": map[string]any{"x-max-length": 10}}, &q)
	if q.Name != "work" || q.Durable || q.Exclusive || q.Type != "classic" || q.Arguments["x-max-length"] != 10.0 {
		t.Fatalf("declared: %+v", q)
	}
	e.must(t, http.StatusOK, http.MethodPut, qs+"work", map[string]any{"durable": false, "arguments": map[string]any{"x-max-length": 10}}, nil)
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodPut, qs+"work", map[string]any{})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPut, qs+"mine", map[string]any{"exclusive": true})
	e.wantErr(t, http.StatusForbidden, service.CodeForbidden, http.MethodPut, qs+"amq.q", nil)
	// The core refuses invalid arguments as a failed precondition, as
	// AMQP does (406), which the gateway's faces report as a conflict.
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodPut, qs+"odd", map[string]any{"arguments": map[string]any{"x-max-length": "ten"}})
	e.must(t, http.StatusCreated, http.MethodPut, qs+"durable", nil, &q)
	if !q.Durable {
		t.Fatalf("default durability: %+v", q)
	}

	// Counts: ready, unacknowledged and consumers.
	for _, body := range []string{"a", "b", "c"} {
		e.must(t, http.StatusOK, http.MethodPost, "/api/v1/vhosts/%2F/exchanges/amq.default/publish", map[string]any{"routing_key": "work", "body": body}, nil)
	}
	rt, err := e.b.Queue("/", "", "work")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := rt.Get(t.Context(), false)
	if !ok {
		t.Fatal("no message")
	}
	e.must(t, http.StatusOK, http.MethodGet, qs+"work", nil, &q)
	if q.Messages != 2 || q.MessagesUnacknowledged != 1 || q.Consumers != 0 {
		t.Fatalf("counts: %+v", q)
	}
	var list struct{ Queues []restQueue }
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/vhosts/%2F/queues", nil, &list)
	if len(list.Queues) != 2 || list.Queues[0].Name != "durable" || list.Queues[1].Name != "work" || list.Queues[1].Messages != 2 {
		t.Fatalf("list: %+v", list)
	}

	// Purge drops the ready ones only.
	var purged struct{ Purged int }
	e.must(t, http.StatusOK, http.MethodDelete, qs+"work/contents", nil, &purged)
	if purged.Purged != 2 {
		t.Fatalf("purged %d", purged.Purged)
	}
	rt.Requeue([]broker.Delivery{d})
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodDelete, qs+"work?if_empty=true", nil)
	var del restDeleted
	e.must(t, http.StatusOK, http.MethodDelete, qs+"work", nil, &del)
	if del.Deleted != "work" || del.Messages == nil || *del.Messages != 1 {
		t.Fatalf("delete: %+v", del)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, qs+"work", nil)
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, qs+"work", nil)
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, qs+"work/contents", nil)

	// A connection's exclusive queue is described, but not taken from.
	if _, _, err := e.b.DeclareQueue(t.Context(), "/", "conn-1", broker.QueueSpec{Name: "excl", Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	e.must(t, http.StatusOK, http.MethodGet, qs+"excl", nil, &q)
	if !q.Exclusive || q.Durable {
		t.Fatalf("exclusive: %+v", q)
	}
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodPost, qs+"excl/get", map[string]any{"ackmode": service.AckRequeueFalse})
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodDelete, qs+"excl", nil)
}

func TestRESTBindings(t *testing.T) {
	e := newRESTEnv(t)
	const v = "/api/v1/vhosts/%2F"
	e.must(t, http.StatusCreated, http.MethodPut, v+"/exchanges/src", map[string]any{"type": "topic"}, nil)
	e.must(t, http.StatusCreated, http.MethodPut, v+"/exchanges/fan", map[string]any{"type": "fanout"}, nil)
	e.must(t, http.StatusCreated, http.MethodPut, v+"/exchanges/hdr", map[string]any{"type": "headers"}, nil)
	e.must(t, http.StatusCreated, http.MethodPut, v+"/queues/q", nil, nil)

	var b restBinding
	e.must(t, http.StatusCreated, http.MethodPut, v+"/bindings/e/src/q/q", map[string]any{"routing_key": "a.*"}, &b)
	if b.Source != "src" || b.Destination != "q" || b.DestinationType != "queue" || b.RoutingKey != "a.*" || b.Vhost != "/" {
		t.Fatalf("binding: %+v", b)
	}
	e.must(t, http.StatusCreated, http.MethodPut, v+"/bindings/e/src/q/q", map[string]any{"routing_key": "b.#"}, nil)
	e.must(t, http.StatusCreated, http.MethodPut, v+"/bindings/e/src/q/q", map[string]any{"routing_key": "b.#"}, nil) // twice is once
	e.must(t, http.StatusCreated, http.MethodPut, v+"/bindings/e/fan/e/src", nil, &b)
	if b.DestinationType != "exchange" {
		t.Fatalf("e2e: %+v", b)
	}
	e.must(t, http.StatusCreated, http.MethodPut, v+"/bindings/e/hdr/q/q", map[string]any{"arguments": map[string]any{"x-match": "any", "tenant": "acme"}}, nil)

	var bl struct{ Bindings []restBinding }
	e.must(t, http.StatusOK, http.MethodGet, v+"/bindings", nil, &bl)
	if len(bl.Bindings) != 4 {
		t.Fatalf("all: %+v", bl)
	}
	e.must(t, http.StatusOK, http.MethodGet, v+"/bindings/e/src/q/q", nil, &bl)
	if len(bl.Bindings) != 2 {
		t.Fatalf("src to q: %+v", bl)
	}
	e.must(t, http.StatusOK, http.MethodGet, v+"/bindings/e/fan/e/src", nil, &bl)
	if len(bl.Bindings) != 1 || bl.Bindings[0].DestinationType != "exchange" {
		t.Fatalf("fan to src: %+v", bl)
	}
	e.must(t, http.StatusOK, http.MethodGet, v+"/bindings/e/hdr/q/q", nil, &bl)
	if len(bl.Bindings) != 1 || bl.Bindings[0].Arguments["tenant"] != "acme" {
		t.Fatalf("hdr to q: %+v", bl)
	}
	e.must(t, http.StatusOK, http.MethodGet, v+"/bindings/e/src/e/q", nil, &bl)
	if len(bl.Bindings) != 0 {
		t.Fatalf("src to exchange q: %+v", bl)
	}

	// Routing follows: fan -> src -> q by "a.*".
	var pub struct{ Routed int }
	e.must(t, http.StatusOK, http.MethodPost, v+"/exchanges/fan/publish", map[string]any{"routing_key": "a.x", "body": "via e2e"}, &pub)
	e.must(t, http.StatusOK, http.MethodPost, v+"/exchanges/hdr/publish", map[string]any{"body": "by header", "properties": map[string]any{"headers": map[string]any{"tenant": "acme"}}}, nil)
	if ms := e.get(t, v+"/queues/q/get", 5, service.AckRequeueFalse); pub.Routed != 1 || len(ms) != 2 || *ms[0].Body != "via e2e" || *ms[1].Body != "by header" {
		t.Fatalf("routed %d, got %+v", pub.Routed, ms)
	}

	// Errors.
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPut, v+"/bindings/e/src/q/nope", nil)
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPut, v+"/bindings/e/nope/q/q", nil)
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPut, "/api/v1/vhosts/nope/bindings/e/src/q/q", nil)
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPut, v+"/bindings/e/src/q/q", map[string]any{"routing_key": 7})

	// Unbinding: by routing key (whatever the arguments), or all.
	var ub struct{ Unbound int }
	e.must(t, http.StatusOK, http.MethodDelete, v+"/bindings/e/src/q/q?routing_key=a.*", nil, &ub)
	if ub.Unbound != 1 {
		t.Fatalf("unbound %d", ub.Unbound)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, v+"/bindings/e/src/q/q?routing_key=a.*", nil)
	e.must(t, http.StatusOK, http.MethodDelete, v+"/bindings/e/hdr/q/q?routing_key=", nil, &ub)
	if ub.Unbound != 1 {
		t.Fatalf("unbound %d with arguments", ub.Unbound)
	}
	e.must(t, http.StatusOK, http.MethodDelete, v+"/bindings/e/fan/e/src", nil, &ub)
	e.must(t, http.StatusOK, http.MethodGet, v+"/bindings", nil, &bl)
	if len(bl.Bindings) != 1 || bl.Bindings[0].RoutingKey != "b.#" {
		t.Fatalf("left: %+v", bl)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, v+"/bindings/e/fan/e/src", nil)
}

func TestRESTUsers(t *testing.T) {
	e := newRESTEnv(t)
	var ul struct{ Users []restUser }
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/users", nil, &ul)
	if len(ul.Users) != 2 || !reflect.DeepEqual(ul.Users[0], restUser{Name: "alice", Tags: []string{}}) ||
		!reflect.DeepEqual(ul.Users[1], restUser{Name: "guest", LoopbackOnly: true, Tags: []string{"administrator"}}) {
		t.Fatalf("users: %+v", ul)
	}
	var u restUser
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/users/bob", map[string]any{"password": "builder"}, &u)
	if !reflect.DeepEqual(u, restUser{Name: "bob", Tags: []string{}}) {
		t.Fatalf("bob: %+v", u)
	}
	if r := e.raw(t, "bob", "builder", http.MethodGet, "/api/v1/server", nil); r.status != http.StatusOK {
		t.Fatalf("bob logs in: %d", r.status)
	}
	e.must(t, http.StatusOK, http.MethodPut, "/api/v1/users/bob", map[string]any{"password": "fixer", "loopback_only": true, "tags": []string{"monitoring"}}, nil)
	if r := e.raw(t, "bob", "builder", http.MethodGet, "/api/v1/server", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("bob's old password: %d", r.status)
	}
	if _, err := e.users.Authenticate("bob", "fixer", nil); err == nil {
		t.Fatal("loopback-only bob logged in from nowhere")
	}
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/users/bob", nil, &u)
	if !reflect.DeepEqual(u, restUser{Name: "bob", LoopbackOnly: true, Tags: []string{"monitoring"}}) {
		t.Fatalf("bob: %+v", u)
	}
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPut, "/api/v1/users/carol", map[string]any{})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPut, "/api/v1/users/carol", map[string]any{"password": ""})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/users/carol", nil)

	var del restDeleted
	e.must(t, http.StatusOK, http.MethodDelete, "/api/v1/users/bob", nil, &del)
	if del.Deleted != "bob" {
		t.Fatalf("delete: %+v", del)
	}
	if r := e.raw(t, "bob", "fixer", http.MethodGet, "/api/v1/server", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("deleted bob: %d", r.status)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, "/api/v1/users/bob", nil)
	e.must(t, http.StatusOK, http.MethodDelete, "/api/v1/users/alice", nil, nil)
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodDelete, "/api/v1/users/guest", nil)
}

func TestRESTPermissions(t *testing.T) {
	e := newRESTEnv(t)
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/users/bob", map[string]any{"password": "builder"}, nil)
	var pl struct{ Permissions []restPermission }
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/users/bob/permissions", nil, &pl)
	if len(pl.Permissions) != 0 {
		t.Fatalf("a new user's permissions: %+v", pl)
	}
	var p restPermission
	e.must(t, http.StatusCreated, http.MethodPut, "/api/v1/permissions/%2F/bob", map[string]any{"configure": "^bob-", "write": ".*", "read": ""}, &p)
	if p != (restPermission{User: "bob", Vhost: "/", Configure: "^bob-", Write: ".*", Read: ""}) {
		t.Fatalf("put: %+v", p)
	}
	if !e.users.Allowed("bob", "/", auth.Configure, "bob-q") || e.users.Allowed("bob", "/", auth.Read, "bob-q") {
		t.Fatal("the store does not hold what was put")
	}
	e.must(t, http.StatusOK, http.MethodPut, "/api/v1/permissions/%2F/bob", map[string]any{"configure": "", "write": "", "read": ".*"}, &p)
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/permissions", nil, &pl)
	found := false
	for _, q := range pl.Permissions {
		if q.User == "bob" {
			found = q == restPermission{User: "bob", Vhost: "/", Read: ".*"}
		}
	}
	if !found {
		t.Fatalf("list: %+v", pl)
	}
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPut, "/api/v1/permissions/%2F/bob", map[string]any{"configure": "(", "write": "", "read": ""})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPut, "/api/v1/permissions/%2F/bob", map[string]any{"read": ".*"})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPut, "/api/v1/permissions/%2F/nobody", map[string]any{"configure": "", "write": "", "read": ""})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPut, "/api/v1/permissions/nowhere/bob", map[string]any{"configure": "", "write": "", "read": ""})
	e.must(t, http.StatusOK, http.MethodDelete, "/api/v1/permissions/%2F/bob", nil, nil)
	if e.users.VhostAllowed("bob", "/") {
		t.Fatal("cleared permission still allows the vhost")
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, "/api/v1/permissions/%2F/bob", nil)
}
