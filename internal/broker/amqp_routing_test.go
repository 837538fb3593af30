package broker

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// routeCase is one publish and the queues it must reach.
type routeCase struct {
	name     string
	exchange string
	keys     []string
	headers  Table
	want     []string
	kind     error
	text     string
}

func checkRoutes(t *testing.T, b *Broker, vhost string, cases []routeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := b.Route(vhost, c.exchange, c.keys, c.headers)
			if c.kind != nil {
				wantModelError(t, err, c.kind, c.text)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			names := make([]string, len(got))
			for i, r := range got {
				names[i] = r.Name
			}
			if !slices.Equal(sorted(names), sorted(c.want)) || len(names) != len(c.want) {
				t.Fatalf("routed to %q, want %q", names, c.want)
			}
		})
	}
}

func TestRouteDirectFanoutDefault(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	for _, q := range []string{"q1", "q2", "q3"} {
		mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: q})
	}
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "d", Type: "direct"})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "f", Type: "fanout"})
	mustBindQueue(t, b, vh, "d", "q1", "red", nil)
	mustBindQueue(t, b, vh, "d", "q2", "red", nil)
	mustBindQueue(t, b, vh, "d", "q2", "green", nil)
	mustBindQueue(t, b, vh, "d", "q3", "", nil)
	mustBindQueue(t, b, vh, "d", "q3", "Red", Table{"a": "b"})
	mustBindQueue(t, b, vh, "f", "q1", "ignored", nil)
	mustBindQueue(t, b, vh, "f", "q3", "", nil)
	mustBindQueue(t, b, vh, "amq.direct", "q1", "q1", nil)
	checkRoutes(t, b, vh, []routeCase{
		{name: "direct exact key", exchange: "d", keys: []string{"red"}, want: []string{"q1", "q2"}},
		{name: "direct is case sensitive", exchange: "d", keys: []string{"Red"}, want: []string{"q3"}},
		{name: "direct empty key", exchange: "d", keys: []string{""}, want: []string{"q3"}},
		{name: "direct no match", exchange: "d", keys: []string{"blue"}, want: nil},
		{name: "direct several keys, each queue once", exchange: "d", keys: []string{"red", "green", "red"}, want: []string{"q1", "q2"}},
		{name: "direct no key", exchange: "d", keys: nil, want: nil},
		{name: "fanout ignores the key", exchange: "f", keys: []string{"anything"}, want: []string{"q1", "q3"}},
		{name: "fanout without a key", exchange: "f", want: []string{"q1", "q3"}},
		{name: "default exchange", exchange: "", keys: []string{"q2"}, want: []string{"q2"}},
		{name: "default exchange, several keys", exchange: "", keys: []string{"q2", "q3", "q2", "nope"}, want: []string{"q2", "q3"}},
		{name: "default exchange, missing queue", exchange: "", keys: []string{"nope"}, want: nil},
		{name: "amq.direct", exchange: "amq.direct", keys: []string{"q1"}, want: []string{"q1"}},
		{name: "missing exchange", exchange: "nope", keys: []string{"q1"}, kind: ErrNotFound, text: "no exchange 'nope' in vhost '/'"},
	})
	if _, err := b.Route("nope", "", []string{"q1"}, nil); !errors.Is(err, ErrVhostNotFound) {
		t.Fatalf("route in a missing vhost: %v", err)
	}
	// AppendRoute keeps what dst had and adds each queue once.
	dst := []QueueRef{{Name: "earlier"}}
	dst, err := b.AppendRoute(dst, vh, "d", []string{"red", "red"}, nil)
	if err != nil || len(dst) != 3 || dst[0].Name != "earlier" {
		t.Fatalf("append route: %v %v", dst, err)
	}
	q1, _ := b.LookupQueue(vh, "q1")
	if got, _ := b.Route(vh, "", []string{"q1"}, nil); got[0].ID != q1.ID {
		t.Fatalf("route reports id %s, queue has %s", got[0].ID, q1.ID)
	}
}

func TestRouteExchangeToExchange(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	for _, q := range []string{"qa", "qb", "qc", "qd"} {
		mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: q})
	}
	for _, x := range []struct{ name, typ string }{
		{"a", "topic"}, {"b", "direct"}, {"c", "fanout"}, {"d", "fanout"}, {"self", "fanout"}, {"e", "direct"},
	} {
		mustDeclareExchange(t, b, vh, ExchangeSpec{Name: x.name, Type: x.typ})
	}
	// a -(#)-> b -(k)-> c -> a (a cycle), each with its own queue.
	mustBindExchange(t, b, vh, "a", "b", "#")
	mustBindExchange(t, b, vh, "b", "c", "k")
	mustBindExchange(t, b, vh, "c", "a", "")
	mustBindQueue(t, b, vh, "a", "qa", "k", nil)
	mustBindQueue(t, b, vh, "b", "qb", "k", nil)
	mustBindQueue(t, b, vh, "c", "qc", "", nil)
	// A diamond: d -> a and d -> c, and d -> qa directly.
	mustBindExchange(t, b, vh, "d", "a", "")
	mustBindExchange(t, b, vh, "d", "c", "")
	mustBindQueue(t, b, vh, "d", "qa", "", nil)
	// An exchange bound to itself.
	mustBindExchange(t, b, vh, "self", "self", "")
	mustBindQueue(t, b, vh, "self", "qd", "", nil)
	// The same destination exchange twice under different keys.
	mustBindExchange(t, b, vh, "e", "c", "x")
	mustBindExchange(t, b, vh, "e", "c", "y")
	checkRoutes(t, b, vh, []routeCase{
		{name: "through the cycle", exchange: "a", keys: []string{"k"}, want: []string{"qa", "qb", "qc"}},
		{name: "cycle entered elsewhere", exchange: "c", keys: []string{"k"}, want: []string{"qa", "qb", "qc"}},
		{name: "key stops the chain", exchange: "a", keys: []string{"other"}, want: nil},
		{name: "partial chain", exchange: "b", keys: []string{"k"}, want: []string{"qa", "qb", "qc"}},
		{name: "diamond", exchange: "d", keys: []string{"k"}, want: []string{"qa", "qb", "qc"}},
		{name: "self binding", exchange: "self", want: []string{"qd"}},
		{name: "two bindings to one exchange", exchange: "e", keys: []string{"x", "y"}, want: []string{"qc"}},
	})
}

func TestRouteAlternateExchange(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	for _, q := range []string{"main", "ae1q", "ae2q", "viaq"} {
		mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: q})
	}
	ae := func(name string) Table { return Table{ArgAlternateExchange: name} }
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "x", Type: "direct", Arguments: ae("ae1")})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "ae1", Type: "direct", Arguments: ae("ae2")})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "ae2", Type: "fanout", Internal: true})
	mustBindQueue(t, b, vh, "x", "main", "k", nil)
	mustBindQueue(t, b, vh, "ae1", "ae1q", "k1", nil)
	mustBindQueue(t, b, vh, "ae2", "ae2q", "", nil)
	// Alternate exchanges that loop back, or do not exist.
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "loop1", Type: "direct", Arguments: ae("loop2")})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "loop2", Type: "direct", Arguments: ae("loop1")})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "dangling", Type: "direct", Arguments: ae("missing")})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "toself", Type: "direct", Arguments: ae("toself")})
	// via routes to an exchange that routes nowhere: via's own alternate
	// is not used (its bindings matched), the empty exchange's is.
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "via", Type: "fanout", Arguments: ae("ae2")})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "empty", Type: "direct", Arguments: ae("viaae")})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "viaae", Type: "fanout"})
	mustBindExchange(t, b, vh, "via", "empty", "")
	mustBindQueue(t, b, vh, "viaae", "viaq", "", nil)
	// An exchange whose only match is an exchange already routed through
	// has matched: no alternate.
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "back", Type: "fanout", Arguments: ae("ae2")})
	mustBindExchange(t, b, vh, "back", "back", "")
	// The default exchange as an alternate: the queue named by the key.
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "todefault", Type: "direct", Arguments: ae("")})
	checkRoutes(t, b, vh, []routeCase{
		{name: "matched, no alternate", exchange: "x", keys: []string{"k"}, want: []string{"main"}},
		{name: "first alternate", exchange: "x", keys: []string{"k1"}, want: []string{"ae1q"}},
		{name: "chain of alternates, to an internal one", exchange: "x", keys: []string{"zzz"}, want: []string{"ae2q"}},
		{name: "alternate cycle ends", exchange: "loop1", keys: []string{"k"}, want: nil},
		{name: "alternate to itself", exchange: "toself", keys: []string{"k"}, want: nil},
		{name: "missing alternate", exchange: "dangling", keys: []string{"k"}, want: nil},
		{name: "alternate of an exchange reached by a binding", exchange: "via", keys: []string{"k"}, want: []string{"viaq"}},
		{name: "a match on a seen exchange is a match", exchange: "back", want: nil},
		{name: "default exchange as alternate", exchange: "todefault", keys: []string{"main"}, want: []string{"main"}},
		{name: "internal exchange", exchange: "ae2", kind: ErrAccessRefused, text: "cannot publish to internal exchange 'ae2' in vhost '/'"},
	})
	// An alternate exchange declared later is used from then on.
	if err := b.DeleteExchange(ctx, vh, "viaae", false); err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, b, vh, []routeCase{{name: "alternate deleted", exchange: "via", keys: []string{"k"}, want: nil}})
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "viaae", Type: "direct"})
	mustBindQueue(t, b, vh, "viaae", "viaq", "k", nil)
	checkRoutes(t, b, vh, []routeCase{{name: "alternate re-created", exchange: "via", keys: []string{"k"}, want: []string{"viaq"}}})
	if info, _ := b.LookupExchange(vh, "ae2"); !info.Internal {
		t.Fatalf("ae2 not reported internal: %+v", info)
	}
}

func TestRouteManyQueuesAndExchanges(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	// More queues and exchanges than the route's small sets hold, each
	// reached twice.
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "root", Type: "fanout"})
	var want []string
	for i := range 3 * smallSet {
		x, q := fmt.Sprintf("x%d", i), fmt.Sprintf("q%d", i)
		mustDeclareExchange(t, b, vh, ExchangeSpec{Name: x, Type: "fanout"})
		mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: q})
		mustBindExchange(t, b, vh, "root", x, "")
		mustBindExchange(t, b, vh, x, "root", "")
		mustBindQueue(t, b, vh, x, q, "", nil)
		mustBindQueue(t, b, vh, "root", q, "", nil)
		want = append(want, q)
	}
	for range 3 { // the pooled scratch is reused
		checkRoutes(t, b, vh, []routeCase{{name: "all", exchange: "root", want: want}})
		checkRoutes(t, b, vh, []routeCase{{name: "one", exchange: "", keys: []string{"q1"}, want: []string{"q1"}}})
	}
}

// TestRouteConcurrentWithChanges routes while the model changes; run with
// -race it checks that routing and changes do not race.
func TestRouteConcurrentWithChanges(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "t", Type: "topic"})
	mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: "stable"})
	mustBindQueue(t, b, vh, "t", "stable", "a.#", nil)
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			var dst []QueueRef
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				var err error
				if dst, err = b.AppendRoute(dst[:0], vh, "t", []string{"a.b.c"}, nil); err != nil {
					errs <- err
					return
				}
				if !slices.ContainsFunc(dst, func(r QueueRef) bool { return r.Name == "stable" }) {
					errs <- fmt.Errorf("routed to %v without the stable queue", dst)
					return
				}
			}
		}()
	}
	for i := range 200 {
		q := fmt.Sprintf("q%d", i%7)
		mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: q})
		mustBindQueue(t, b, vh, "t", q, "a.*.c", nil)
		mustBindQueue(t, b, vh, "t", q, "#", nil)
		if i%3 == 0 {
			if _, err := b.DeleteQueue(ctx, vh, "c1", q, QueueDeleteCheck{}); err != nil {
				t.Fatal(err)
			}
		} else if err := b.UnbindQueue(ctx, vh, "c1", BindingSpec{Source: "t", Destination: q, RoutingKey: "#"}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkRouteDirect(b *testing.B) {
	br := openTestBroker(b, b.TempDir())
	defer br.Close()
	const vh = DefaultVhost
	mustDeclareExchange(b, br, vh, ExchangeSpec{Name: "d", Type: "direct"})
	for i := range 1000 {
		q := fmt.Sprintf("q%d", i)
		mustDeclareQueue(b, br, vh, "c1", QueueSpec{Name: q})
		mustBindQueue(b, br, vh, "d", q, q, nil)
	}
	keys := []string{"q500"}
	var dst []QueueRef
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = br.AppendRoute(dst[:0], vh, "d", keys, nil)
	}
}
