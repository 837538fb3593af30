package broker

import (
	"errors"
	"fmt"
	"sort"
)

// amqpState is the AMQP model inside the State: vhosts with their
// exchanges, queues and bindings, and the routing indexes built from them.
// It changes only through applyAMQP.
type amqpState struct {
	vhosts map[string]*amqpVhost
	// owned indexes exclusive queues by the connection that owns them.
	owned map[string]map[*amqpQueue]struct{}
}

type amqpVhost struct {
	name      string
	exchanges map[string]*amqpExchange
	queues    map[string]*amqpQueue
}

type amqpExchange struct {
	def          ExchangeDef
	alternate    string // the alternate-exchange argument
	hasAlternate bool
	// out holds the bindings this exchange is the source of, by identity;
	// in the bindings it is the destination of.
	out map[bindingID]*amqpBinding
	in  map[*amqpBinding]struct{}
	// The routing index of the exchange's type.
	direct map[string][]*amqpBinding // by routing key
	list   []*amqpBinding            // fanout and headers
	topic  *topicTrie
}

type amqpQueue struct {
	def QueueDef
	typ QueueType
	in  map[*amqpBinding]struct{} // bindings to this queue
}

// bindingID is a binding's identity within its source exchange.
type bindingID struct {
	toExchange bool
	dest       string
	key        string
	args       string // canonical form of the arguments
}

type amqpBinding struct {
	def    BindingDef
	id     bindingID
	source *amqpExchange
	dq     *amqpQueue    // destination queue, or
	dx     *amqpExchange // destination exchange
	// Where the binding sits in its source's routing index.
	pos     int
	node    *topicNode
	headers headersSpec
}

func newAMQPState() *amqpState {
	s := &amqpState{vhosts: map[string]*amqpVhost{}, owned: map[string]map[*amqpQueue]struct{}{}}
	s.createVhost(DefaultVhost)
	return s
}

func (s *amqpState) createVhost(name string) {
	vh := &amqpVhost{name: name, exchanges: map[string]*amqpExchange{}, queues: map[string]*amqpQueue{}}
	for _, p := range predeclaredExchanges() {
		vh.exchanges[p.name] = newExchange(ExchangeDef{Vhost: name, Name: p.name, Type: p.typ, Durable: true})
	}
	s.vhosts[name] = vh
}

func newExchange(def ExchangeDef) *amqpExchange {
	x := &amqpExchange{def: def, out: map[bindingID]*amqpBinding{}, in: map[*amqpBinding]struct{}{}}
	if ae, ok := def.Arguments[ArgAlternateExchange].(string); ok {
		x.alternate, x.hasAlternate = ae, true
	}
	switch def.Type {
	case ExchangeDirect:
		x.direct = map[string][]*amqpBinding{}
	case ExchangeTopic:
		x.topic = &topicTrie{}
	}
	return x
}

// queueTypeOf is the x-queue-type of a queue's arguments; classic when
// absent or empty.
func queueTypeOf(args Table) QueueType {
	if t, ok := args["x-queue-type"].(string); ok && t != "" {
		return QueueType(t)
	}
	return QueueClassic
}

// applyAMQP applies a change step by step. A step that does not fit the
// state is skipped and reported; the others still apply, the same way on
// every replay. The broker only makes changes whose every step fits.
func (s *State) applyAMQP(c *AMQPChange) error {
	var errs []error
	for i, st := range c.Steps {
		if err := s.amqp.apply(st); err != nil {
			errs = append(errs, fmt.Errorf("step %d (%s): %w", i, st.kind(), err))
		}
	}
	return errors.Join(errs...)
}

func (s *amqpState) apply(st AMQPStep) error {
	switch {
	case st.CreateVhost != nil:
		if _, ok := s.vhosts[st.CreateVhost.Name]; ok {
			return fmt.Errorf("%w: %q", ErrVhostExists, st.CreateVhost.Name)
		}
		if st.CreateVhost.Name == "" {
			return fmt.Errorf("empty vhost name")
		}
		s.createVhost(st.CreateVhost.Name)
	case st.DeleteVhost != nil:
		vh, ok := s.vhosts[st.DeleteVhost.Name]
		if !ok {
			return fmt.Errorf("%w: %q", ErrVhostNotFound, st.DeleteVhost.Name)
		}
		for _, q := range vh.queues {
			s.disown(q)
		}
		delete(s.vhosts, vh.name)
	case st.DeclareExchange != nil:
		d := st.DeclareExchange
		vh, err := s.vhost(d.Vhost)
		if err != nil {
			return err
		}
		if _, ok := vh.exchanges[d.Name]; ok {
			return fmt.Errorf("exchange %q exists", d.Name)
		}
		if !d.Type.valid() || d.Name == "" {
			return fmt.Errorf("invalid exchange %q of type %q", d.Name, d.Type)
		}
		vh.exchanges[d.Name] = newExchange(*d)
	case st.DeleteExchange != nil:
		vh, err := s.vhost(st.DeleteExchange.Vhost)
		if err != nil {
			return err
		}
		x, ok := vh.exchanges[st.DeleteExchange.Name]
		if !ok || x.def.Name == "" {
			return fmt.Errorf("%w: exchange %q", ErrNotFound, st.DeleteExchange.Name)
		}
		for _, b := range x.out {
			s.unbind(b)
		}
		for b := range x.in {
			s.unbind(b)
		}
		delete(vh.exchanges, x.def.Name)
	case st.DeclareQueue != nil:
		d := st.DeclareQueue
		vh, err := s.vhost(d.Vhost)
		if err != nil {
			return err
		}
		if _, ok := vh.queues[d.Name]; ok || d.Name == "" {
			return fmt.Errorf("queue %q exists", d.Name)
		}
		q := &amqpQueue{def: *d, typ: queueTypeOf(d.Arguments), in: map[*amqpBinding]struct{}{}}
		vh.queues[d.Name] = q
		if d.Owner != "" {
			if s.owned[d.Owner] == nil {
				s.owned[d.Owner] = map[*amqpQueue]struct{}{}
			}
			s.owned[d.Owner][q] = struct{}{}
		}
	case st.DeleteQueue != nil:
		d := st.DeleteQueue
		vh, err := s.vhost(d.Vhost)
		if err != nil {
			return err
		}
		q, ok := vh.queues[d.Name]
		if !ok || q.def.ID != d.ID {
			return fmt.Errorf("%w: queue %q with id %s", ErrNotFound, d.Name, d.ID)
		}
		for b := range q.in {
			s.unbind(b)
		}
		s.disown(q)
		delete(vh.queues, d.Name)
	case st.Bind != nil:
		return s.bind(st.Bind)
	case st.Unbind != nil:
		b, err := s.findBinding(st.Unbind)
		if err != nil {
			return err
		}
		if b == nil {
			return fmt.Errorf("%w: binding", ErrNotFound)
		}
		s.unbind(b)
	default:
		return fmt.Errorf("empty amqp step")
	}
	return nil
}

func (s *amqpState) vhost(name string) (*amqpVhost, error) {
	vh, ok := s.vhosts[name]
	if !ok {
		return nil, &ModelError{Kind: ErrVhostNotFound, Text: fmt.Sprintf("vhost '%s' not found", name)}
	}
	return vh, nil
}

func (s *amqpState) disown(q *amqpQueue) {
	if q.def.Owner == "" {
		return
	}
	delete(s.owned[q.def.Owner], q)
	if len(s.owned[q.def.Owner]) == 0 {
		delete(s.owned, q.def.Owner)
	}
}

func bindingIDOf(d *BindingDef) bindingID {
	return bindingID{toExchange: d.ToExchange, dest: d.Destination, key: d.RoutingKey, args: d.Arguments.canonicalKey()}
}

// findBinding returns the binding d names, nil if there is none, or an
// error if its vhost does not exist.
func (s *amqpState) findBinding(d *BindingDef) (*amqpBinding, error) {
	vh, err := s.vhost(d.Vhost)
	if err != nil {
		return nil, err
	}
	x, ok := vh.exchanges[d.Source]
	if !ok {
		return nil, nil
	}
	return x.out[bindingIDOf(d)], nil
}

func (s *amqpState) bind(d *BindingDef) error {
	vh, err := s.vhost(d.Vhost)
	if err != nil {
		return err
	}
	src, ok := vh.exchanges[d.Source]
	if !ok || d.Source == "" {
		return fmt.Errorf("%w: source exchange %q", ErrNotFound, d.Source)
	}
	b := &amqpBinding{def: *d, id: bindingIDOf(d), source: src}
	if _, dup := src.out[b.id]; dup {
		return fmt.Errorf("binding exists")
	}
	if d.ToExchange {
		if b.dx = vh.exchanges[d.Destination]; b.dx == nil || d.Destination == "" {
			return fmt.Errorf("%w: destination exchange %q", ErrNotFound, d.Destination)
		}
	} else if b.dq = vh.queues[d.Destination]; b.dq == nil {
		return fmt.Errorf("%w: destination queue %q", ErrNotFound, d.Destination)
	}
	if src.def.Type == ExchangeHeaders {
		if b.headers, err = compileHeaders(d.Arguments); err != nil {
			return err
		}
	}
	src.out[b.id] = b
	if b.dx != nil {
		b.dx.in[b] = struct{}{}
	} else {
		b.dq.in[b] = struct{}{}
	}
	src.index(b)
	return nil
}

func (s *amqpState) unbind(b *amqpBinding) {
	src := b.source
	delete(src.out, b.id)
	if b.dx != nil {
		delete(b.dx.in, b)
	} else {
		delete(b.dq.in, b)
	}
	src.unindex(b)
}

// index adds b to the exchange's routing index.
func (x *amqpExchange) index(b *amqpBinding) {
	switch x.def.Type {
	case ExchangeDirect:
		l := x.direct[b.def.RoutingKey]
		b.pos = len(l)
		x.direct[b.def.RoutingKey] = append(l, b)
	case ExchangeTopic:
		x.topic.add(b)
	default:
		b.pos = len(x.list)
		x.list = append(x.list, b)
	}
}

// unindex removes b from the exchange's routing index.
func (x *amqpExchange) unindex(b *amqpBinding) {
	switch x.def.Type {
	case ExchangeDirect:
		l := removeAt(x.direct[b.def.RoutingKey], b.pos)
		if len(l) == 0 {
			delete(x.direct, b.def.RoutingKey)
		} else {
			x.direct[b.def.RoutingKey] = l
		}
	case ExchangeTopic:
		x.topic.remove(b)
	default:
		x.list = removeAt(x.list, b.pos)
	}
}

// removeAt removes l[i] by moving the last binding into its place.
func removeAt(l []*amqpBinding, i int) []*amqpBinding {
	last := len(l) - 1
	l[i] = l[last]
	l[i].pos = i
	l[last] = nil
	return l[:last]
}

func (x *amqpExchange) info() ExchangeInfo {
	d := x.def
	return ExchangeInfo{Vhost: d.Vhost, Name: d.Name, Type: d.Type, Durable: d.Durable, AutoDelete: d.AutoDelete,
		Internal: d.Internal, Arguments: d.Arguments.clone(), AlternateExchange: x.alternate}
}

func (q *amqpQueue) info() QueueInfo {
	d := q.def
	return QueueInfo{Vhost: d.Vhost, Name: d.Name, ID: d.ID, Type: q.typ, Durable: d.Durable, Exclusive: d.Owner != "",
		AutoDelete: d.AutoDelete, Owner: d.Owner, Arguments: d.Arguments.clone()}
}

func (b *amqpBinding) info() BindingInfo {
	d := b.def
	return BindingInfo{Vhost: d.Vhost, Source: d.Source, Destination: d.Destination, DestinationIsExchange: d.ToExchange,
		RoutingKey: d.RoutingKey, Arguments: d.Arguments.clone()}
}

// Vhosts lists the vhosts, sorted.
func (s *State) Vhosts() []string {
	out := make([]string, 0, len(s.amqp.vhosts))
	for name := range s.amqp.vhosts {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Exchange describes an exchange.
func (s *State) Exchange(vhost, name string) (ExchangeInfo, bool) {
	vh, ok := s.amqp.vhosts[vhost]
	if !ok {
		return ExchangeInfo{}, false
	}
	x, ok := vh.exchanges[name]
	if !ok {
		return ExchangeInfo{}, false
	}
	return x.info(), true
}

// Queue describes a queue.
func (s *State) Queue(vhost, name string) (QueueInfo, bool) {
	vh, ok := s.amqp.vhosts[vhost]
	if !ok {
		return QueueInfo{}, false
	}
	q, ok := vh.queues[name]
	if !ok {
		return QueueInfo{}, false
	}
	return q.info(), true
}

// Exchanges describes a vhost's exchanges, sorted by name.
func (s *State) Exchanges(vhost string) []ExchangeInfo {
	vh, ok := s.amqp.vhosts[vhost]
	if !ok {
		return nil
	}
	out := make([]ExchangeInfo, 0, len(vh.exchanges))
	for _, x := range vh.exchanges {
		out = append(out, x.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Queues describes a vhost's queues, sorted by name.
func (s *State) Queues(vhost string) []QueueInfo {
	vh, ok := s.amqp.vhosts[vhost]
	if !ok {
		return nil
	}
	out := make([]QueueInfo, 0, len(vh.queues))
	for _, q := range vh.queues {
		out = append(out, q.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Bindings describes a vhost's explicit bindings (not the default
// exchange's implicit ones), sorted by source, destination, kind of
// destination, routing key and arguments.
func (s *State) Bindings(vhost string) []BindingInfo {
	vh, ok := s.amqp.vhosts[vhost]
	if !ok {
		return nil
	}
	var bs []*amqpBinding
	for _, x := range vh.exchanges {
		for _, b := range x.out {
			bs = append(bs, b)
		}
	}
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.def.Source != b.def.Source {
			return a.def.Source < b.def.Source
		}
		if a.id.dest != b.id.dest {
			return a.id.dest < b.id.dest
		}
		if a.id.toExchange != b.id.toExchange {
			return !a.id.toExchange
		}
		if a.id.key != b.id.key {
			return a.id.key < b.id.key
		}
		return a.id.args < b.id.args
	})
	out := make([]BindingInfo, len(bs))
	for i, b := range bs {
		out[i] = b.info()
	}
	return out
}
