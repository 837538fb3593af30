package config

import (
	"errors"
	"strings"
	"testing"
)

func TestBridgesDecode(t *testing.T) {
	c := Default()
	doc := `
bridges:
  - name: orders-in
    topic: orders
    vhost: shop
    exchange: orders.x
    routing_key: fixed
    start: earliest
  - name: audit
    topic: audit
    exchange: audit.x
`
	if err := DecodeYAML([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []BridgeConfig{
		{Name: "orders-in", Topic: "orders", Vhost: "shop", Exchange: "orders.x", RoutingKey: "fixed", Start: "earliest"},
		{Name: "audit", Topic: "audit", Exchange: "audit.x"},
	}
	if len(c.Bridges) != len(want) {
		t.Fatalf("got %d rules, want %d", len(c.Bridges), len(want))
	}
	for i := range want {
		if c.Bridges[i] != want[i] {
			t.Errorf("rule %d: got %+v, want %+v", i, c.Bridges[i], want[i])
		}
	}
}

func TestBridgesUnknownKey(t *testing.T) {
	c := Default()
	err := DecodeYAML([]byte("bridges:\n  - name: a\n    topic: t\n    exchange: x\n    from: earliest\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "from") {
		t.Fatalf("unknown key in a rule: got %v, want an error naming it", err)
	}
}

func TestBridgesValidation(t *testing.T) {
	ok := BridgeConfig{Name: "r", Topic: "t", Exchange: "x"}
	for _, tc := range []struct {
		name  string
		rules []BridgeConfig
		want  string
	}{
		{"no name", []BridgeConfig{{Topic: "t", Exchange: "x"}}, "name: must not be empty"},
		{"control character in name", []BridgeConfig{{Name: "a\nb", Topic: "t", Exchange: "x"}}, "control characters"},
		{"no topic", []BridgeConfig{{Name: "r", Exchange: "x"}}, "topic: must not be empty"},
		{"long topic", []BridgeConfig{{Name: "r", Topic: strings.Repeat("t", 250), Exchange: "x"}}, "249"},
		{"default exchange", []BridgeConfig{{Name: "r", Topic: "t"}}, "default exchange"},
		{"long routing key", []BridgeConfig{{Name: "r", Topic: "t", Exchange: "x", RoutingKey: strings.Repeat("k", 256)}}, "routing_key"},
		{"bad vhost", []BridgeConfig{{Name: "r", Topic: "t", Exchange: "x", Vhost: "\xff"}}, "vhost"},
		{"bad start", []BridgeConfig{{Name: "r", Topic: "t", Exchange: "x", Start: "middle"}}, `start: "middle" is not one of earliest, latest`},
		{"duplicate name", []BridgeConfig{ok, ok}, "used by an earlier rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Bridges = tc.rules
			err := c.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			if !strings.HasPrefix(fe.Key, "bridges[") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q (key %s), want an error on bridges[...] containing %q", err, fe.Key, tc.want)
			}
		})
	}
}
