package broker

import (
	"reflect"
	"testing"
	"time"
)

func TestWireTableRoundTrip(t *testing.T) {
	in := Table{
		"v": nil, "t": true, "b": int8(-1), "B": uint8(2), "s": int16(-3), "u": uint16(4), "I": int32(-5), "i": uint32(6),
		"l": int64(-7), "f": float32(1.5), "d": 2.25, "D": Decimal{Scale: 2, Value: 314}, "S": "str", "x": []byte{1, 2},
		"T": time.Unix(1700000000, 0).UTC(), "F": Table{"n": "nested"}, "A": []any{"a", int32(1), Table{}},
	}
	enc, err := appendWireTable(nil, in, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := wireReader{p: enc}
	out := r.table(1)
	if r.bad || len(r.p) != 0 {
		t.Fatalf("decoding failed (bad %v, %d bytes left)", r.bad, len(r.p))
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", out, in)
	}
	for _, bad := range [][]byte{{0, 0, 0, 9, 1}, {0, 0, 0, 3, 1, 'k', 'Z'}, {0, 0, 0, 6, 1, 'k', 'S', 0, 0, 9}} {
		r := wireReader{p: bad}
		r.table(1)
		if !r.bad {
			t.Fatalf("%x decoded without error", bad)
		}
	}
}

// TestDeadLetterMessageDeaths: a second death for the same queue and
// reason counts in its entry and moves it first; other entries stay.
func TestDeadLetterMessageDeaths(t *testing.T) {
	now := time.Unix(1700000000, 0)
	dlx := &dlxConfig{exchange: "dlx"}
	msg := &Message{Exchange: "ex", RoutingKey: "k", Properties: expirationProps("100"), Body: []byte("b")}
	m1, keys, h1, err := deadLetterMessage("a", dlx, deadLetter{msg: msg, reason: deathExpired}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keys, []string{"k"}) || m1.Exchange != "dlx" || m1.RoutingKey != "k" {
		t.Fatalf("keys %v exchange %q key %q", keys, m1.Exchange, m1.RoutingKey)
	}
	if _, ok := propertyExpiration(m1.Properties); ok {
		t.Fatal("the expiration was kept")
	}
	m2, _, _, err := deadLetterMessage("b", dlx, deadLetter{msg: m1, reason: deathRejected}, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, _, h3, err := deadLetterMessage("a", dlx, deadLetter{msg: m2, reason: deathExpired}, now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ds := h3["x-death"].([]any)
	first, second := ds[0].(Table), ds[1].(Table)
	if len(ds) != 2 || first["queue"] != "a" || first["count"] != int64(2) || first["original-expiration"] != "100" ||
		!first["time"].(time.Time).Equal(now) || second["queue"] != "b" || second["exchange"] != "dlx" {
		t.Fatalf("x-death %v", ds)
	}
	if h3["x-first-death-queue"] != "a" || h3["x-last-death-queue"] != "a" || h3["x-last-death-exchange"] != "dlx" ||
		h1["x-first-death-exchange"] != "ex" {
		t.Fatalf("headers %v", h3)
	}
	deaths := h3["x-death"].([]any)
	if !isDeathCycle("a", deaths) {
		t.Fatal("expired back into a: not a cycle")
	}
	if isDeathCycle("b", deaths) {
		t.Fatal("b rejected the message: a cycle through it is allowed")
	}
	if isDeathCycle("c", deaths) {
		t.Fatal("c is not in x-death")
	}
}
