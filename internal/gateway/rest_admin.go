package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharfmq/wharf/internal/amqp/tables"
	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// The AMQP model's administration (vhosts, exchanges, queues, bindings)
// and the users. Declarations made here belong to no connection, so
// exclusive queues cannot be declared over REST.

// argsIn converts declare and bind arguments from JSON, with the mapping
// of message headers (service.Properties.ToWire): strings, integers (64
// bits), other numbers (doubles), booleans, null, objects and arrays.
func argsIn(m map[string]any) (broker.Table, error) {
	if len(m) == 0 {
		return nil, nil
	}
	p := service.Properties{Headers: m}
	w, err := p.ToWire()
	if err != nil {
		msg := err.Error()
		var e *service.Error
		if errors.As(err, &e) {
			msg = strings.TrimPrefix(e.Message, "property headers: ")
		}
		return nil, invalid("arguments: %s", msg)
	}
	return tables.ToBroker(w.Headers), nil
}

// argsOut converts a table to JSON values as deliveries' headers are:
// byte arrays become base64 strings, decimals strings such as "12.34",
// timestamps seconds since the epoch.
func argsOut(t broker.Table) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = argOut(v)
	}
	return out
}

func argOut(v any) any {
	switch x := v.(type) {
	case broker.Table:
		return argsOut(x)
	case map[string]any:
		return argsOut(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = argOut(e)
		}
		return out
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case broker.Decimal:
		s := strconv.FormatUint(uint64(x.Value), 10)
		if x.Scale == 0 {
			return s
		}
		for len(s) <= int(x.Scale) {
			s = "0" + s
		}
		return s[:len(s)-int(x.Scale)] + "." + s[len(s)-int(x.Scale):]
	case time.Time:
		return x.Unix()
	case float32:
		return float64(x)
	}
	return v
}

// vhost reads the vhost from the path and checks that it exists.
func (a *restAPI) vhost(r *http.Request) (string, error) {
	v := r.PathValue("vhost")
	if !a.b.VhostExists(v) {
		return "", service.Errorf(service.CodeNotFound, "no vhost '%s'", v)
	}
	return v, nil
}

type restVhost struct {
	Name string `json:"name"`
}

func (a *restAPI) listVhosts(w http.ResponseWriter, r *http.Request) error {
	names := a.b.Vhosts()
	out := make([]restVhost, len(names))
	for i, n := range names {
		out[i] = restVhost{Name: n}
	}
	return a.reply(w, http.StatusOK, struct {
		Vhosts []restVhost `json:"vhosts"`
	}{out})
}

func (a *restAPI) getVhost(w http.ResponseWriter, r *http.Request) error {
	v, err := a.vhost(r)
	if err != nil {
		return err
	}
	return a.reply(w, http.StatusOK, restVhost{Name: v})
}

// putVhost creates a vhost with its predeclared exchanges; an existing one
// is left as it is. Deleting vhosts is left to the AMQP side, which must
// close the connections to them.
func (a *restAPI) putVhost(w http.ResponseWriter, r *http.Request) error {
	v := r.PathValue("vhost")
	if a.b.VhostExists(v) {
		return a.reply(w, http.StatusOK, restVhost{Name: v})
	}
	err := a.b.CreateVhost(r.Context(), v)
	if err != nil && !errors.Is(err, broker.ErrVhostExists) {
		return fmt.Errorf("creating vhost '%s': %w", v, err)
	}
	if err == nil {
		// As RabbitMQ's management API does, the user who creates a vhost
		// gets every permission on it.
		if user := requestUser(r); user != "" && a.users != nil {
			if perr := a.users.SetPermission(user, v, auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}); perr != nil {
				return fmt.Errorf("granting '%s' the new vhost '%s': %w", user, v, perr)
			}
		}
	}
	a.logger.Info("vhost created over REST", "vhost", v)
	return a.reply(w, created(err == nil), restVhost{Name: v})
}

// restExchange describes an exchange.
type restExchange struct {
	Vhost      string         `json:"vhost"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

func restExchangeOf(x broker.ExchangeInfo) restExchange {
	return restExchange{Vhost: x.Vhost, Name: x.Name, Type: string(x.Type), Durable: x.Durable, AutoDelete: x.AutoDelete, Internal: x.Internal, Arguments: argsOut(x.Arguments)}
}

func (a *restAPI) listExchanges(w http.ResponseWriter, r *http.Request) error {
	xs, err := a.b.ListExchanges(r.PathValue("vhost"))
	if err != nil {
		return err
	}
	out := make([]restExchange, len(xs))
	for i, x := range xs {
		out[i] = restExchangeOf(x)
	}
	return a.reply(w, http.StatusOK, struct {
		Exchanges []restExchange `json:"exchanges"`
	}{out})
}

// lookupExchange finds the exchange of the path.
func (a *restAPI) lookupExchange(r *http.Request) (broker.ExchangeInfo, error) {
	v, err := a.vhost(r)
	if err != nil {
		return broker.ExchangeInfo{}, err
	}
	x, ok := a.b.LookupExchange(v, exchangeName(r))
	if !ok {
		return broker.ExchangeInfo{}, service.Errorf(service.CodeNotFound, "no exchange '%s' in vhost '%s'", exchangeName(r), v)
	}
	return x, nil
}

func (a *restAPI) getExchange(w http.ResponseWriter, r *http.Request) error {
	x, err := a.lookupExchange(r)
	if err != nil {
		return err
	}
	return a.reply(w, http.StatusOK, restExchangeOf(x))
}

// putExchange declares an exchange (exchange.declare): 201 when it was
// created, 200 when an equivalent one was there, 409 when one with other
// properties was.
func (a *restAPI) putExchange(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Type       string         `json:"type"`
		Durable    *bool          `json:"durable"`
		AutoDelete bool           `json:"auto_delete"`
		Internal   bool           `json:"internal"`
		Arguments  map[string]any `json:"arguments"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Type == "" {
		return invalid("missing type: give direct, fanout, topic or headers")
	}
	v, err := a.vhost(r)
	if err != nil {
		return err
	}
	args, err := argsIn(req.Arguments)
	if err != nil {
		return err
	}
	name := exchangeName(r)
	_, existed := a.b.LookupExchange(v, name)
	x, err := a.b.DeclareExchange(r.Context(), v, broker.ExchangeSpec{
		Name: name, Type: req.Type, Durable: req.Durable == nil || *req.Durable,
		AutoDelete: req.AutoDelete, Internal: req.Internal, Arguments: args,
	})
	if err != nil {
		return fmt.Errorf("declaring exchange '%s' in vhost '%s': %w", name, v, err)
	}
	return a.reply(w, created(!existed), restExchangeOf(x))
}

// deleteExchange deletes an exchange and its bindings; with
// if_unused=true, only when it is the source of no binding.
func (a *restAPI) deleteExchange(w http.ResponseWriter, r *http.Request) error {
	ifUnused, err := queryBool(r, "if_unused")
	if err != nil {
		return err
	}
	x, err := a.lookupExchange(r)
	if err != nil {
		return err
	}
	if err := a.b.DeleteExchange(r.Context(), x.Vhost, x.Name, ifUnused); err != nil {
		return fmt.Errorf("deleting exchange '%s' in vhost '%s': %w", x.Name, x.Vhost, err)
	}
	return a.reply(w, http.StatusOK, restDeleted{Deleted: x.Name})
}

// restQueue describes a queue with its counts.
type restQueue struct {
	Vhost      string         `json:"vhost"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	Exclusive  bool           `json:"exclusive"`
	AutoDelete bool           `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
	// Messages are ready, MessagesUnacknowledged delivered and not yet
	// settled.
	Messages               int `json:"messages"`
	MessagesUnacknowledged int `json:"messages_unacknowledged"`
	Consumers              int `json:"consumers"`
}

// restQueueOf describes a queue. Its counts are read as its owner (for an
// exclusive queue) so that exclusive queues are described too.
func (a *restAPI) restQueueOf(q broker.QueueInfo) restQueue {
	out := restQueue{Vhost: q.Vhost, Name: q.Name, Type: string(q.Type), Durable: q.Durable, Exclusive: q.Exclusive,
		AutoDelete: q.AutoDelete, Arguments: argsOut(q.Arguments)}
	if out.Type == "" {
		out.Type = string(broker.QueueClassic)
	}
	if q.Type == broker.QueueStream {
		// A stream's messages are its log's records; nothing is unacked.
		if st, ok, err := a.b.Stream(q.Vhost, q.Owner, q.Name); err == nil && ok {
			out.Messages, out.Consumers = int(st.Messages()), st.Consumers()
		}
		return out
	}
	if rt, err := a.b.Queue(q.Vhost, q.Owner, q.Name); err == nil {
		out.Messages, out.Consumers = rt.Counts()
		out.MessagesUnacknowledged = rt.Unacked()
	}
	return out
}

func (a *restAPI) listQueues(w http.ResponseWriter, r *http.Request) error {
	qs, err := a.b.ListQueues(r.PathValue("vhost"))
	if err != nil {
		return err
	}
	out := make([]restQueue, len(qs))
	for i, q := range qs {
		out[i] = a.restQueueOf(q)
	}
	return a.reply(w, http.StatusOK, struct {
		Queues []restQueue `json:"queues"`
	}{out})
}

// lookupQueue finds the queue of the path.
func (a *restAPI) lookupQueue(r *http.Request) (broker.QueueInfo, error) {
	v, err := a.vhost(r)
	if err != nil {
		return broker.QueueInfo{}, err
	}
	name := r.PathValue("queue")
	q, ok := a.b.LookupQueue(v, name)
	if !ok {
		return broker.QueueInfo{}, service.Errorf(service.CodeNotFound, "no queue '%s' in vhost '%s'", name, v)
	}
	return q, nil
}

func (a *restAPI) getQueue(w http.ResponseWriter, r *http.Request) error {
	q, err := a.lookupQueue(r)
	if err != nil {
		return err
	}
	return a.reply(w, http.StatusOK, a.restQueueOf(q))
}

// putQueue declares a queue (queue.declare): 201 when it was created, 200
// when an equivalent one was there, 409 when one with other properties
// was.
func (a *restAPI) putQueue(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Durable    *bool          `json:"durable"`
		AutoDelete bool           `json:"auto_delete"`
		Exclusive  bool           `json:"exclusive"`
		Arguments  map[string]any `json:"arguments"`
	}
	if err := a.decodeBody(w, r, &req, true); err != nil {
		return err
	}
	if req.Exclusive {
		return invalid("exclusive queues belong to an AMQP connection: declare them over AMQP")
	}
	v, err := a.vhost(r)
	if err != nil {
		return err
	}
	args, err := argsIn(req.Arguments)
	if err != nil {
		return err
	}
	name := r.PathValue("queue")
	q, isNew, err := a.b.DeclareQueue(r.Context(), v, "", broker.QueueSpec{
		Name: name, Durable: req.Durable == nil || *req.Durable, AutoDelete: req.AutoDelete, Arguments: args,
	})
	if err != nil {
		return fmt.Errorf("declaring queue '%s' in vhost '%s': %w", name, v, err)
	}
	return a.reply(w, created(isNew), a.restQueueOf(q))
}

// deleteQueue deletes a queue, its messages and its bindings; if_unused
// and if_empty make it conditional, as queue.delete's flags do.
func (a *restAPI) deleteQueue(w http.ResponseWriter, r *http.Request) error {
	ifUnused, err := queryBool(r, "if_unused")
	if err != nil {
		return err
	}
	ifEmpty, err := queryBool(r, "if_empty")
	if err != nil {
		return err
	}
	q, err := a.lookupQueue(r)
	if err != nil {
		return err
	}
	n, err := a.b.DeleteQueue(r.Context(), q.Vhost, "", q.Name, broker.QueueDeleteCheck{IfUnused: ifUnused, IfEmpty: ifEmpty})
	if err != nil {
		return fmt.Errorf("deleting queue '%s' in vhost '%s': %w", q.Name, q.Vhost, err)
	}
	return a.reply(w, http.StatusOK, restDeleted{Deleted: q.Name, Messages: &n})
}

// purgeQueue drops a queue's ready messages (queue.purge).
func (a *restAPI) purgeQueue(w http.ResponseWriter, r *http.Request) error {
	q, err := a.lookupQueue(r)
	if err != nil {
		return err
	}
	rt, err := a.b.Queue(q.Vhost, "", q.Name)
	if err != nil {
		return err
	}
	return a.reply(w, http.StatusOK, struct {
		Purged int `json:"purged"`
	}{rt.Purge()})
}

// restBinding describes a binding.
type restBinding struct {
	Vhost           string         `json:"vhost"`
	Source          string         `json:"source"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"` // queue or exchange
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

func restBindingOf(b broker.BindingInfo) restBinding {
	dt := "queue"
	if b.DestinationIsExchange {
		dt = "exchange"
	}
	return restBinding{Vhost: b.Vhost, Source: b.Source, Destination: b.Destination, DestinationType: dt, RoutingKey: b.RoutingKey, Arguments: argsOut(b.Arguments)}
}

func (a *restAPI) replyBindings(w http.ResponseWriter, bs []broker.BindingInfo) error {
	out := make([]restBinding, len(bs))
	for i, b := range bs {
		out[i] = restBindingOf(b)
	}
	return a.reply(w, http.StatusOK, struct {
		Bindings []restBinding `json:"bindings"`
	}{out})
}

func (a *restAPI) listBindings(w http.ResponseWriter, r *http.Request) error {
	bs, err := a.b.ListBindings(r.PathValue("vhost"))
	if err != nil {
		return err
	}
	return a.replyBindings(w, bs)
}

// between lists the bindings from the path's source exchange to its
// destination queue or exchange.
func (a *restAPI) between(r *http.Request, toExchange bool) ([]broker.BindingInfo, error) {
	all, err := a.b.ListBindings(r.PathValue("vhost"))
	if err != nil {
		return nil, err
	}
	src, dst := r.PathValue("source"), r.PathValue("destination")
	return slices.DeleteFunc(all, func(b broker.BindingInfo) bool {
		return b.Source != src || b.Destination != dst || b.DestinationIsExchange != toExchange
	}), nil
}

func (a *restAPI) getBindings(toExchange bool) restHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		bs, err := a.between(r, toExchange)
		if err != nil {
			return err
		}
		return a.replyBindings(w, bs)
	}
}

// bind binds a queue (queue.bind) or an exchange (exchange.bind) to the
// source exchange. Binding twice is binding once.
func (a *restAPI) bind(toExchange bool) restHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			RoutingKey string         `json:"routing_key"`
			Arguments  map[string]any `json:"arguments"`
		}
		if err := a.decodeBody(w, r, &req, true); err != nil {
			return err
		}
		if len(req.RoutingKey) > 255 {
			return invalid("routing_key is longer than 255 bytes")
		}
		v, err := a.vhost(r)
		if err != nil {
			return err
		}
		args, err := argsIn(req.Arguments)
		if err != nil {
			return err
		}
		spec := broker.BindingSpec{Source: r.PathValue("source"), Destination: r.PathValue("destination"), RoutingKey: req.RoutingKey, Arguments: args}
		if toExchange {
			err = a.b.BindExchange(r.Context(), v, spec)
		} else {
			err = a.b.BindQueue(r.Context(), v, "", spec)
		}
		if err != nil {
			return fmt.Errorf("binding '%s' to exchange '%s' in vhost '%s': %w", spec.Destination, spec.Source, v, err)
		}
		return a.reply(w, http.StatusCreated, restBindingOf(broker.BindingInfo{
			Vhost: v, Source: spec.Source, Destination: spec.Destination, DestinationIsExchange: toExchange,
			RoutingKey: spec.RoutingKey, Arguments: args,
		}))
	}
}

// unbind removes the bindings from the source to the destination: those
// with the routing_key query parameter's key when it is given (whatever
// their arguments), all of them otherwise. None is 404.
func (a *restAPI) unbind(toExchange bool) restHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := a.vhost(r)
		if err != nil {
			return err
		}
		bs, err := a.between(r, toExchange)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		if q.Has("routing_key") {
			key := q.Get("routing_key")
			bs = slices.DeleteFunc(bs, func(b broker.BindingInfo) bool { return b.RoutingKey != key })
		}
		if len(bs) == 0 {
			return service.Errorf(service.CodeNotFound, "no such binding from exchange '%s' to '%s' in vhost '%s'", r.PathValue("source"), r.PathValue("destination"), v)
		}
		for _, b := range bs {
			if err := a.unbindOne(r.Context(), b); err != nil {
				return fmt.Errorf("unbinding '%s' from exchange '%s' in vhost '%s': %w", b.Destination, b.Source, v, err)
			}
		}
		return a.reply(w, http.StatusOK, struct {
			Unbound int `json:"unbound"`
		}{len(bs)})
	}
}

func (a *restAPI) unbindOne(ctx context.Context, b broker.BindingInfo) error {
	spec := broker.BindingSpec{Source: b.Source, Destination: b.Destination, RoutingKey: b.RoutingKey, Arguments: b.Arguments}
	if b.DestinationIsExchange {
		return a.b.UnbindExchange(ctx, b.Vhost, spec)
	}
	return a.b.UnbindQueue(ctx, b.Vhost, "", spec)
}

// restUser is a user, without its password. Users are kept in the data
// directory's users file: a change here survives a restart.
type restUser struct {
	Name         string   `json:"name"`
	LoopbackOnly bool     `json:"loopback_only"`
	Tags         []string `json:"tags"`
}

// restUserOf renders a user.
func restUserOf(u auth.User) restUser {
	tags := u.Tags
	if tags == nil {
		tags = []string{}
	}
	return restUser{Name: u.Name, LoopbackOnly: u.LoopbackOnly, Tags: tags}
}

func (a *restAPI) listUsers(w http.ResponseWriter, r *http.Request) error {
	users := a.users.Users()
	out := make([]restUser, len(users))
	for i, u := range users {
		out[i] = restUserOf(u)
	}
	return a.reply(w, http.StatusOK, struct {
		Users []restUser `json:"users"`
	}{out})
}

// lookupUser finds a user by name.
func (a *restAPI) lookupUser(name string) (auth.User, bool) {
	for _, u := range a.users.Users() {
		if u.Name == name {
			return u, true
		}
	}
	return auth.User{}, false
}

func (a *restAPI) getUser(w http.ResponseWriter, r *http.Request) error {
	u, ok := a.lookupUser(r.PathValue("name"))
	if !ok {
		return service.Errorf(service.CodeNotFound, "no user '%s'", r.PathValue("name"))
	}
	return a.reply(w, http.StatusOK, restUserOf(u))
}

// putUser adds a user or sets its password and loopback restriction. The
// user can then log in over every protocol (AMQP, WebSocket, REST).
func (a *restAPI) putUser(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Password     *string   `json:"password"`
		LoopbackOnly bool      `json:"loopback_only"`
		Tags         *[]string `json:"tags"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Password == nil || *req.Password == "" {
		return invalid("missing password")
	}
	name := r.PathValue("name")
	_, existed := a.lookupUser(name)
	if err := a.users.Put(name, *req.Password, req.LoopbackOnly); err != nil {
		return invalid("user '%s': %v", name, err)
	}
	if req.Tags != nil {
		if err := a.users.SetTags(name, *req.Tags); err != nil {
			return fmt.Errorf("setting the tags of '%s': %w", name, err)
		}
	}
	a.logger.Info("user set over REST", "user", name, "loopback_only", req.LoopbackOnly)
	u, _ := a.users.Lookup(name)
	return a.reply(w, created(!existed), restUserOf(u))
}

// deleteUser removes a user; removing the last one is refused, as nobody
// could log in after it.
func (a *restAPI) deleteUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, ok := a.lookupUser(name); !ok {
		return service.Errorf(service.CodeNotFound, "no user '%s'", name)
	}
	if len(a.users.Users()) == 1 {
		return service.Errorf(service.CodeConflict, "user '%s' is the last user: nobody could log in without it", name)
	}
	if err := a.users.Delete(name); err != nil {
		return fmt.Errorf("deleting user '%s': %w", name, err)
	}
	a.logger.Info("user deleted over REST", "user", name)
	return a.reply(w, http.StatusOK, restDeleted{Deleted: name})
}
