package gen

import (
	"strings"
	"testing"
)

func TestGoName(t *testing.T) {
	for in, want := range map[string]string{
		"routing-key":      "RoutingKey",
		"start-ok":         "StartOk",
		"nowait":           "NoWait",
		"correlation-id":   "CorrelationID",
		"update-secret-ok": "UpdateSecretOk",
		"FRAME-MIN-SIZE":   "FrameMinSize",
		"recover-async":    "RecoverAsync",
	} {
		if got := goName(in); got != want {
			t.Errorf("goName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupBits(t *testing.T) {
	f := func(types ...string) []fieldEntry {
		out := make([]fieldEntry, len(types))
		for i, t := range types {
			out[i] = fieldEntry{Name: "f", Type: t}
		}
		return out
	}
	bits := func(n int) []string { return strings.Split(strings.Repeat("bit ", n)[:4*n-1], " ") }
	cases := []struct {
		args []fieldEntry
		want []group
	}{
		{f("short", "bit", "bit", "table"), []group{{0, 1, false}, {1, 3, true}, {3, 4, false}}},
		{f("bit", "shortstr", "bit"), []group{{0, 1, true}, {1, 2, false}, {2, 3, true}}},
		{f(bits(9)...), []group{{0, 8, true}, {8, 9, true}}},
		{nil, nil},
	}
	for _, c := range cases {
		got := groupBits(c.args)
		if len(got) != len(c.want) {
			t.Fatalf("groupBits(%v) = %v, want %v", c.args, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("groupBits(%v) = %v, want %v", c.args, got, c.want)
			}
		}
	}
}

func TestGenerateRejects(t *testing.T) {
	base := `{"major-version":0,"minor-version":9,"revision":1,"port":5672,"domains":[["d","weird"]],"constants":[],"classes":[%s]}`
	cases := map[string]string{
		"unknown type":   `{"id":60,"name":"basic","properties":[],"methods":[{"id":1,"name":"m","arguments":[{"name":"a","type":"float"}]}]}`,
		"unknown domain": `{"id":60,"name":"basic","properties":[],"methods":[{"id":1,"name":"m","arguments":[{"name":"a","domain":"d"}]}]}`,
		"repeated id":    `{"id":60,"name":"basic","properties":[],"methods":[{"id":1,"name":"m","arguments":[]},{"id":1,"name":"n","arguments":[]}]}`,
		"name clash":     `{"id":60,"name":"basic","properties":[],"methods":[{"id":1,"name":"m","arguments":[{"name":"name","type":"short"}]}]}`,
		"bit property":   `{"id":60,"name":"basic","properties":[{"name":"p","type":"bit"}],"methods":[]}`,
		"no basic class": `{"id":61,"name":"other","properties":[],"methods":[]}`,
	}
	for name, class := range cases {
		if _, err := Generate([]byte(strings.Replace(base, "%s", class, 1)), "x.json"); err == nil {
			t.Errorf("%s: Generate succeeded", name)
		}
	}
	if _, err := Generate([]byte("{"), "x.json"); err == nil {
		t.Error("Generate accepted malformed JSON")
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	src := `{"major-version":0,"minor-version":9,"revision":1,"port":5672,"domains":[],"constants":[{"name":"FRAME-END","value":206},{"name":"REPLY-SUCCESS","value":200}],
"classes":[{"id":60,"name":"basic","properties":[{"name":"content-type","type":"shortstr"}],"methods":[{"id":40,"name":"publish","content":true,"arguments":[{"name":"mandatory","type":"bit"}]}]}]}`
	a, err := Generate([]byte(src), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate([]byte(src), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatal("two runs differ")
	}
	if strings.Contains(string(a), `import "time"`) {
		t.Fatal("imports time without a timestamp field")
	}
}
