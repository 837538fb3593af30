package broker

import (
	"fmt"
	"testing"
	"time"
)

// TestHeadersMatch checks the headers exchange's four x-match modes as
// RabbitMQ's rabbit_exchange_type_headers implements them.
func TestHeadersMatch(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	cases := []struct {
		name    string
		binding Table
		headers Table
		match   bool
	}{
		// all (explicit and default)
		{"all: every argument matches", Table{"x-match": "all", "a": int32(1), "b": "x"}, Table{"a": int32(1), "b": "x"}, true},
		{"all: integer widths compare by value", Table{"x-match": "all", "a": int32(1), "b": "x"}, Table{"a": int64(1), "b": "x"}, true},
		{"all: unsigned and signed", Table{"x-match": "all", "a": uint8(7)}, Table{"a": int16(7)}, true},
		{"all: extra headers do not matter", Table{"x-match": "all", "a": int32(1)}, Table{"a": int32(1), "c": "z"}, true},
		{"all: one missing", Table{"x-match": "all", "a": int32(1), "b": "x"}, Table{"a": int32(1)}, false},
		{"all: one differs", Table{"x-match": "all", "a": int32(1), "b": "x"}, Table{"a": int32(1), "b": "y"}, false},
		{"all: string is not a number", Table{"x-match": "all", "a": int32(1)}, Table{"a": "1"}, false},
		{"all: integer is not a double", Table{"x-match": "all", "a": int32(1)}, Table{"a": float64(1)}, false},
		{"all: long string and byte array", Table{"x-match": "all", "b": "x"}, Table{"b": []byte("x")}, true},
		{"all: no headers", Table{"x-match": "all", "a": int32(1)}, nil, false},
		{"default is all", Table{"a": int32(1), "b": "x"}, Table{"a": int32(1)}, false},
		{"default is all, matching", Table{"a": int32(1), "b": "x"}, Table{"b": "x", "a": int8(1)}, true},
		{"all with nothing to match matches everything", Table{"x-match": "all"}, nil, true},
		{"no arguments at all matches everything", nil, Table{"a": 1}, true},
		// any
		{"any: first matches", Table{"x-match": "any", "a": int32(1), "b": "x"}, Table{"a": int32(1)}, true},
		{"any: second matches", Table{"x-match": "any", "a": int32(1), "b": "x"}, Table{"a": int32(2), "b": "x"}, true},
		{"any: none matches", Table{"x-match": "any", "a": int32(1), "b": "x"}, Table{"a": int32(2), "b": "y"}, false},
		{"any: no headers", Table{"x-match": "any", "a": int32(1)}, nil, false},
		{"any with nothing to match matches nothing", Table{"x-match": "any"}, Table{"a": int32(1)}, false},
		// x- arguments
		{"all ignores x- arguments", Table{"x-match": "all", "x-foo": "bar", "a": int32(1)}, Table{"a": int32(1)}, true},
		{"all ignores x- arguments even when they differ", Table{"x-match": "all", "x-foo": "bar", "a": int32(1)}, Table{"a": int32(1), "x-foo": "baz"}, true},
		{"any ignores x- arguments", Table{"x-match": "any", "x-foo": "bar"}, Table{"x-foo": "bar"}, false},
		{"all-with-x needs x- arguments", Table{"x-match": "all-with-x", "x-foo": "bar", "a": int32(1)}, Table{"a": int32(1)}, false},
		{"all-with-x matching", Table{"x-match": "all-with-x", "x-foo": "bar", "a": int32(1)}, Table{"a": int32(1), "x-foo": "bar"}, true},
		{"all-with-x does not match on x-match", Table{"x-match": "all-with-x", "a": int32(1)}, Table{"a": int32(1)}, true},
		{"any-with-x on an x- header", Table{"x-match": "any-with-x", "x-foo": "bar", "a": int32(1)}, Table{"x-foo": "bar"}, true},
		{"any-with-x, x- header differs", Table{"x-match": "any-with-x", "x-foo": "bar"}, Table{"x-foo": "baz"}, false},
		{"any-with-x on a plain header", Table{"x-match": "any-with-x", "x-foo": "bar", "a": int32(1)}, Table{"a": int32(1)}, true},
		{"any-with-x with nothing to match", Table{"x-match": "any-with-x"}, Table{"x-match": "any-with-x"}, false},
		// void arguments match presence
		{"void: present with any value", Table{"x-match": "all", "a": nil}, Table{"a": "whatever"}, true},
		{"void: present with a void value", Table{"a": nil}, Table{"a": nil}, true},
		{"void: absent", Table{"x-match": "all", "a": nil}, Table{"b": 1}, false},
		{"void in any", Table{"x-match": "any", "a": nil, "b": int32(1)}, Table{"a": int32(5)}, true},
		{"void header does not equal a value", Table{"a": int32(1)}, Table{"a": nil}, false},
		// other types
		{"bool", Table{"f": true}, Table{"f": true}, true},
		{"bool is not an integer", Table{"f": true}, Table{"f": int8(1)}, false},
		{"float and double", Table{"f": float32(1.5)}, Table{"f": float64(1.5)}, true},
		{"decimal", Table{"d": Decimal{Scale: 2, Value: 150}}, Table{"d": Decimal{Scale: 2, Value: 150}}, true},
		{"decimal scale", Table{"d": Decimal{Scale: 2, Value: 150}}, Table{"d": Decimal{Scale: 1, Value: 15}}, false},
		{"timestamp", Table{"t": ts}, Table{"t": ts.UTC()}, true},
		{"nested table", Table{"t": Table{"k": int32(1)}}, Table{"t": Table{"k": int32(1)}}, true},
		{"nested table keeps types", Table{"t": Table{"k": int32(1)}}, Table{"t": Table{"k": int64(1)}}, false},
		{"array", Table{"a": []any{"x", int8(1)}}, Table{"a": []any{"x", int8(1)}}, true},
		{"array order", Table{"a": []any{"x", int8(1)}}, Table{"a": []any{int8(1), "x"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args, err := normalizeTable(c.binding)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := compileHeaders(args)
			if err != nil {
				t.Fatal(err)
			}
			if got := spec.matches(c.headers); got != c.match {
				t.Fatalf("match = %v, want %v", got, c.match)
			}
		})
	}
}

// TestHeadersRoute routes through headers exchanges, predeclared ones
// included, with bindings of every mode.
func TestHeadersRoute(t *testing.T) {
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	mustDeclareExchange(t, b, vh, ExchangeSpec{Name: "h", Type: "headers", Arguments: Table{ArgAlternateExchange: "amq.fanout"}})
	bindings := map[string]Table{
		"all":        {"x-match": "all", "format": "pdf", "type": "report"},
		"any":        {"x-match": "any", "format": "pdf", "type": "report"},
		"all-with-x": {"x-match": "all-with-x", "x-tenant": "t1", "format": "pdf"},
		"any-with-x": {"x-match": "any-with-x", "x-tenant": "t1"},
		"present":    {"priority": nil},
	}
	for q, args := range bindings {
		mustDeclareQueue(t, b, vh, "c1", QueueSpec{Name: q})
		mustBindQueue(t, b, vh, "h", q, "ignored", args)
	}
	mustDeclareQueue(t, b, vh, "fallback", QueueSpec{Name: "fallback"})
	mustBindQueue(t, b, vh, "amq.fanout", "fallback", "", nil)
	mustBindQueue(t, b, vh, "amq.match", "any", "", Table{"x-match": "any", "k": int64(42)})
	mustBindQueue(t, b, vh, "amq.headers", "all", "", Table{"k": int8(42)})
	checkRoutes(t, b, vh, []routeCase{
		{name: "all and any", exchange: "h", headers: Table{"format": "pdf", "type": "report"}, want: []string{"all", "any"}},
		{name: "any only", exchange: "h", headers: Table{"format": "pdf"}, want: []string{"any"}},
		{name: "with x", exchange: "h", headers: Table{"format": "pdf", "x-tenant": "t1"}, want: []string{"any", "all-with-x", "any-with-x"}},
		{name: "presence", exchange: "h", headers: Table{"priority": int32(0)}, want: []string{"present"}},
		{name: "nothing matches: alternate", exchange: "h", headers: Table{"format": "doc"}, want: []string{"fallback"}},
		{name: "no headers: alternate", exchange: "h", want: []string{"fallback"}},
		{name: "routing key does not matter", exchange: "h", keys: []string{"ignored"}, headers: Table{"type": "report"}, want: []string{"any"}},
		{name: "amq.match", exchange: "amq.match", headers: Table{"k": uint16(42)}, want: []string{"any"}},
		{name: "amq.headers", exchange: "amq.headers", headers: Table{"k": int32(42)}, want: []string{"all"}},
	})
}

func BenchmarkRouteHeaders(b *testing.B) {
	br := openTestBroker(b, b.TempDir())
	defer br.Close()
	const vh = DefaultVhost
	mustDeclareExchange(b, br, vh, ExchangeSpec{Name: "h", Type: "headers"})
	for i := range 100 {
		q := fmt.Sprintf("q%d", i)
		mustDeclareQueue(b, br, vh, "c1", QueueSpec{Name: q})
		mustBindQueue(b, br, vh, "h", q, "", Table{"x-match": "all", "region": fmt.Sprintf("r%d", i%10), "level": int32(i % 3)})
	}
	headers := Table{"region": "r3", "level": int64(1), "other": "x"}
	var dst []QueueRef
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = br.AppendRoute(dst[:0], vh, "h", nil, headers)
	}
}
