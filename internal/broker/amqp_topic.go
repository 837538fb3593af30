package broker

import "strings"

// topicTrie indexes a topic exchange's bindings word by word, as
// RabbitMQ's trie does: each node has an edge per literal word, one for
// '*' and one for '#', and the bindings whose key ends there. Routing walks
// it once per routing key, so the cost depends on the key and on how many
// bindings match, not on how many bindings there are.
//
// Words are separated by '.'; the empty key has no words, "a." has the
// words "a" and "", and '*' and '#' are special only as whole words. '*'
// matches exactly one word, '#' zero or more. A run of '#' words in a
// binding key is indexed as one ('#.#' matches what '#' matches), but the
// binding keeps its key as given.
type topicTrie struct {
	root topicNode
}

type topicNode struct {
	parent   *topicNode
	word     string // the word of the edge from parent
	words    map[string]*topicNode
	star     *topicNode
	hash     *topicNode
	bindings []*amqpBinding // bindings whose key ends here
}

// topicVisit is a state of a match: a node and how many words are used.
type topicVisit struct {
	n *topicNode
	i int
}

// appendTopicWords appends the words of a routing or binding key.
func appendTopicWords(dst []string, key string) []string {
	if key == "" {
		return dst
	}
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			return append(dst, key)
		}
		dst = append(dst, key[:i])
		key = key[i+1:]
	}
}

func (n *topicNode) child(word string) *topicNode {
	switch word {
	case "*":
		return n.star
	case "#":
		return n.hash
	}
	return n.words[word]
}

func (n *topicNode) addChild(word string) *topicNode {
	c := &topicNode{parent: n, word: word}
	switch word {
	case "*":
		n.star = c
	case "#":
		n.hash = c
	default:
		if n.words == nil {
			n.words = map[string]*topicNode{}
		}
		n.words[word] = c
	}
	return c
}

func (n *topicNode) empty() bool {
	return len(n.bindings) == 0 && len(n.words) == 0 && n.star == nil && n.hash == nil
}

// add indexes b under its routing key.
func (t *topicTrie) add(b *amqpBinding) {
	n := &t.root
	prevHash := false
	words := appendTopicWords(nil, b.def.RoutingKey)
	for _, w := range words {
		if w == "#" && prevHash {
			continue
		}
		prevHash = w == "#"
		c := n.child(w)
		if c == nil {
			c = n.addChild(w)
		}
		n = c
	}
	b.pos = len(n.bindings)
	b.node = n
	n.bindings = append(n.bindings, b)
}

// remove drops b from the index and prunes the nodes left empty.
func (t *topicTrie) remove(b *amqpBinding) {
	n := b.node
	last := len(n.bindings) - 1
	moved := n.bindings[last]
	n.bindings[b.pos] = moved
	moved.pos = b.pos
	n.bindings[last] = nil
	n.bindings = n.bindings[:last]
	b.node = nil
	for n != &t.root && n.empty() {
		p := n.parent
		switch n {
		case p.star:
			p.star = nil
		case p.hash:
			p.hash = nil
		default:
			delete(p.words, n.word)
		}
		n = p
	}
}

// match appends to sc.dests the bindings whose keys match routingKey.
func (t *topicTrie) match(routingKey string, sc *routeScratch) {
	sc.words = appendTopicWords(sc.words[:0], routingKey)
	t.root.match(sc.words, 0, 0, sc)
}

// match walks the trie from n with words[i:] left to match. hashes counts
// the '#' edges taken: with fewer than two, no state can be reached twice;
// with more, reached states are remembered and skipped, which keeps keys
// like "#.a.#.b.#" from taking exponential time.
func (n *topicNode) match(words []string, i, hashes int, sc *routeScratch) {
	if hashes >= 2 && sc.visit(n, i) {
		return
	}
	if i == len(words) {
		sc.dests = append(sc.dests, n.bindings...)
		if n.hash != nil {
			n.hash.match(words, i, hashes+1, sc)
		}
		return
	}
	if n.words != nil {
		if c := n.words[words[i]]; c != nil {
			c.match(words, i+1, hashes, sc)
		}
	}
	if n.star != nil {
		n.star.match(words, i+1, hashes, sc)
	}
	if n.hash != nil {
		for j := i; j <= len(words); j++ {
			n.hash.match(words, j, hashes+1, sc)
		}
	}
}

// visit records a match state and reports whether it was reached before.
func (sc *routeScratch) visit(n *topicNode, i int) bool {
	if sc.visited == nil {
		sc.visited = map[topicVisit]struct{}{}
	}
	v := topicVisit{n, i}
	if _, ok := sc.visited[v]; ok {
		return true
	}
	sc.visited[v] = struct{}{}
	return false
}
