package broker

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// topicMatchRecursive is a reference matcher: the definition of topic
// matching, applied word by word (remembering the pairs of suffixes it has
// ruled out, so that many '#' words do not take exponential time).
func topicMatchRecursive(bindingKey, routingKey string) bool {
	pattern, words := appendTopicWords(nil, bindingKey), appendTopicWords(nil, routingKey)
	failed := map[[2]int]bool{}
	var match func(p, w int) bool
	match = func(p, w int) bool {
		if failed[[2]int{p, w}] {
			return false
		}
		ok := false
		switch {
		case p == len(pattern):
			ok = w == len(words)
		case pattern[p] == "#":
			for j := w; j <= len(words) && !ok; j++ {
				ok = match(p+1, j)
			}
		case w < len(words) && (pattern[p] == "*" || pattern[p] == words[w]):
			ok = match(p+1, w+1)
		}
		if !ok {
			failed[[2]int{p, w}] = true
		}
		return ok
	}
	return match(0, 0)
}

// topicMatchRegexp is a second reference: the binding key becomes a
// regular expression over the routing key's words, each written as '.'
// followed by the word (so the empty key, which has no words, is "" and
// "." is two empty words).
func topicMatchRegexp(bindingKey, routingKey string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, w := range appendTopicWords(nil, bindingKey) {
		switch w {
		case "*":
			re.WriteString(`\.[^.]*`)
		case "#":
			re.WriteString(`(?:\.[^.]*)*`)
		default:
			re.WriteString(`\.` + regexp.QuoteMeta(w))
		}
	}
	re.WriteString("$")
	subject := ""
	for _, w := range appendTopicWords(nil, routingKey) {
		subject += "." + w
	}
	return regexp.MustCompile(re.String()).MatchString(subject)
}

// TestTopicPatterns checks binding keys against routing keys as RabbitMQ
// defines topic matching: words split on '.', '*' exactly one word, '#'
// zero or more, the empty key has no words, empty words count.
func TestTopicPatterns(t *testing.T) {
	cases := []struct {
		pattern, key string
		match        bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.b.c", "a.b", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.c", false},
		{"a.*.c", "a.b.b.c", false},
		{"a.#.c", "a.c", true},
		{"a.#.c", "a.b.b.c", true},
		{"#", "", true},
		{"#", "a", true},
		{"#", "a.b.c", true},
		{"#", ".", true},
		{"*", "", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{"", "", true},
		{"", "a", false},
		{"", ".", false},
		{"#.a", "a", true},
		{"#.a", "b.a", true},
		{"#.a", "a.b", false},
		{"a.#", "a", true},
		{"a.#", "a.b.c", true},
		{"a.#", "b", false},
		{"a.#", "a.", true},
		{"#.#", "", true},
		{"#.#", "a.b", true},
		{"#.#.#", "", true},
		{"a.#.#.b", "a.b", true},
		{"a.#.#.b", "a.x.y.b", true},
		{"a.#.#.b", "a.x.y", false},
		{"#.*.#", "", false},
		{"#.*.#", "a", true},
		{"*.#", "", false},
		{"*.#", "a", true},
		{"*.*", "a.b", true},
		{"*.*", "a", false},
		{"*.*", ".", true},
		{"*.*.*", "a..", true},
		{"a..b", "a..b", true},
		{"a.*.b", "a..b", true},
		{"a.#.b", "a..b", true},
		{"a.b", "a..b", false},
		{"a.", "a.", true},
		{"a.*", "a.", true},
		{"a", "a.", false},
		{".a", ".a", true},
		{"*.a", ".a", true},
		{"#.b.#", "b", true},
		{"#.b.#", "a.b.c", true},
		{"#.b.#", "a.c", false},
		{"a*", "ab", false},
		{"a*", "a*", true},
		{"a#", "a", false},
		{"a.*.#", "a", false},
		{"a.*.#", "a.b", true},
		{"a.#.b.#.c", "a.b.b.c.c", true},
		{"a.#.b.#.c", "a.c.b", false},
		{"vodka.martini", "vodka.martini", true},
		{"vodka.martini", "vodka.gin", false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q~%q", c.pattern, c.key), func(t *testing.T) {
			if got := topicMatchRecursive(c.pattern, c.key); got != c.match {
				t.Fatalf("recursive reference: %v, want %v", got, c.match)
			}
			if got := topicMatchRegexp(c.pattern, c.key); got != c.match {
				t.Fatalf("regexp reference: %v, want %v", got, c.match)
			}
			var trie topicTrie
			b := &amqpBinding{def: BindingDef{RoutingKey: c.pattern}}
			trie.add(b)
			var sc routeScratch
			trie.match(c.key, &sc)
			if got := len(sc.dests) > 0; got != c.match {
				t.Fatalf("trie: %v, want %v", got, c.match)
			}
			trie.remove(b)
			if !trie.root.empty() {
				t.Fatalf("trie not empty after removing its only binding: %+v", trie.root)
			}
		})
	}
}

// rabbitTopicBindings are the bindings of RabbitMQ's own topic routing
// test (routing_SUITE), queue name first.
func rabbitTopicBindings() [][3]string {
	return [][3]string{
		{"t1", "a.b.c"}, {"t2", "a.*.c"}, {"t3", "a.#.b"}, {"t4", "a.b.b.c"}, {"t5", "#"}, {"t6", "#.#"},
		{"t7", "#.b"}, {"t8", "*.*"}, {"t9", "a.*"}, {"t10", "*.b.c"}, {"t11", "a.#"}, {"t12", "a.#.#"},
		{"t13", "b.b.c"}, {"t14", "a.b.b"}, {"t15", "a.b"}, {"t16", "b.c"}, {"t17", ""}, {"t18", "*.*.*"},
		{"t19", "vodka.martini"}, {"t20", "a.b.c"}, {"t21", "*.#"}, {"t22", "#.*.#"}, {"t23", "*.#.#"},
		{"t25", "*"}, {"t26", "#.b.#"}, {"t27", "args-test", "bar"}, {"t27", "args-test", "baz"},
	}
}

// TestTopicRabbitMQSuite replays RabbitMQ's topic routing test through the
// broker: the same bindings, keys and expected queues, then again after
// removing bindings 1, 5, 11, 19, 21 and 27.
func TestTopicRabbitMQSuite(t *testing.T) {
	ctx := t.Context()
	b := openTestBroker(t, t.TempDir())
	defer b.Close()
	const vh = DefaultVhost
	if _, err := b.DeclareExchange(ctx, vh, ExchangeSpec{Name: "topic_matching-exchange", Type: "topic", Durable: true}); err != nil {
		t.Fatal(err)
	}
	specs := rabbitTopicBindings()
	binding := func(i int) BindingSpec {
		s := specs[i]
		spec := BindingSpec{Source: "topic_matching-exchange", Destination: s[0], RoutingKey: s[1]}
		if s[2] != "" {
			spec.Arguments = Table{"foo": s[2]}
		}
		return spec
	}
	for i, s := range specs {
		if _, _, err := b.DeclareQueue(ctx, vh, "c1", QueueSpec{Name: s[0], Durable: true}); err != nil {
			t.Fatal(err)
		}
		if err := b.BindQueue(ctx, vh, "c1", binding(i)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want map[string][]string) {
		t.Helper()
		for key, queues := range want {
			got, err := b.Route(vh, "topic_matching-exchange", []string{key}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if names := refNames(got); !slices.Equal(names, sorted(queues)) {
				t.Errorf("key %q: routed to %v, want %v", key, names, sorted(queues))
			}
		}
	}
	check(map[string][]string{
		"a.b.c":               {"t1", "t2", "t5", "t6", "t10", "t11", "t12", "t18", "t20", "t21", "t22", "t23", "t26"},
		"a.b":                 {"t3", "t5", "t6", "t7", "t8", "t9", "t11", "t12", "t15", "t21", "t22", "t23", "t26"},
		"a.b.b":               {"t3", "t5", "t6", "t7", "t11", "t12", "t14", "t18", "t21", "t22", "t23", "t26"},
		"":                    {"t5", "t6", "t17"},
		"b.c.c":               {"t5", "t6", "t18", "t21", "t22", "t23", "t26"},
		"a.a.a.a.a":           {"t5", "t6", "t11", "t12", "t21", "t22", "t23"},
		"vodka.gin":           {"t5", "t6", "t8", "t21", "t22", "t23"},
		"vodka.martini":       {"t5", "t6", "t8", "t19", "t21", "t22", "t23"},
		"b.b.c":               {"t5", "t6", "t10", "t13", "t18", "t21", "t22", "t23", "t26"},
		"nothing.here.at.all": {"t5", "t6", "t21", "t22", "t23"},
		"oneword":             {"t5", "t6", "t21", "t22", "t23", "t25"},
		"args-test":           {"t5", "t6", "t21", "t22", "t23", "t25", "t27"},
	})
	for _, n := range []int{1, 5, 11, 19, 21, 27} {
		if err := b.UnbindQueue(ctx, vh, "c1", binding(n-1)); err != nil {
			t.Fatal(err)
		}
	}
	check(map[string][]string{
		"a.b.c":               {"t2", "t6", "t10", "t12", "t18", "t20", "t22", "t23", "t26"},
		"a.b":                 {"t3", "t6", "t7", "t8", "t9", "t12", "t15", "t22", "t23", "t26"},
		"a.b.b":               {"t3", "t6", "t7", "t12", "t14", "t18", "t22", "t23", "t26"},
		"":                    {"t6", "t17"},
		"b.c.c":               {"t6", "t18", "t22", "t23", "t26"},
		"a.a.a.a.a":           {"t6", "t12", "t22", "t23"},
		"vodka.gin":           {"t6", "t8", "t22", "t23"},
		"vodka.martini":       {"t6", "t8", "t22", "t23"},
		"b.b.c":               {"t6", "t10", "t13", "t18", "t22", "t23", "t26"},
		"nothing.here.at.all": {"t6", "t22", "t23"},
		"oneword":             {"t6", "t22", "t23", "t25"},
		"args-test":           {"t6", "t22", "t23", "t25", "t27"},
	})
	if err := b.DeleteExchange(ctx, vh, "topic_matching-exchange", false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Route(vh, "topic_matching-exchange", []string{"a.b.c"}, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("route to a deleted exchange: %v", err)
	}
}

// fuzzTopicAlphabet maps fuzz bytes to the characters that matter.
func fuzzTopicString(data []byte, alphabet string) string {
	var s strings.Builder
	for _, c := range data {
		s.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return s.String()
}

// FuzzTopicTrie checks the trie against both references: the binding keys
// it finds for a routing key are exactly those the references match, also
// after half of the bindings are removed again.
func FuzzTopicTrie(f *testing.F) {
	f.Add([]byte("a.#.#.b|#|*.*|"), []byte("a..b"))
	f.Add([]byte("#.*.#|a.*|*|#.a"), []byte("a"))
	f.Add([]byte("a.b|a.b|a.#|#.b.#"), []byte("a.b"))
	f.Add([]byte(".|..|*.*|#"), []byte("."))
	f.Fuzz(func(t *testing.T, patterns, key []byte) {
		if len(patterns) > 200 || len(key) > 40 {
			t.Skip()
		}
		pats := strings.Split(fuzzTopicString(patterns, "ab.*#|"), "|")
		rk := fuzzTopicString(key, "ab.*#")
		var trie topicTrie
		bindings := make([]*amqpBinding, len(pats))
		for i, p := range pats {
			bindings[i] = &amqpBinding{def: BindingDef{RoutingKey: p}, pos: i}
			trie.add(bindings[i])
		}
		check := func(live []bool) {
			var sc routeScratch
			trie.match(rk, &sc)
			got := map[*amqpBinding]bool{}
			for _, b := range sc.dests {
				got[b] = true
			}
			for i, b := range bindings {
				want := live[i] && topicMatchRecursive(pats[i], rk)
				if re := live[i] && topicMatchRegexp(pats[i], rk); re != want {
					t.Fatalf("references disagree on %q ~ %q: recursive %v, regexp %v", pats[i], rk, want, re)
				}
				if got[b] != want {
					t.Fatalf("binding key %q, routing key %q: trie %v, reference %v", pats[i], rk, got[b], want)
				}
			}
		}
		live := make([]bool, len(pats))
		for i := range live {
			live[i] = true
		}
		check(live)
		for i := 0; i < len(bindings); i += 2 {
			trie.remove(bindings[i])
			live[i] = false
		}
		check(live)
		for i := 1; i < len(bindings); i += 2 {
			trie.remove(bindings[i])
		}
		if !trie.root.empty() {
			t.Fatalf("trie not empty after removing every binding")
		}
	})
}

// BenchmarkTopicRoute routes through a topic exchange with 10,000 bindings
// of mixed literal, '*' and '#' keys.
func BenchmarkTopicRoute(b *testing.B) {
	ctx := b.Context()
	br := openTestBroker(b, b.TempDir())
	defer br.Close()
	const vh = DefaultVhost
	if _, err := br.DeclareExchange(ctx, vh, ExchangeSpec{Name: "events", Type: "topic"}); err != nil {
		b.Fatal(err)
	}
	const n = 10_000
	for i := range n {
		q := fmt.Sprintf("q%d", i)
		if _, _, err := br.DeclareQueue(ctx, vh, "c1", QueueSpec{Name: q}); err != nil {
			b.Fatal(err)
		}
		var key string
		switch i % 4 {
		case 0:
			key = fmt.Sprintf("region%d.service%d.error", i%50, i%400)
		case 1:
			key = fmt.Sprintf("region%d.*.warn", i%50)
		case 2:
			key = fmt.Sprintf("region%d.service%d.#", i%50, i%400)
		default:
			key = fmt.Sprintf("#.host%d", i%1000)
		}
		if err := br.BindQueue(ctx, vh, "c1", BindingSpec{Source: "events", Destination: q, RoutingKey: key}); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([][]string, 256)
	for i := range keys {
		if i%2 == 0 {
			keys[i] = []string{fmt.Sprintf("region%d.service%d.error", i%50, i%400)}
		} else {
			keys[i] = []string{fmt.Sprintf("region%d.service%d.warn.host%d", i%50, i%400, i%1000)}
		}
	}
	var dst []QueueRef
	total := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var err error
		dst, err = br.AppendRoute(dst[:0], vh, "events", keys[i%len(keys)], nil)
		if err != nil {
			b.Fatal(err)
		}
		total += len(dst)
	}
	b.ReportMetric(float64(total)/float64(b.N), "queues/op")
}

func refNames(refs []QueueRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
