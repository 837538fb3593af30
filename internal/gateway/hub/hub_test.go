package hub

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/wharfmq/wharf/internal/gateway/wsproto"
)

// sink records the frames a session is sent; full refuses them.
type sink struct {
	mu     sync.Mutex
	frames []map[string]any
	full   bool
}

func (s *sink) Send(f wsproto.Frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return false
	}
	var m map[string]any
	_ = json.Unmarshal(f.Data, &m)
	s.frames = append(s.frames, m)
	return true
}

func (s *sink) take() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.frames
	s.frames = nil
	return out
}

func events(fs []map[string]any) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f["event"].(string)+":"+f["client"].(string))
	}
	return out
}

func TestPresencePerClient(t *testing.T) {
	h := New()
	a, b1, b2 := &sink{}, &sink{}, &sink{}
	sa := h.Add("alice", false, a)
	sb1 := h.Add("bob", false, b1)
	sb2 := h.Add("bob", false, b2)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.Join(sa, "g"))
	must(h.Join(sa, "g")) // twice: harmless, no event
	must(h.Join(sb1, "g"))
	must(h.Join(sb2, "g")) // bob already present: no event
	if got := events(a.take()); !slices.Equal(got, []string{"join:alice", "join:bob"}) {
		t.Fatalf("alice saw %v", got)
	}
	if got := events(b1.take()); !slices.Equal(got, []string{"join:bob"}) {
		t.Fatalf("bob's first connection saw %v", got)
	}
	if got := b2.take(); len(got) != 0 {
		t.Fatalf("bob's second connection saw %v", got)
	}
	if m := h.Members("g"); !slices.Equal(m, []string{"alice", "bob"}) {
		t.Fatalf("members %v", m)
	}
	if n := h.SendToGroup("g", wsproto.EncodeMessage("alice", "g", false, json.RawMessage(`1`))); n != 3 {
		t.Fatalf("group send reached %d", n)
	}
	if n := h.SendToClient("bob", wsproto.EncodeMessage("alice", "", false, json.RawMessage(`2`))); n != 2 {
		t.Fatalf("client send reached %d", n)
	}
	a.take()
	b1.take()
	b2.take()

	if !h.Leave(sb1, "g") || h.Leave(sb1, "g") {
		t.Fatal("leave reports wrong")
	}
	if got := a.take(); len(got) != 0 {
		t.Fatalf("bob still has a connection in g, yet alice saw %v", got)
	}
	h.Remove(sb2)
	if got := events(a.take()); !slices.Equal(got, []string{"leave:bob"}) {
		t.Fatalf("after bob's last connection went, alice saw %v", got)
	}
	if m := h.Members("g"); !slices.Equal(m, []string{"alice"}) {
		t.Fatalf("members %v", m)
	}
	h.Remove(sa)
	h.Remove(sa) // twice: harmless
	if s, c, g := h.Counts(); s != 1 || c != 1 || g != 0 {
		t.Fatalf("counts %d sessions %d clients %d groups", s, c, g)
	}
	// A full outbox is not counted as reached.
	b1.full = true
	if n := h.Broadcast(wsproto.EncodeMessage("x", "", true, json.RawMessage(`3`))); n != 0 {
		t.Fatalf("broadcast to a full outbox counted %d", n)
	}
}

func TestGroupLimit(t *testing.T) {
	h := New()
	s := h.Add("c", false, &sink{})
	for i := range MaxGroupsPerSession {
		if err := h.Join(s, string(rune('a'+i%26))+string(rune(i))); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	if err := h.Join(s, "one-too-many"); err != ErrTooManyGroups {
		t.Fatalf("join past the limit: %v", err)
	}
}
