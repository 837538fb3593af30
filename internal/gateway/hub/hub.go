package hub

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/wharfmq/wharf/internal/gateway/wsproto"
)

// MaxGroupsPerSession bounds the groups one connection may be in.
const MaxGroupsPerSession = 1000

// ErrTooManyGroups is returned by Join past MaxGroupsPerSession.
var ErrTooManyGroups = errors.New("hub: too many groups for one connection")

// Sender queues a frame for a connection without blocking; it returns false
// if the frame was not queued (the connection is closing, or its outbox was
// full and it is being closed as a slow client).
type Sender interface {
	Send(f wsproto.Frame) bool
}

// Session is one registered connection.
type Session struct {
	ID       string
	ClientID string
	// Broadcast reports whether the session may send to everyone.
	Broadcast bool
	s         Sender
	groups    map[string]struct{} // guarded by the hub's mu
}

// Send queues a frame for this session alone.
func (s *Session) Send(f wsproto.Frame) bool { return s.s.Send(f) }

// Hub is the registry. The zero value is not usable; call New.
type Hub struct {
	mu      sync.RWMutex
	all     map[*Session]struct{}
	clients map[string]map[*Session]struct{}
	// groups: group -> client id -> that client's sessions in the group.
	groups map[string]map[string]map[*Session]struct{}
	seq    atomic.Uint64
}

// New returns an empty hub.
func New() *Hub {
	return &Hub{
		all:     map[*Session]struct{}{},
		clients: map[string]map[*Session]struct{}{},
		groups:  map[string]map[string]map[*Session]struct{}{},
	}
}

// Add registers a connection of clientID and returns its session.
func (h *Hub) Add(clientID string, broadcast bool, s Sender) *Session {
	sess := &Session{ID: "s" + strconv.FormatUint(h.seq.Add(1), 10), ClientID: clientID, Broadcast: broadcast, s: s}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all[sess] = struct{}{}
	cs := h.clients[clientID]
	if cs == nil {
		cs = map[*Session]struct{}{}
		h.clients[clientID] = cs
	}
	cs[sess] = struct{}{}
	return sess
}

// Remove unregisters a session: it leaves every group it is in (with
// presence events where its client leaves) and gets no more frames.
func (h *Hub) Remove(sess *Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.all[sess]; !ok {
		return
	}
	for g := range sess.groups {
		h.leaveLocked(sess, g)
	}
	delete(h.all, sess)
	if cs := h.clients[sess.ClientID]; cs != nil {
		delete(cs, sess)
		if len(cs) == 0 {
			delete(h.clients, sess.ClientID)
		}
	}
}

// Join puts a session in a group. If its client was not in the group yet,
// every session in the group, the new one included, gets a presence join
// event. Joining a group twice is harmless.
func (h *Hub) Join(sess *Session, group string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.all[sess]; !ok {
		return nil
	}
	if _, ok := sess.groups[group]; ok {
		return nil
	}
	if len(sess.groups) >= MaxGroupsPerSession {
		return ErrTooManyGroups
	}
	if sess.groups == nil {
		sess.groups = map[string]struct{}{}
	}
	sess.groups[group] = struct{}{}
	members := h.groups[group]
	if members == nil {
		members = map[string]map[*Session]struct{}{}
		h.groups[group] = members
	}
	mine := members[sess.ClientID]
	first := mine == nil
	if first {
		mine = map[*Session]struct{}{}
		members[sess.ClientID] = mine
	}
	mine[sess] = struct{}{}
	if first {
		sendAllLocked(members, wsproto.EncodePresence(group, "join", sess.ClientID))
	}
	return nil
}

// Leave takes a session out of a group; if it was its client's last
// session there, the remaining members get a presence leave event. It
// reports whether the session was in the group.
func (h *Hub) Leave(sess *Session, group string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := sess.groups[group]; !ok {
		return false
	}
	h.leaveLocked(sess, group)
	return true
}

func (h *Hub) leaveLocked(sess *Session, group string) {
	delete(sess.groups, group)
	members := h.groups[group]
	mine := members[sess.ClientID]
	delete(mine, sess)
	if len(mine) > 0 {
		return
	}
	delete(members, sess.ClientID)
	if len(members) == 0 {
		delete(h.groups, group)
		return
	}
	sendAllLocked(members, wsproto.EncodePresence(group, "leave", sess.ClientID))
}

func sendAllLocked(members map[string]map[*Session]struct{}, f wsproto.Frame) int {
	n := 0
	for _, ss := range members {
		for s := range ss {
			if s.s.Send(f) {
				n++
			}
		}
	}
	return n
}

// Members returns the client ids in a group, sorted.
func (h *Hub) Members(group string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.groups[group]))
	for c := range h.groups[group] {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// SendToClient queues f for every session of a client and returns how many
// took it.
func (h *Hub) SendToClient(clientID string, f wsproto.Frame) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for s := range h.clients[clientID] {
		if s.s.Send(f) {
			n++
		}
	}
	return n
}

// SendToGroup queues f for every session in a group and returns how many
// took it.
func (h *Hub) SendToGroup(group string, f wsproto.Frame) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return sendAllLocked(h.groups[group], f)
}

// Broadcast queues f for every session and returns how many took it.
func (h *Hub) Broadcast(f wsproto.Frame) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for s := range h.all {
		if s.s.Send(f) {
			n++
		}
	}
	return n
}

// Counts returns the number of sessions, distinct clients and groups.
func (h *Hub) Counts() (sessions, clients, groups int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.all), len(h.clients), len(h.groups)
}
