package broker

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

func openTestBroker(tb testing.TB, dir string) *Broker {
	tb.Helper()
	b, err := Open(Options{DataDir: dir, LogDefaults: storage.DefaultLogConfig()})
	if err != nil {
		tb.Fatalf("open broker: %v", err)
	}
	return b
}

// wantModelError checks an error's kind and, when text is not empty, its
// exact reply text.
func wantModelError(t *testing.T, err, kind error, text string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	var me *ModelError
	if !errors.As(err, &me) {
		t.Fatalf("error %T %v is not a *ModelError", err, err)
	}
	if text != "" && me.Text != text {
		t.Fatalf("reply text\n got: %s\nwant: %s", me.Text, text)
	}
}

func mustDeclareExchange(t testing.TB, b *Broker, vhost string, spec ExchangeSpec) {
	t.Helper()
	if _, err := b.DeclareExchange(t.Context(), vhost, spec); err != nil {
		t.Fatalf("declare exchange %q: %v", spec.Name, err)
	}
}

func mustDeclareQueue(t testing.TB, b *Broker, vhost, conn string, spec QueueSpec) QueueInfo {
	t.Helper()
	info, _, err := b.DeclareQueue(t.Context(), vhost, conn, spec)
	if err != nil {
		t.Fatalf("declare queue %q: %v", spec.Name, err)
	}
	return info
}

func mustBindQueue(t testing.TB, b *Broker, vhost, source, queue, key string, args Table) {
	t.Helper()
	if err := b.BindQueue(t.Context(), vhost, "c1", BindingSpec{Source: source, Destination: queue, RoutingKey: key, Arguments: args}); err != nil {
		t.Fatalf("bind %s -> %s: %v", source, queue, err)
	}
}

func mustBindExchange(t testing.TB, b *Broker, vhost, source, dest, key string) {
	t.Helper()
	if err := b.BindExchange(t.Context(), vhost, BindingSpec{Source: source, Destination: dest, RoutingKey: key}); err != nil {
		t.Fatalf("bind %s -> %s: %v", source, dest, err)
	}
}

func exchangeNames(t *testing.T, b *Broker, vhost string) []string {
	t.Helper()
	xs, err := b.ListExchanges(vhost)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range xs {
		out = append(out, x.Name)
	}
	return out
}

func queueNames(t *testing.T, b *Broker, vhost string) []string {
	t.Helper()
	qs, err := b.ListQueues(vhost)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, q := range qs {
		out = append(out, q.Name)
	}
	return out
}

func bindingNames(t *testing.T, b *Broker, vhost string) []string {
	t.Helper()
	bs, err := b.ListBindings(vhost)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, bd := range bs {
		out = append(out, bd.Source+"->"+bd.Destination+":"+bd.RoutingKey)
	}
	return out
}

func TestExchangeDeclare(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "x", Type: "direct", Durable: true,
		Arguments: Table{ArgAlternateExchange: "ae1", "other": int32(1)}})
	cases := []struct {
		name string
		spec ExchangeSpec
		kind error
		text string
	}{
		{"equivalent", ExchangeSpec{Name: "x", Type: "direct", Durable: true, Arguments: Table{ArgAlternateExchange: "ae1"}}, nil, ""},
		{"other arguments are not compared", ExchangeSpec{Name: "x", Type: "direct", Durable: true, Arguments: Table{ArgAlternateExchange: []byte("ae1"), "other": int32(2)}}, nil, ""},
		{"type", ExchangeSpec{Name: "x", Type: "fanout", Durable: true}, ErrPreconditionFailed,
			"inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"},
		{"durable", ExchangeSpec{Name: "x", Type: "direct"}, ErrPreconditionFailed,
			"inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'false' but current is 'true'"},
		{"auto-delete", ExchangeSpec{Name: "x", Type: "direct", Durable: true, AutoDelete: true}, ErrPreconditionFailed,
			"inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': received 'true' but current is 'false'"},
		{"internal", ExchangeSpec{Name: "x", Type: "direct", Durable: true, Internal: true}, ErrPreconditionFailed,
			"inequivalent arg 'internal' for exchange 'x' in vhost '/': received 'true' but current is 'false'"},
		{"alternate exchange", ExchangeSpec{Name: "x", Type: "direct", Durable: true, Arguments: Table{ArgAlternateExchange: "ae2"}}, ErrPreconditionFailed,
			"inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received 'ae2' but current is 'ae1'"},
		{"alternate exchange missing", ExchangeSpec{Name: "x", Type: "direct", Durable: true}, ErrPreconditionFailed,
			"inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received none but current is the value 'ae1' of type 'longstr'"},
		{"unknown type", ExchangeSpec{Name: "x", Type: "x-consistent-hash"}, ErrPreconditionFailed, "unknown exchange type 'x-consistent-hash'"},
		{"passive", ExchangeSpec{Name: "x", Passive: true}, nil, ""},
		{"passive missing", ExchangeSpec{Name: "nope", Passive: true}, ErrNotFound, "no exchange 'nope' in vhost '/'"},
		{"passive amq missing", ExchangeSpec{Name: "amq.nope", Passive: true}, ErrNotFound, "no exchange 'amq.nope' in vhost '/'"},
		{"reserved name", ExchangeSpec{Name: "amq.foo", Type: "direct"}, ErrAccessRefused,
			"exchange name 'amq.foo' contains reserved prefix 'amq.*'"},
		{"predeclared, equivalent", ExchangeSpec{Name: "amq.direct", Type: "direct", Durable: true}, nil, ""},
		{"predeclared, match", ExchangeSpec{Name: "amq.match", Type: "headers", Durable: true}, nil, ""},
		{"predeclared, not durable", ExchangeSpec{Name: "amq.topic", Type: "topic"}, ErrPreconditionFailed,
			"inequivalent arg 'durable' for exchange 'amq.topic' in vhost '/': received 'false' but current is 'true'"},
		{"predeclared, other type", ExchangeSpec{Name: "amq.fanout", Type: "direct", Durable: true}, ErrPreconditionFailed,
			"inequivalent arg 'type' for exchange 'amq.fanout' in vhost '/': received 'direct' but current is 'fanout'"},
		{"default exchange", ExchangeSpec{Name: "", Type: "direct", Durable: true}, ErrAccessRefused, "operation not permitted on the default exchange"},
		{"default exchange, passive", ExchangeSpec{Name: "", Passive: true}, ErrAccessRefused, "operation not permitted on the default exchange"},
		{"alternate exchange not a string", ExchangeSpec{Name: "y", Type: "direct", Arguments: Table{ArgAlternateExchange: int32(1)}}, ErrPreconditionFailed,
			"invalid type 'signedint' for arg 'alternate-exchange' in exchange 'y' in vhost '/'"},
		{"unsupported argument value", ExchangeSpec{Name: "y", Type: "direct", Arguments: Table{"a": struct{}{}}}, ErrPreconditionFailed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.DeclareExchange(t.Context(), vh, c.spec)
			wantModelError(t, err, c.kind, c.text)
		})
	}
	if _, err := b.DeclareExchange(t.Context(), "nope", ExchangeSpec{Name: "x", Type: "direct"}); !errors.Is(err, ErrVhostNotFound) {
		t.Fatalf("declare in a missing vhost: %v", err)
	}
	info, ok := b.LookupExchange(vh, "x")
	if !ok || info.AlternateExchange != "ae1" || info.Type != ExchangeDirect || !info.Durable {
		t.Fatalf("lookup: %+v %v", info, ok)
	}
	if got, want := exchangeNames(t, b, vh), []string{"", "amq.direct", "amq.fanout", "amq.headers", "amq.match", "amq.topic", "x"}; !slices.Equal(got, want) {
		t.Fatalf("exchanges %q, want %q", got, want)
	}
}

func TestExchangeDelete(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "src", Type: "direct"})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "dst", Type: "fanout"})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q"})
	mustBindQueue(t, b, vh, "src", "q", "k", nil)
	mustBindExchange(t, b, vh, "src", "dst", "k")
	mustBindQueue(t, b, vh, "dst", "q", "", nil)

	for _, c := range []struct {
		name     string
		exchange string
		ifUnused bool
		kind     error
		text     string
	}{
		{"default", "", false, ErrAccessRefused, "operation not permitted on the default exchange"},
		{"amq.direct", "amq.direct", false, ErrAccessRefused, "deletion of system exchange 'amq.direct' in vhost '/' not allowed"},
		{"amq. even when missing", "amq.nope", false, ErrAccessRefused, "deletion of system exchange 'amq.nope' in vhost '/' not allowed"},
		{"missing", "nope", false, nil, ""},
		{"in use", "src", true, ErrPreconditionFailed, "exchange 'src' in vhost '/' in use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantModelError(t, b.DeleteExchange(ctx, vh, c.exchange, c.ifUnused), c.kind, c.text)
		})
	}
	if got, want := bindingNames(t, b, vh), []string{"dst->q:", "src->dst:k", "src->q:k"}; !slices.Equal(got, want) {
		t.Fatalf("bindings %q, want %q", got, want)
	}
	// dst is only a destination of src; if-unused counts the bindings an
	// exchange is the source of, so dst with its own binding is in use.
	wantModelError(t, b.DeleteExchange(ctx, vh, "dst", true), ErrPreconditionFailed, "exchange 'dst' in vhost '/' in use")
	if err := b.DeleteExchange(ctx, vh, "dst", false); err != nil {
		t.Fatal(err)
	}
	if got, want := bindingNames(t, b, vh), []string{"src->q:k"}; !slices.Equal(got, want) {
		t.Fatalf("bindings after deleting dst %q, want %q", got, want)
	}
	if err := b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "src", Destination: "q", RoutingKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteExchange(ctx, vh, "src", true); err != nil {
		t.Fatalf("if-unused delete of an unused exchange: %v", err)
	}
	if _, ok := b.LookupExchange(vh, "src"); ok {
		t.Fatal("src still exists")
	}
}

func TestQueueDeclare(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int32(1000), "x-custom": "a"}})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "qq", Durable: true, Arguments: Table{"x-queue-type": "quorum"}})
	cases := []struct {
		name string
		conn string
		spec QueueSpec
		kind error
		text string
	}{
		{"equivalent", "c2", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int32(1000)}}, nil, ""},
		{"integer widths are equivalent", "c2", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int64(1000)}}, nil, ""},
		{"explicit classic", "c2", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": uint16(1000), "x-queue-type": "classic"}}, nil, ""},
		{"unchecked argument", "c2", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int32(1000), "x-custom": "b"}}, nil, ""},
		{"argument value", "c2", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int32(2000)}}, ErrPreconditionFailed,
			"inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received '2000' but current is '1000'"},
		{"argument missing", "c2", QueueSpec{Name: "q", Durable: true}, ErrPreconditionFailed,
			"inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received none but current is the value '1000' of type 'signedint'"},
		{"argument added", "c2", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int32(1000), "x-max-length": int32(5)}}, ErrPreconditionFailed,
			"inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received the value '5' of type 'signedint' but current is none"},
		{"integer and double differ", "c2", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": float64(1000)}}, ErrPreconditionFailed, ""},
		{"durable", "c2", QueueSpec{Name: "q", Arguments: Table{"x-message-ttl": int32(1000)}}, ErrPreconditionFailed,
			"inequivalent arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'"},
		{"auto-delete", "c2", QueueSpec{Name: "q", Durable: true, AutoDelete: true, Arguments: Table{"x-message-ttl": int32(1000)}}, ErrPreconditionFailed,
			"inequivalent arg 'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'"},
		{"queue type", "c2", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int32(1000), "x-queue-type": "quorum"}}, ErrPreconditionFailed,
			"inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received 'quorum' but current is 'classic'"},
		{"quorum redeclared without a type", "c2", QueueSpec{Name: "qq", Durable: true}, ErrPreconditionFailed,
			"inequivalent arg 'x-queue-type' for queue 'qq' in vhost '/': received 'classic' but current is 'quorum'"},
		{"quorum equivalent", "c2", QueueSpec{Name: "qq", Durable: true, Arguments: Table{"x-queue-type": "quorum"}}, nil, ""},
		{"exclusive", "c1", QueueSpec{Name: "q", Durable: true, Exclusive: true, Arguments: Table{"x-message-ttl": int32(1000)}}, ErrResourceLocked,
			"cannot obtain exclusive access to locked queue 'q' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."},
		{"passive", "c2", QueueSpec{Name: "q", Passive: true}, nil, ""},
		{"passive missing", "c2", QueueSpec{Name: "nope", Passive: true}, ErrNotFound, "no queue 'nope' in vhost '/'"},
		{"reserved name", "c2", QueueSpec{Name: "amq.q"}, ErrAccessRefused, "queue name 'amq.q' contains reserved prefix 'amq.*'"},
		{"unknown type", "c2", QueueSpec{Name: "n", Arguments: Table{"x-queue-type": "fancy"}}, ErrPreconditionFailed,
			"invalid arg 'x-queue-type' for queue 'n' in vhost '/': \"unsupported queue type 'fancy'\""},
		{"type not a string", "c2", QueueSpec{Name: "n", Arguments: Table{"x-queue-type": int32(1)}}, ErrPreconditionFailed,
			"invalid arg 'x-queue-type' for queue 'n' in vhost '/': {unacceptable_type,signedint}"},
		{"negative ttl", "c2", QueueSpec{Name: "n", Arguments: Table{"x-message-ttl": int32(-1)}}, ErrPreconditionFailed,
			"invalid arg 'x-message-ttl' for queue 'n' in vhost '/': {value_negative,-1}"},
		{"zero expires", "c2", QueueSpec{Name: "n", Arguments: Table{"x-expires": int32(0)}}, ErrPreconditionFailed,
			"invalid arg 'x-expires' for queue 'n' in vhost '/': {value_zero,0}"},
		{"max length not an integer", "c2", QueueSpec{Name: "n", Arguments: Table{"x-max-length": "ten"}}, ErrPreconditionFailed,
			"invalid arg 'x-max-length' for queue 'n' in vhost '/': \"expected integer, got longstr\""},
		{"priority too high", "c2", QueueSpec{Name: "n", Arguments: Table{"x-max-priority": int32(300)}}, ErrPreconditionFailed,
			"invalid arg 'x-max-priority' for queue 'n' in vhost '/': {max_value_exceeded,300}"},
		{"overflow", "c2", QueueSpec{Name: "n", Arguments: Table{"x-overflow": "explode"}}, ErrPreconditionFailed,
			"invalid arg 'x-overflow' for queue 'n' in vhost '/': invalid_overflow"},
		{"single active consumer", "c2", QueueSpec{Name: "n", Arguments: Table{"x-single-active-consumer": "yes"}}, ErrPreconditionFailed,
			"invalid arg 'x-single-active-consumer' for queue 'n' in vhost '/': {unacceptable_type,longstr}"},
		{"dead-letter exchange not a string", "c2", QueueSpec{Name: "n", Arguments: Table{"x-dead-letter-exchange": int32(1)}}, ErrPreconditionFailed,
			"invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'n' in vhost '/'"},
		{"dead-letter key without exchange", "c2", QueueSpec{Name: "n", Arguments: Table{"x-dead-letter-routing-key": "k"}}, ErrPreconditionFailed,
			"invalid arg 'x-dead-letter-routing-key' for queue 'n' in vhost '/': routing_key_but_no_dlx_defined"},
		{"argument of another type", "c2", QueueSpec{Name: "n", Durable: true, Arguments: Table{"x-queue-type": "quorum", "x-max-priority": int32(5)}}, ErrPreconditionFailed,
			"invalid arg 'x-max-priority' for queue 'n' in vhost '/' of queue type rabbit_quorum_queue"},
		{"stream max age", "c2", QueueSpec{Name: "n", Durable: true, Arguments: Table{"x-queue-type": "stream", "x-max-age": "0D"}}, ErrPreconditionFailed,
			"invalid arg 'x-max-age' for queue 'n' in vhost '/': invalid_max_age"},
		{"quorum auto-delete", "c2", QueueSpec{Name: "n", Durable: true, AutoDelete: true, Arguments: Table{"x-queue-type": "quorum"}}, ErrPreconditionFailed,
			"invalid property 'auto-delete' for queue 'n' in vhost '/'"},
		{"quorum exclusive", "c2", QueueSpec{Name: "n", Durable: true, Exclusive: true, Arguments: Table{"x-queue-type": "quorum"}}, ErrPreconditionFailed,
			"invalid property 'exclusive-owner' for queue 'n' in vhost '/'"},
		{"stream not durable", "c2", QueueSpec{Name: "n", Arguments: Table{"x-queue-type": "stream"}}, ErrPreconditionFailed,
			"invalid property 'non-durable' for queue 'n' in vhost '/'"},
		{"server-named quorum", "c2", QueueSpec{Durable: true, Arguments: Table{"x-queue-type": "quorum"}}, ErrPreconditionFailed,
			"Cannot declare a server-named queue for type rabbit_quorum_queue"},
		{"stream", "c2", QueueSpec{Name: "s", Durable: true, Arguments: Table{"x-queue-type": "stream", "x-max-age": "7D"}}, nil, ""},
		{"exclusive without a connection", "", QueueSpec{Name: "n", Exclusive: true}, ErrPreconditionFailed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := b.DeclareQueue(t.Context(), vh, c.conn, c.spec)
			wantModelError(t, err, c.kind, c.text)
		})
	}
	if got, want := queueNames(t, b, vh), []string{"q", "qq", "s"}; !slices.Equal(got, want) {
		t.Fatalf("queues %q, want %q", got, want)
	}
	info, ok := b.LookupQueue(vh, "s")
	if !ok || info.Type != QueueStream || !info.Durable {
		t.Fatalf("stream queue: %+v", info)
	}
	if _, created, err := b.DeclareQueue(t.Context(), vh, "c1", QueueSpec{Name: "q", Durable: true, Arguments: Table{"x-message-ttl": int32(1000)}}); err != nil || created {
		t.Fatalf("redeclare: created %v, %v", created, err)
	}
}

func TestServerNamedQueue(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	info, created, err := b.DeclareQueue(ctx, vh, "c1", QueueSpec{Exclusive: true})
	if err != nil || !created {
		t.Fatalf("declare: %v %v", created, err)
	}
	if !strings.HasPrefix(info.Name, ServerNamedQueuePrefix) || len(info.Name) != len(ServerNamedQueuePrefix)+22 {
		t.Fatalf("server-named queue %q", info.Name)
	}
	other := mustDeclareQueue(t, b, vh, "c1", QueueSpec{})
	if other.Name == info.Name || other.ID == info.ID {
		t.Fatalf("two server-named queues share a name or an id: %+v %+v", info, other)
	}
	// RabbitMQ checks the reserved prefix before looking the queue up, so
	// a server-named queue can only be redeclared passively.
	_, _, err = b.DeclareQueue(ctx, vh, "c1", QueueSpec{Name: info.Name, Exclusive: true})
	wantModelError(t, err, ErrAccessRefused, "queue name '"+info.Name+"' contains reserved prefix 'amq.*'")
	if _, _, err := b.DeclareQueue(ctx, vh, "c1", QueueSpec{Name: info.Name, Passive: true}); err != nil {
		t.Fatal(err)
	}
}

func TestExclusiveQueues(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	info := mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "mine", Durable: true, Exclusive: true})
	if info.Durable || !info.Exclusive || info.Owner != "c1" {
		t.Fatalf("exclusive queue %+v: want not durable, owned by c1", info)
	}
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "mine2", Exclusive: true, AutoDelete: true})
	mustDeclareQueue(t, b, vh, "c2", QueueSpec{Name: "theirs", Exclusive: true})
	mustDeclareQueue(t, b, vh, "c2", QueueSpec{Name: "shared"})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "ad", Type: "fanout", Durable: true, AutoDelete: true})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "keep", Type: "fanout", AutoDelete: true})
	if err := b.BindQueue(ctx, vh, "c1", BindingSpec{Source: "ad", Destination: "mine"}); err != nil {
		t.Fatal(err)
	}
	if err := b.BindQueue(ctx, vh, "c1", BindingSpec{Source: "keep", Destination: "mine2"}); err != nil {
		t.Fatal(err)
	}
	if err := b.BindQueue(ctx, vh, "c1", BindingSpec{Source: "keep", Destination: "shared"}); err != nil {
		t.Fatal(err)
	}
	const locked = "cannot obtain exclusive access to locked queue 'mine' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
	for _, c := range []struct {
		name string
		err  func() error
	}{
		{"declare", func() error {
			_, _, err := b.DeclareQueue(ctx, vh, "c2", QueueSpec{Name: "mine", Exclusive: true})
			return err
		}},
		{"declare shared", func() error {
			_, _, err := b.DeclareQueue(ctx, vh, "c2", QueueSpec{Name: "mine"})
			return err
		}},
		{"declare passive", func() error {
			_, _, err := b.DeclareQueue(ctx, vh, "c2", QueueSpec{Name: "mine", Passive: true})
			return err
		}},
		{"redeclare not exclusive by the owner", func() error {
			_, _, err := b.DeclareQueue(ctx, vh, "c1", QueueSpec{Name: "mine"})
			return err
		}},
		{"bind", func() error {
			return b.BindQueue(ctx, vh, "c2", BindingSpec{Source: "amq.direct", Destination: "mine"})
		}},
		{"unbind", func() error {
			return b.UnbindQueue(ctx, vh, "c2", BindingSpec{Source: "ad", Destination: "mine"})
		}},
		{"delete", func() error {
			_, err := b.DeleteQueue(ctx, vh, "c2", "mine", QueueDeleteCheck{})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) { wantModelError(t, c.err(), ErrResourceLocked, locked) })
	}
	// Publishing to another connection's exclusive queue is allowed.
	if got, err := b.Route(vh, "", []string{"mine"}, nil); err != nil || len(got) != 1 {
		t.Fatalf("route to an exclusive queue: %v %v", got, err)
	}
	if err := b.ConnectionClosed(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if got, want := queueNames(t, b, vh), []string{"shared", "theirs"}; !slices.Equal(got, want) {
		t.Fatalf("queues after c1 closed %q, want %q", got, want)
	}
	// ad lost its only binding and is gone; keep still has one.
	if _, ok := b.LookupExchange(vh, "ad"); ok {
		t.Fatal("auto-delete exchange bound only to c1's queue survived")
	}
	if got, want := bindingNames(t, b, vh), []string{"keep->shared:"}; !slices.Equal(got, want) {
		t.Fatalf("bindings %q, want %q", got, want)
	}
	if err := b.ConnectionClosed(ctx, "c1"); err != nil {
		t.Fatalf("closing twice: %v", err)
	}
	if err := b.ConnectionClosed(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if got, want := queueNames(t, b, vh), []string{"shared"}; !slices.Equal(got, want) {
		t.Fatalf("queues after c2 closed %q, want %q", got, want)
	}
	// The name is free again.
	mustDeclareQueue(t, b, vh, "c3", QueueSpec{Name: "mine"})
}

func TestQueueDelete(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q", Durable: true})
	mustBindQueue(t, b, vh, "amq.direct", "q", "k", nil)
	for _, c := range []struct {
		name  string
		check QueueDeleteCheck
		kind  error
		text  string
	}{
		{"if unused with consumers", QueueDeleteCheck{IfUnused: true, HasConsumers: true}, ErrPreconditionFailed, "queue 'q' in vhost '/' in use"},
		{"if empty with messages", QueueDeleteCheck{IfEmpty: true, HasMessages: true}, ErrPreconditionFailed, "queue 'q' in vhost '/' not empty"},
		{"both", QueueDeleteCheck{IfUnused: true, IfEmpty: true, HasConsumers: true, HasMessages: true}, ErrPreconditionFailed, "queue 'q' in vhost '/' in use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.DeleteQueue(ctx, vh, "c1", "q", c.check)
			wantModelError(t, err, c.kind, c.text)
		})
	}
	if _, err := b.DeleteQueue(ctx, vh, "c1", "q", QueueDeleteCheck{IfUnused: true, IfEmpty: true, HasConsumers: false, HasMessages: false}); err != nil {
		t.Fatal(err)
	}
	if got := bindingNames(t, b, vh); len(got) != 0 {
		t.Fatalf("bindings of a deleted queue remain: %q", got)
	}
	if _, err := b.DeleteQueue(ctx, vh, "c1", "q", QueueDeleteCheck{}); err != nil {
		t.Fatalf("deleting a missing queue: %v", err)
	}
}

func TestQueueUnused(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "auto", Durable: true, AutoDelete: true})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "plain"})
	for _, q := range []string{"auto", "plain", "missing"} {
		if err := b.QueueUnused(ctx, vh, q); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := queueNames(t, b, vh), []string{"plain"}; !slices.Equal(got, want) {
		t.Fatalf("queues %q, want %q", got, want)
	}
}

func TestBindings(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "x", Type: "direct"})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q"})
	for _, c := range []struct {
		name string
		err  error
		kind error
		text string
	}{
		{"missing exchange", b.BindQueue(ctx, vh, "c1", BindingSpec{Source: "nope", Destination: "q"}), ErrNotFound, "no exchange 'nope' in vhost '/'"},
		{"missing queue", b.BindQueue(ctx, vh, "c1", BindingSpec{Source: "x", Destination: "nope"}), ErrNotFound, "no queue 'nope' in vhost '/'"},
		{"missing destination exchange", b.BindExchange(ctx, vh, BindingSpec{Source: "x", Destination: "nope"}), ErrNotFound, "no exchange 'nope' in vhost '/'"},
		{"from the default exchange", b.BindQueue(ctx, vh, "c1", BindingSpec{Source: "", Destination: "q", RoutingKey: "q"}), ErrAccessRefused, "operation not permitted on the default exchange"},
		{"unbind from the default exchange", b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "", Destination: "q", RoutingKey: "q"}), ErrAccessRefused, "operation not permitted on the default exchange"},
		{"to the default exchange", b.BindExchange(ctx, vh, BindingSpec{Source: "x", Destination: ""}), ErrAccessRefused, "operation not permitted on the default exchange"},
		{"unbind to the default exchange", b.UnbindExchange(ctx, vh, BindingSpec{Source: "x", Destination: ""}), ErrAccessRefused, "operation not permitted on the default exchange"},
		{"invalid x-match", b.BindQueue(ctx, vh, "c1", BindingSpec{Source: "amq.match", Destination: "q", Arguments: Table{"x-match": "some"}}), ErrPreconditionFailed,
			`Invalid x-match field value <<"some">>; expected all, any, all-with-x, or any-with-x`},
		{"x-match not a string", b.BindQueue(ctx, vh, "c1", BindingSpec{Source: "amq.headers", Destination: "q", Arguments: Table{"x-match": int32(1)}}), ErrPreconditionFailed,
			"Invalid x-match field type signedint (value 1); expected longstr"},
		{"unbind a missing binding", b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "x", Destination: "q", RoutingKey: "nope"}), nil, ""},
		{"unbind from a missing exchange", b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "nope", Destination: "q"}), nil, ""},
		{"unbind a missing queue", b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "x", Destination: "nope"}), nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) { wantModelError(t, c.err, c.kind, c.text) })
	}
	if _, err := b.ListBindings(vh); err != nil {
		t.Fatal(err)
	}
	// The identity of a binding is source, destination, key and arguments:
	// the same triple with other arguments is another binding, the same
	// arguments in another integer width are other arguments, and binding
	// twice is binding once.
	for _, args := range []Table{nil, {"a": int32(1)}, {"a": int64(1)}, {"a": int32(1)}, nil} {
		mustBindQueue(t, b, vh, "x", "q", "k", args)
	}
	bs, _ := b.ListBindings(vh)
	if len(bs) != 3 {
		t.Fatalf("bindings %+v, want 3", bs)
	}
	if err := b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "x", Destination: "q", RoutingKey: "k", Arguments: Table{"a": int64(1)}}); err != nil {
		t.Fatal(err)
	}
	bs, _ = b.ListBindings(vh)
	if len(bs) != 2 || bs[0].Arguments != nil || bs[1].Arguments["a"] != int32(1) {
		t.Fatalf("bindings after unbinding one %+v", bs)
	}
}

func TestAutoDeleteExchange(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "never-bound", Type: "fanout", AutoDelete: true})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "ad", Type: "direct", AutoDelete: true})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q1"})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q2"})
	mustBindQueue(t, b, vh, "ad", "q1", "a", nil)
	mustBindQueue(t, b, vh, "ad", "q2", "b", nil)
	if err := b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "ad", Destination: "q1", RoutingKey: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.LookupExchange(vh, "ad"); !ok {
		t.Fatal("auto-delete exchange deleted while it still has a binding")
	}
	if err := b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "ad", Destination: "q2", RoutingKey: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.LookupExchange(vh, "ad"); ok {
		t.Fatal("auto-delete exchange survived losing its last binding")
	}
	if _, ok := b.LookupExchange(vh, "never-bound"); !ok {
		t.Fatal("auto-delete exchange that never had a binding was deleted")
	}

	// A cascade: top -> mid (auto-delete, exchange-to-exchange) -> q3.
	// Deleting q3 leaves mid with no binding, which deletes mid, which
	// leaves top (auto-delete) with none.
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "top", Type: "fanout", AutoDelete: true})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "mid", Type: "fanout", AutoDelete: true})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "side", Type: "fanout"})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q3"})
	mustBindExchange(t, b, vh, "top", "mid", "")
	mustBindExchange(t, b, vh, "side", "mid", "")
	mustBindQueue(t, b, vh, "mid", "q3", "", nil)
	if _, err := b.DeleteQueue(ctx, vh, "c1", "q3", QueueDeleteCheck{}); err != nil {
		t.Fatal(err)
	}
	for _, x := range []string{"top", "mid"} {
		if _, ok := b.LookupExchange(vh, x); ok {
			t.Fatalf("%s survived the cascade", x)
		}
	}
	if _, ok := b.LookupExchange(vh, "side"); !ok {
		t.Fatal("side is not auto-delete and must stay")
	}
	if got := bindingNames(t, b, vh); len(got) != 0 {
		t.Fatalf("bindings remain: %q", got)
	}

	// Deleting the destination exchange of an auto-delete exchange's only
	// binding deletes the source too.
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "src", Type: "fanout", AutoDelete: true})
	mustBindExchange(t, b, vh, "src", "side", "")
	if err := b.DeleteExchange(ctx, vh, "side", false); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.LookupExchange(vh, "src"); ok {
		t.Fatal("src survived the deletion of its only destination")
	}
}

func TestVhosts(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	if got := b.Vhosts(); !slices.Equal(got, []string{"/"}) {
		t.Fatalf("vhosts %q", got)
	}
	if err := b.CreateVhost(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	wantModelError(t, b.CreateVhost(ctx, "v2"), ErrVhostExists, "vhost 'v2' already exists")
	wantModelError(t, b.CreateVhost(ctx, ""), ErrPreconditionFailed, "")
	wantModelError(t, b.DeleteVhost(ctx, "nope"), ErrVhostNotFound, "vhost 'nope' not found")
	if !b.VhostExists("v2") || b.VhostExists("nope") {
		t.Fatal("VhostExists")
	}
	// The same names in two vhosts are different objects.
	for _, vh := range []string{"/", "v2"} {
		typ := "direct"
		if vh == "v2" {
			typ = "fanout"
		}
		mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "x", Type: typ})
		mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q-" + vh})
		mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "q"})
		mustBindQueue(t, b, vh, "x", "q-"+vh, "k", nil)
	}
	for vh, want := range map[string][]string{"/": {"q-/"}, "v2": {"q-v2"}} {
		got, err := b.Route(vh, "x", []string{"k"}, nil)
		if err != nil || !slices.Equal(refNames(got), want) {
			t.Fatalf("route in %s: %v %v, want %v", vh, refNames(got), err, want)
		}
		if got, _ := b.Route(vh, "", []string{"q-/", "q-v2"}, nil); !slices.Equal(refNames(got), want) {
			t.Fatalf("default exchange in %s: %v, want %v", vh, refNames(got), want)
		}
	}
	if got, want := exchangeNames(t, b, "v2"), []string{"", "amq.direct", "amq.fanout", "amq.headers", "amq.match", "amq.topic", "x"}; !slices.Equal(got, want) {
		t.Fatalf("exchanges of v2 %q, want %q", got, want)
	}
	if err := b.DeleteVhost(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Route("v2", "x", []string{"k"}, nil); !errors.Is(err, ErrVhostNotFound) {
		t.Fatalf("route in a deleted vhost: %v", err)
	}
	if _, err := b.ListQueues("v2"); !errors.Is(err, ErrVhostNotFound) {
		t.Fatalf("list queues of a deleted vhost: %v", err)
	}
	// A re-created vhost starts empty.
	if err := b.CreateVhost(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if got := queueNames(t, b, "v2"); len(got) != 0 {
		t.Fatalf("re-created vhost has queues %q", got)
	}
	if got := queueNames(t, b, "/"); !slices.Equal(got, []string{"q", "q-/"}) {
		t.Fatalf("queues of / %q", got)
	}
}

// durableView is what should survive a restart: the durable exchanges and
// queues and the bindings between durable things.
func durableView(t *testing.T, b *Broker) map[string][]string {
	t.Helper()
	view := map[string][]string{}
	for _, vh := range b.Vhosts() {
		durable := map[string]bool{}
		xs, _ := b.ListExchanges(vh)
		for _, x := range xs {
			if x.Durable {
				view[vh+" exchanges"] = append(view[vh+" exchanges"], x.Name+":"+string(x.Type))
				durable["x:"+x.Name] = true
			}
		}
		qs, _ := b.ListQueues(vh)
		for _, q := range qs {
			if q.Durable {
				view[vh+" queues"] = append(view[vh+" queues"], q.Name+":"+q.ID.String()+":"+string(q.Type))
				durable["q:"+q.Name] = true
			}
		}
		bs, _ := b.ListBindings(vh)
		for _, bd := range bs {
			kind := "q:"
			if bd.DestinationIsExchange {
				kind = "x:"
			}
			if durable["x:"+bd.Source] && durable[kind+bd.Destination] {
				view[vh+" bindings"] = append(view[vh+" bindings"], bd.Source+"->"+kind+bd.Destination+":"+bd.RoutingKey+Table(bd.Arguments).canonicalKey())
			}
		}
	}
	return view
}

func TestAMQPDurabilityAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	b := openTestBroker(t, dir)
	const vh = DefaultVhost
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "dx", Type: "topic", Durable: true, Arguments: Table{ArgAlternateExchange: "dae"}})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "dae", Type: "fanout", Durable: true})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "dx2", Type: "headers", Durable: true})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "tx", Type: "direct"})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "dad", Type: "fanout", Durable: true, AutoDelete: true})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "gone", Type: "fanout", Durable: true})
	dq := mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "dq", Durable: true, Arguments: Table{"x-message-ttl": int32(5000)}})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "dqq", Durable: true, Arguments: Table{"x-queue-type": "quorum"}})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "tq"})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "eq", Durable: true, Exclusive: true})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "dgone", Durable: true})
	mustBindQueue(t, b, vh, "dx", "dq", "a.#", nil)
	mustBindQueue(t, b, vh, "dx", "dq", "b.*", Table{"n": int16(1)})
	mustBindQueue(t, b, vh, "dx", "tq", "a.#", nil)
	mustBindQueue(t, b, vh, "dx", "eq", "a.#", nil)
	mustBindQueue(t, b, vh, "tx", "dq", "k", nil)
	mustBindQueue(t, b, vh, "dae", "dqq", "", nil)
	mustBindQueue(t, b, vh, "dx2", "dq", "", Table{"x-match": "any", "h": "v"})
	mustBindQueue(t, b, vh, "dad", "tq", "", nil) // dad's only binding is transient
	mustBindQueue(t, b, vh, "gone", "dq", "", nil)
	mustBindQueue(t, b, vh, "dx", "dgone", "#", nil)
	mustBindExchange(t, b, vh, "dx", "dx2", "c.#")
	mustBindExchange(t, b, vh, "dx", "tx", "d.#")
	mustBindExchange(t, b, vh, "tx", "dx2", "d")
	if err := b.CreateVhost(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	mustDeclareQueue(t, b, "v2", "c1", QueueSpec{Name: "dq", Durable: true})
	mustBindQueue(t, b, "v2", "amq.fanout", "dq", "", nil)
	if err := b.CreateVhost(ctx, "v3"); err != nil {
		t.Fatal(err)
	}
	mustDeclareQueue(t, b, "v3", "c1", QueueSpec{Name: "dq", Durable: true})
	// Durable changes that are undone before the restart.
	if err := b.DeleteVhost(ctx, "v3"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteExchange(ctx, vh, "gone", false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteQueue(ctx, vh, "c1", "dgone", QueueDeleteCheck{}); err != nil {
		t.Fatal(err)
	}
	if err := b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "dx", Destination: "dq", RoutingKey: "b.*", Arguments: Table{"n": int16(1)}}); err != nil {
		t.Fatal(err)
	}
	mustBindQueue(t, b, vh, "dx", "dq", "b.*", Table{"n": int32(1)})
	before := durableView(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Nothing transient was ever logged.
	log, err := openLocalCommandLog(filepath.Join(dir, "meta"), storage.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	transient := map[string]bool{"tx": true, "tq": true, "eq": true}
	steps := 0
	if err := log.Replay(func(c Command) {
		if c.AMQP == nil {
			return
		}
		for _, st := range c.AMQP.Steps {
			steps++
			for _, name := range stepNames(st) {
				if transient[name] {
					t.Errorf("a step about transient %q was logged: %+v", name, st)
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	log.Close()
	if steps == 0 {
		t.Fatal("no amqp step was logged")
	}

	b = openTestBroker(t, dir)
	defer b.Close()
	after := durableView(t, b)
	if len(before) != len(after) {
		t.Fatalf("durable view before %v\nafter %v", before, after)
	}
	for k, v := range before {
		if !slices.Equal(v, after[k]) {
			t.Errorf("%s before the restart %q\nafter %q", k, v, after[k])
		}
	}
	if got, want := queueNames(t, b, vh), []string{"dq", "dqq"}; !slices.Equal(got, want) {
		t.Fatalf("queues after restart %q, want %q", got, want)
	}
	if got, want := bindingNames(t, b, vh), []string{"dae->dqq:", "dx->dq:a.#", "dx->dq:b.*", "dx->dx2:c.#", "dx2->dq:"}; !slices.Equal(got, want) {
		t.Fatalf("bindings after restart %q, want %q", got, want)
	}
	if got := b.Vhosts(); !slices.Equal(got, []string{"/", "v2"}) {
		t.Fatalf("vhosts after restart %q", got)
	}
	for _, x := range []string{"tx", "gone"} {
		if _, ok := b.LookupExchange(vh, x); ok {
			t.Errorf("exchange %s is back", x)
		}
	}
	if _, ok := b.LookupExchange(vh, "dad"); !ok {
		t.Error("durable auto-delete exchange whose only binding was transient is gone")
	}
	q, _ := b.LookupQueue(vh, "dq")
	if q.ID != dq.ID || q.Arguments["x-message-ttl"] != int32(5000) {
		t.Fatalf("dq after restart %+v, want id %s and its arguments", q, dq.ID)
	}
	// Routing works on the recovered state, alternate exchange included.
	for key, want := range map[string][]string{"a.x": {"dq"}, "c.y": {"dq"}, "zzz": {"dqq"}} {
		got, err := b.Route(vh, "dx", []string{key}, Table{"h": "v"})
		if err != nil || !slices.Equal(refNames(got), want) {
			t.Errorf("route %q after restart: %v %v, want %v", key, refNames(got), err, want)
		}
	}
	// The transient names are free, and a transient queue can be declared
	// where an exclusive one was.
	mustDeclareQueue(t, b, vh, "c9", QueueSpec{Name: "eq"})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "tx", Type: "fanout", Durable: true})
	// v2 kept its binding.
	if got, _ := b.Route("v2", "amq.fanout", nil, nil); !slices.Equal(refNames(got), []string{"dq"}) {
		t.Fatalf("v2 after restart routes to %v", refNames(got))
	}
}

// stepNames lists the object names a step mentions.
func stepNames(st AMQPStep) []string {
	switch {
	case st.DeclareExchange != nil:
		return []string{st.DeclareExchange.Name}
	case st.DeleteExchange != nil:
		return []string{st.DeleteExchange.Name}
	case st.DeclareQueue != nil:
		return []string{st.DeclareQueue.Name}
	case st.DeleteQueue != nil:
		return []string{st.DeleteQueue.Name}
	case st.Bind != nil:
		return []string{st.Bind.Source, st.Bind.Destination}
	case st.Unbind != nil:
		return []string{st.Unbind.Source, st.Unbind.Destination}
	}
	return nil
}

func TestAMQPChangeApply(t *testing.T) {
	s := NewState()
	id := QueueID{1}
	steps := []AMQPStep{
		{CreateVhost: &VhostDef{Name: "v"}},
		{DeclareExchange: &ExchangeDef{Vhost: "v", Name: "x", Type: ExchangeFanout}},
		{DeclareQueue: &QueueDef{Vhost: "v", Name: "q", ID: id}},
		{Bind: &BindingDef{Vhost: "v", Source: "x", Destination: "q"}},
	}
	if err := s.Apply(Command{AMQP: &AMQPChange{Steps: steps}}); err != nil {
		t.Fatal(err)
	}
	// Steps that do not fit are skipped and reported, the others apply.
	err := s.Apply(Command{AMQP: &AMQPChange{Steps: []AMQPStep{
		{Bind: &BindingDef{Vhost: "v", Source: "x", Destination: "q"}},         // exists
		{DeleteQueue: &QueueName{Vhost: "v", Name: "q", ID: QueueID{2}}},       // another incarnation
		{DeclareExchange: &ExchangeDef{Vhost: "v", Name: "x", Type: "fanout"}}, // exists
		{DeclareExchange: &ExchangeDef{Vhost: "nope", Name: "y", Type: "fanout"}},
		{Bind: &BindingDef{Vhost: "v", Source: "", Destination: "q"}}, // default exchange
		{DeleteExchange: &ExchangeName{Vhost: "v", Name: ""}},
		{DeclareExchange: &ExchangeDef{Vhost: "v", Name: "z", Type: "fancy"}},
		{},
		{DeclareExchange: &ExchangeDef{Vhost: "v", Name: "y", Type: ExchangeDirect}},
	}}})
	if err == nil || strings.Count(err.Error(), "step ") != 8 {
		t.Fatalf("errors: %v", err)
	}
	if _, ok := s.Exchange("v", "y"); !ok {
		t.Fatal("the step that fits was not applied")
	}
	if c := (Command{AMQP: &AMQPChange{}}); c.kind() != "amqp" {
		t.Fatalf("kind %q", c.kind())
	}
	if err := s.Apply(Command{AMQP: &AMQPChange{Steps: []AMQPStep{{DeleteVhost: &VhostDef{Name: "v"}}}}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Vhosts(); !slices.Equal(got, []string{"/"}) {
		t.Fatalf("vhosts %q", got)
	}
}
