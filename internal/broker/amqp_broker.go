package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
)

// amqpRuntime is what the broker keeps beside the State for the AMQP model.
//
// Changes to the model are serialised by Broker.mu, like every metadata
// change: planned against the State, logged, then applied. Reads (Route,
// lookups, listings) do not take Broker.mu, which is held across the
// command log's fsync; they take mu for reading, and a change takes it for
// writing only while it applies. Lock order: Broker.mu before
// amqpRuntime.mu.
type amqpRuntime struct {
	mu       sync.RWMutex
	scratch  sync.Pool      // *routeScratch
	repliers directRepliers // direct reply-to; see direct_reply.go
}

// amqpPlan is an AMQP change being decided: the steps, which of them are
// logged, and what they remove, so that the consequences (auto-delete
// exchanges losing their last binding) can be worked out before anything
// changes.
type amqpPlan struct {
	steps  []AMQPStep
	logged []AMQPStep
	goneB  map[*amqpBinding]bool
	goneX  map[*amqpExchange]bool
	goneQ  map[*amqpQueue]bool
	lost   map[*amqpExchange]int // bindings removed per source exchange
}

func newAMQPPlan() *amqpPlan {
	return &amqpPlan{goneB: map[*amqpBinding]bool{}, goneX: map[*amqpExchange]bool{},
		goneQ: map[*amqpQueue]bool{}, lost: map[*amqpExchange]int{}}
}

// add appends a step; durable steps are also logged.
func (p *amqpPlan) add(st AMQPStep, durable bool) {
	p.steps = append(p.steps, st)
	if durable {
		p.logged = append(p.logged, st)
	}
}

func (b *amqpBinding) durable() bool {
	if !b.source.def.Durable {
		return false
	}
	if b.dx != nil {
		return b.dx.def.Durable
	}
	return b.dq.def.Durable
}

func (p *amqpPlan) deleteQueue(q *amqpQueue) {
	if p.goneQ[q] {
		return
	}
	p.goneQ[q] = true
	p.add(AMQPStep{DeleteQueue: &QueueName{Vhost: q.def.Vhost, Name: q.def.Name, ID: q.def.ID}}, q.def.Durable)
	for b := range q.in {
		p.drop(b)
	}
}

func (p *amqpPlan) deleteExchange(x *amqpExchange) {
	if p.goneX[x] {
		return
	}
	p.goneX[x] = true
	p.add(AMQPStep{DeleteExchange: &ExchangeName{Vhost: x.def.Vhost, Name: x.def.Name}}, x.def.Durable)
	for _, b := range x.out {
		p.drop(b)
	}
	for b := range x.in {
		p.drop(b)
	}
}

func (p *amqpPlan) unbind(b *amqpBinding) {
	d := b.def
	p.add(AMQPStep{Unbind: &d}, b.durable())
	p.drop(b)
}

// drop records that a step removes b, and deletes its source if that is an
// auto-delete exchange left with no binding: RabbitMQ deletes an
// auto-delete exchange when its last binding as a source goes, whether by
// an unbind or by the deletion of the destination.
func (p *amqpPlan) drop(b *amqpBinding) {
	if p.goneB[b] {
		return
	}
	p.goneB[b] = true
	src := b.source
	p.lost[src]++
	if src.def.AutoDelete && !p.goneX[src] && p.lost[src] == len(src.out) {
		p.deleteExchange(src)
	}
}

// commitAMQP logs the durable steps of a plan and applies all of them.
// Callers hold b.mu.
func (b *Broker) commitAMQP(ctx context.Context, p *amqpPlan) error {
	if b.closed {
		return ErrClosed
	}
	if len(p.steps) == 0 {
		return nil
	}
	qc, err := b.prepareQueues(p)
	if err != nil {
		return err
	}
	dc, err := b.prepareDedup(p)
	if err != nil {
		b.retireQueues(qc.created)
		return err
	}
	if len(p.logged) > 0 {
		if err := b.cmds.Append(ctx, Command{AMQP: &AMQPChange{Steps: p.logged}}); err != nil {
			b.retireQueues(qc.created)
			b.retireDedup(dc.created, true)
			return err
		}
	}
	b.amqp.mu.Lock()
	err = b.state.Apply(Command{AMQP: &AMQPChange{Steps: p.steps}})
	gone, goneStreams := b.swapQueues(qc)
	goneX := b.swapDedup(dc)
	b.amqp.mu.Unlock()
	b.retireQueues(gone)
	b.retireDedup(goneX, true)
	b.retireStreams(ctx, goneStreams)
	if err != nil {
		return fmt.Errorf("applying an amqp change: %w", err)
	}
	if len(p.logged) > 0 {
		b.logger.Info("metadata changed", "command", "amqp", "steps", len(p.steps), "logged", len(p.logged), "first", p.steps[0].kind())
	} else {
		b.logger.Debug("transient metadata changed", "command", "amqp", "steps", len(p.steps), "first", p.steps[0].kind())
	}
	return nil
}

// read runs fn with the AMQP model locked for reading.
func (b *Broker) readAMQP(fn func(s *amqpState)) {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	fn(b.state.amqp)
}

func invalidArguments(resource string, err error) error {
	return modelErr(ErrPreconditionFailed, "invalid arguments for %s: %v", resource, err)
}

// CreateVhost creates a vhost with its predeclared exchanges.
func (b *Broker) CreateVhost(ctx context.Context, name string) error {
	if name == "" {
		return modelErr(ErrPreconditionFailed, "a vhost name cannot be empty")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.state.amqp.vhosts[name]; ok {
		return &ModelError{Kind: ErrVhostExists, Text: fmt.Sprintf("vhost '%s' already exists", name)}
	}
	p := newAMQPPlan()
	p.add(AMQPStep{CreateVhost: &VhostDef{Name: name}}, true)
	return b.commitAMQP(ctx, p)
}

// DeleteVhost deletes a vhost and everything in it. Connections to it are
// the adapter's to close.
func (b *Broker) DeleteVhost(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.state.amqp.vhost(name); err != nil {
		return err
	}
	p := newAMQPPlan()
	p.add(AMQPStep{DeleteVhost: &VhostDef{Name: name}}, true)
	return b.commitAMQP(ctx, p)
}

// Vhosts lists the vhosts, sorted.
func (b *Broker) Vhosts() []string {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	return b.state.Vhosts()
}

// VhostExists reports whether a vhost exists (connection.open).
func (b *Broker) VhostExists(name string) bool {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	_, ok := b.state.amqp.vhosts[name]
	return ok
}

// DeclareExchange is exchange.declare. A passive declaration returns the
// existing exchange or ErrNotFound. Otherwise an existing exchange must be
// equivalent (same type, flags and alternate-exchange, else
// ErrPreconditionFailed); a new one may not be named amq.*
// (ErrAccessRefused). The default exchange can be neither declared nor
// checked (ErrAccessRefused).
func (b *Broker) DeclareExchange(ctx context.Context, vhost string, spec ExchangeSpec) (ExchangeInfo, error) {
	if spec.Passive {
		if spec.Name == "" {
			return ExchangeInfo{}, defaultExchangeRefused()
		}
		var info ExchangeInfo
		var err error
		b.readAMQP(func(s *amqpState) {
			vh, verr := s.vhost(vhost)
			if verr != nil {
				err = verr
				return
			}
			x, ok := vh.exchanges[spec.Name]
			if !ok {
				err = modelErr(ErrNotFound, "no %s", rs("exchange", vhost, spec.Name))
				return
			}
			info = x.info()
		})
		return info, err
	}
	typ := ExchangeType(spec.Type)
	if !typ.valid() {
		return ExchangeInfo{}, modelErr(ErrPreconditionFailed, "unknown exchange type '%s'", spec.Type)
	}
	if spec.Name == "" {
		return ExchangeInfo{}, defaultExchangeRefused()
	}
	res := rs("exchange", vhost, spec.Name)
	args, err := normalizeTable(spec.Arguments)
	if err != nil {
		return ExchangeInfo{}, invalidArguments(res, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	vh, err := b.state.amqp.vhost(vhost)
	if err != nil {
		return ExchangeInfo{}, err
	}
	if x, ok := vh.exchanges[spec.Name]; ok {
		if err := assertExchangeEquivalence(x, typ, spec, args); err != nil {
			return ExchangeInfo{}, err
		}
		return x.info(), nil
	}
	if err := reservedName("exchange", spec.Name); err != nil {
		return ExchangeInfo{}, err
	}
	if err := checkDedupArgs(res, args); err != nil {
		return ExchangeInfo{}, err
	}
	if ae, ok := args[ArgAlternateExchange]; ok {
		if _, isString := ae.(string); !isString {
			return ExchangeInfo{}, modelErr(ErrPreconditionFailed, "invalid type '%s' for arg '%s' in %s",
				fieldTypeName(ae), ArgAlternateExchange, res)
		}
	}
	def := ExchangeDef{Vhost: vhost, Name: spec.Name, Type: typ, Durable: spec.Durable, AutoDelete: spec.AutoDelete,
		Internal: spec.Internal, Arguments: args}
	p := newAMQPPlan()
	p.add(AMQPStep{DeclareExchange: &def}, def.Durable)
	if err := b.commitAMQP(ctx, p); err != nil {
		return ExchangeInfo{}, err
	}
	return vh.exchanges[spec.Name].info(), nil
}

// DeleteExchange is exchange.delete: it removes the exchange and every
// binding to or from it. Deleting an exchange that does not exist succeeds.
// With ifUnused, an exchange that is the source of a binding is not
// deleted (ErrPreconditionFailed). The default exchange and the amq.* ones
// cannot be deleted (ErrAccessRefused).
func (b *Broker) DeleteExchange(ctx context.Context, vhost, name string, ifUnused bool) error {
	if name == "" {
		return defaultExchangeRefused()
	}
	if len(name) >= 4 && name[:4] == "amq." {
		return modelErr(ErrAccessRefused, "deletion of system %s not allowed", rs("exchange", vhost, name))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	vh, err := b.state.amqp.vhost(vhost)
	if err != nil {
		return err
	}
	x, ok := vh.exchanges[name]
	if !ok {
		return nil
	}
	if ifUnused && len(x.out) > 0 {
		return modelErr(ErrPreconditionFailed, "%s in use", rs("exchange", vhost, name))
	}
	p := newAMQPPlan()
	p.deleteExchange(x)
	return b.commitAMQP(ctx, p)
}

// newQueueID returns a random queue id.
func newQueueID() (QueueID, error) {
	var id QueueID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("making a queue id: %w", err)
	}
	return id, nil
}

// newServerQueueName returns a name for a queue declared without one, as
// RabbitMQ makes them: amq.gen- and 16 random bytes in URL-safe base64.
func newServerQueueName() (string, error) {
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("making a queue name: %w", err)
	}
	return ServerNamedQueuePrefix + base64.RawURLEncoding.EncodeToString(r[:]), nil
}

// DeclareQueue is queue.declare by connection connID; it reports whether
// the queue was created. An empty name makes the broker name the queue
// (amq.gen-...). A passive declaration returns the existing queue or
// ErrNotFound. An exclusive queue belongs to connID and is never durable;
// other connections get ErrResourceLocked for it. Redeclaring a queue with a
// different exclusive flag is ErrResourceLocked, with different
// durable, auto-delete or arguments (those its type knows; x-queue-type
// absent means classic) ErrPreconditionFailed. New names starting with amq.
// are ErrAccessRefused, invalid arguments ErrPreconditionFailed.
func (b *Broker) DeclareQueue(ctx context.Context, vhost, connID string, spec QueueSpec) (QueueInfo, bool, error) {
	if spec.Passive {
		var info QueueInfo
		var err error
		b.readAMQP(func(s *amqpState) {
			vh, verr := s.vhost(vhost)
			if verr != nil {
				err = verr
				return
			}
			q, ok := vh.queues[spec.Name]
			if !ok {
				err = modelErr(ErrNotFound, "no %s", rs("queue", vhost, spec.Name))
				return
			}
			if err = checkExclusiveAccess(q, connID, false); err == nil {
				info = q.info()
			}
		})
		return info, false, err
	}
	var owner string
	if spec.Exclusive {
		if connID == "" {
			return QueueInfo{}, false, modelErr(ErrPreconditionFailed, "an exclusive queue needs a connection")
		}
		owner = connID
	}
	durable := spec.Durable && !spec.Exclusive
	name := spec.Name
	args, err := normalizeTable(spec.Arguments)
	if err != nil {
		return QueueInfo{}, false, invalidArguments(rs("queue", vhost, name), err)
	}
	if name == "" {
		if t := queueTypeOf(args); t == QueueQuorum || t == QueueStream {
			return QueueInfo{}, false, modelErr(ErrPreconditionFailed, "Cannot declare a server-named queue for type %s", queueTypeModule(t))
		}
		if name, err = newServerQueueName(); err != nil {
			return QueueInfo{}, false, err
		}
	} else if err := reservedName("queue", name); err != nil {
		return QueueInfo{}, false, err
	}
	id, err := newQueueID()
	if err != nil {
		return QueueInfo{}, false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	vh, err := b.state.amqp.vhost(vhost)
	if err != nil {
		return QueueInfo{}, false, err
	}
	if q, ok := vh.queues[name]; ok {
		if err := assertQueueEquivalence(q, owner, durable, spec.AutoDelete, args); err != nil {
			return QueueInfo{}, false, err
		}
		b.amqp.mu.RLock()
		rt := b.queues.byID[q.def.ID]
		b.amqp.mu.RUnlock()
		if rt != nil {
			rt.Touch() // a redeclaration renews an x-expires lease
		}
		return q.info(), false, nil
	}
	typ, err := checkNewQueue(vhost, name, durable, spec.Exclusive, spec.AutoDelete, args)
	if err != nil {
		return QueueInfo{}, false, err
	}
	if err := b.checkQueueLimit(vh, vhost, name); err != nil {
		return QueueInfo{}, false, err
	}
	undo := func() {}
	if typ == QueueStream {
		if undo, err = b.prepareStreamTopic(ctx, vhost, name, id, args); err != nil {
			return QueueInfo{}, false, err
		}
	}
	def := QueueDef{Vhost: vhost, Name: name, ID: id, Durable: durable, Owner: owner, AutoDelete: spec.AutoDelete, Arguments: args}
	p := newAMQPPlan()
	p.add(AMQPStep{DeclareQueue: &def}, durable)
	if err := b.commitAMQP(ctx, p); err != nil {
		undo()
		return QueueInfo{}, false, err
	}
	return vh.queues[name].info(), true, nil
}

// DeleteQueue is queue.delete by connection connID: it removes the queue
// and its bindings (and the auto-delete exchanges left without bindings).
// Deleting a queue that does not exist succeeds. Another connection's
// exclusive queue is ErrResourceLocked; a failed if-unused or if-empty
// condition is ErrPreconditionFailed.
func (b *Broker) DeleteQueue(ctx context.Context, vhost, connID, name string, check QueueDeleteCheck) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	vh, err := b.state.amqp.vhost(vhost)
	if err != nil {
		return 0, err
	}
	q, ok := vh.queues[name]
	if !ok {
		return 0, nil
	}
	if err := checkExclusiveAccess(q, connID, false); err != nil {
		return 0, err
	}
	var messages int
	b.amqp.mu.RLock()
	rt := b.queues.byID[q.def.ID]
	s := b.queues.streams[q.def.ID]
	b.amqp.mu.RUnlock()
	if rt != nil {
		n, consumers := rt.Counts()
		messages = n
		check.HasConsumers = check.HasConsumers || consumers > 0
		check.HasMessages = check.HasMessages || n > 0
	}
	if s != nil {
		n := s.Messages()
		messages = int(n)
		check.HasConsumers = check.HasConsumers || s.Consumers() > 0
		check.HasMessages = check.HasMessages || n > 0
	}
	if check.IfUnused && check.HasConsumers {
		return 0, modelErr(ErrPreconditionFailed, "%s in use", rs("queue", vhost, name))
	}
	if check.IfEmpty && check.HasMessages {
		return 0, modelErr(ErrPreconditionFailed, "%s not empty", rs("queue", vhost, name))
	}
	p := newAMQPPlan()
	p.deleteQueue(q)
	return messages, b.commitAMQP(ctx, p)
}

// QueueUnused tells the broker that an auto-delete queue lost its last
// consumer (the adapter knows consumers; the model does not): the queue is
// deleted. It does nothing to a queue that is not auto-delete or does not
// exist.
func (b *Broker) QueueUnused(ctx context.Context, vhost, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	vh, err := b.state.amqp.vhost(vhost)
	if err != nil {
		return err
	}
	q, ok := vh.queues[name]
	if !ok || !q.def.AutoDelete {
		return nil
	}
	p := newAMQPPlan()
	p.deleteQueue(q)
	return b.commitAMQP(ctx, p)
}

// ConnectionClosed deletes the exclusive queues of a connection that has
// closed, with their bindings.
func (b *Broker) ConnectionClosed(ctx context.Context, connID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	owned := b.state.amqp.owned[connID]
	if len(owned) == 0 {
		return nil
	}
	p := newAMQPPlan()
	for q := range owned {
		p.deleteQueue(q)
	}
	return b.commitAMQP(ctx, p)
}

// BindQueue is queue.bind by connection connID: messages the source
// exchange routes with the binding's key (and arguments) go to the queue.
// Binding twice is binding once. A missing exchange or queue is
// ErrNotFound, the default exchange ErrAccessRefused, invalid headers
// arguments ErrPreconditionFailed, another connection's exclusive queue
// ErrResourceLocked.
func (b *Broker) BindQueue(ctx context.Context, vhost, connID string, spec BindingSpec) error {
	return b.bind(ctx, vhost, connID, spec, false)
}

// BindExchange is exchange.bind: messages the source routes with the
// binding's key (and arguments) are routed again by the destination
// exchange.
func (b *Broker) BindExchange(ctx context.Context, vhost string, spec BindingSpec) error {
	return b.bind(ctx, vhost, "", spec, true)
}

// UnbindQueue is queue.unbind by connection connID. Removing a binding that
// does not exist, or whose exchange or queue does not, succeeds. An
// auto-delete exchange that loses its last binding is deleted.
func (b *Broker) UnbindQueue(ctx context.Context, vhost, connID string, spec BindingSpec) error {
	return b.unbind(ctx, vhost, connID, spec, false)
}

// UnbindExchange is exchange.unbind, with UnbindQueue's rules.
func (b *Broker) UnbindExchange(ctx context.Context, vhost string, spec BindingSpec) error {
	return b.unbind(ctx, vhost, "", spec, true)
}

func bindingDef(vhost string, spec BindingSpec, toExchange bool) (BindingDef, error) {
	if spec.Source == "" || toExchange && spec.Destination == "" {
		return BindingDef{}, defaultExchangeRefused()
	}
	args, err := normalizeTable(spec.Arguments)
	if err != nil {
		return BindingDef{}, modelErr(ErrPreconditionFailed, "invalid binding arguments: %v", err)
	}
	return BindingDef{Vhost: vhost, Source: spec.Source, Destination: spec.Destination, ToExchange: toExchange,
		RoutingKey: spec.RoutingKey, Arguments: args}, nil
}

func (b *Broker) bind(ctx context.Context, vhost, connID string, spec BindingSpec, toExchange bool) error {
	def, err := bindingDef(vhost, spec, toExchange)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	vh, err := b.state.amqp.vhost(vhost)
	if err != nil {
		return err
	}
	src, ok := vh.exchanges[def.Source]
	if !ok {
		return modelErr(ErrNotFound, "no %s", rs("exchange", vhost, def.Source))
	}
	var dest struct {
		durable bool
		queue   *amqpQueue
	}
	if toExchange {
		dx, ok := vh.exchanges[def.Destination]
		if !ok {
			return modelErr(ErrNotFound, "no %s", rs("exchange", vhost, def.Destination))
		}
		dest.durable = dx.def.Durable
	} else {
		q, ok := vh.queues[def.Destination]
		if !ok {
			return modelErr(ErrNotFound, "no %s", rs("queue", vhost, def.Destination))
		}
		dest.durable, dest.queue = q.def.Durable, q
	}
	if src.def.Type == ExchangeHeaders {
		if _, err := parseXMatch(def.Arguments); err != nil {
			return err
		}
	}
	if dest.queue != nil {
		if err := checkExclusiveAccess(dest.queue, connID, false); err != nil {
			return err
		}
	}
	if _, exists := src.out[bindingIDOf(&def)]; exists {
		return nil
	}
	p := newAMQPPlan()
	p.add(AMQPStep{Bind: &def}, src.def.Durable && dest.durable)
	return b.commitAMQP(ctx, p)
}

func (b *Broker) unbind(ctx context.Context, vhost, connID string, spec BindingSpec, toExchange bool) error {
	def, err := bindingDef(vhost, spec, toExchange)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bd, err := b.state.amqp.findBinding(&def)
	if err != nil || bd == nil {
		return err
	}
	if bd.dq != nil {
		if err := checkExclusiveAccess(bd.dq, connID, false); err != nil {
			return err
		}
	}
	p := newAMQPPlan()
	p.unbind(bd)
	return b.commitAMQP(ctx, p)
}

// Route returns the queues a message published to exchange in vhost goes
// to, each once: see AppendRoute.
func (b *Broker) Route(vhost, exchange string, routingKeys []string, headers Table) ([]QueueRef, error) {
	return b.AppendRoute(nil, vhost, exchange, routingKeys, headers)
}

// AppendRoute appends to dst the queues a message published to exchange in
// vhost goes to, each once, and allocates nothing when dst has room.
// routingKeys are the message's routing key and any extra ones (sender-
// selected distribution, CC and BCC, passes them here); headers are its
// headers, used by headers exchanges. The exchange's type picks the
// bindings: direct by equal key, fanout all, topic by pattern ('*' one
// word, '#' zero or more), headers by x-match; the default exchange ""
// routes to the queue named by each key. Bindings to exchanges are followed
// (each exchange once, so cycles end), and an exchange whose bindings match
// nothing hands the message to its alternate exchange. A missing exchange
// is ErrNotFound; an internal one cannot be published to
// (ErrAccessRefused) but is routed through.
func (b *Broker) AppendRoute(dst []QueueRef, vhost, exchange string, routingKeys []string, headers Table) ([]QueueRef, error) {
	sc, _ := b.amqp.scratch.Get().(*routeScratch)
	if sc == nil {
		sc = &routeScratch{}
	}
	b.amqp.mu.RLock()
	dst, err := b.state.amqp.route(dst, sc, vhost, exchange, routingKeys, headers)
	b.amqp.mu.RUnlock()
	sc.reset()
	b.amqp.scratch.Put(sc)
	return dst, err
}

// LookupExchange describes an exchange.
func (b *Broker) LookupExchange(vhost, name string) (ExchangeInfo, bool) {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	return b.state.Exchange(vhost, name)
}

// LookupQueue describes a queue.
func (b *Broker) LookupQueue(vhost, name string) (QueueInfo, bool) {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	return b.state.Queue(vhost, name)
}

// ListQueues describes a vhost's queues, sorted by name.
func (b *Broker) ListQueues(vhost string) ([]QueueInfo, error) {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	if _, err := b.state.amqp.vhost(vhost); err != nil {
		return nil, err
	}
	return b.state.Queues(vhost), nil
}

// ListExchanges describes a vhost's exchanges, sorted by name.
func (b *Broker) ListExchanges(vhost string) ([]ExchangeInfo, error) {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	if _, err := b.state.amqp.vhost(vhost); err != nil {
		return nil, err
	}
	return b.state.Exchanges(vhost), nil
}

// ListBindings describes a vhost's explicit bindings (not the default
// exchange's implicit ones).
func (b *Broker) ListBindings(vhost string) ([]BindingInfo, error) {
	b.amqp.mu.RLock()
	defer b.amqp.mu.RUnlock()
	if _, err := b.state.amqp.vhost(vhost); err != nil {
		return nil, err
	}
	return b.state.Bindings(vhost), nil
}
