package auth

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
)

// Permissions, RabbitMQ style: per user and vhost, three regular
// expressions over resource names (exchanges, queues, Kafka topics and
// consumer groups), one per kind of access. A user with no entry for a
// vhost cannot use it at all. An empty expression matches nothing; any
// other is unanchored, as in RabbitMQ (".*" matches every name, "^orders-"
// the names that start with "orders-").

// Permission is what a user may do in one vhost.
type Permission struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// Access is a kind of access to a resource.
type Access int

// The kinds of access.
const (
	// Configure creates, deletes or changes a resource.
	Configure Access = iota
	// Write publishes or produces into it.
	Write
	// Read consumes, fetches or gets from it.
	Read
)

func (a Access) String() string {
	switch a {
	case Configure:
		return "configure"
	case Write:
		return "write"
	case Read:
		return "read"
	}
	return fmt.Sprintf("access(%d)", int(a))
}

// permission is a Permission with its expressions compiled.
type permission struct {
	Permission
	re [3]*regexp.Regexp // by Access; nil for an empty expression
}

func compilePermission(p Permission) (*permission, error) {
	out := &permission{Permission: p}
	for i, expr := range []string{p.Configure, p.Write, p.Read} {
		if expr == "" {
			continue
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("auth: %s permission %q: %w", Access(i), expr, err)
		}
		out.re[i] = re
	}
	return out, nil
}

// SetPermission sets what a user may do in a vhost.
func (s *Store) SetPermission(name, vhost string, p Permission) error {
	cp, err := compilePermission(p)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return fmt.Errorf("user '%s': %w", name, ErrNoUser)
	}
	old, had := u.perms[vhost]
	u.perms[vhost] = cp
	if err := s.saveLocked(); err != nil {
		if had {
			u.perms[vhost] = old
		} else {
			delete(u.perms, vhost)
		}
		return err
	}
	return nil
}

// ClearPermission removes a user's access to a vhost.
func (s *Store) ClearPermission(name, vhost string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return fmt.Errorf("user '%s': %w", name, ErrNoUser)
	}
	old, had := u.perms[vhost]
	if !had {
		return nil
	}
	delete(u.perms, vhost)
	if err := s.saveLocked(); err != nil {
		u.perms[vhost] = old
		return err
	}
	return nil
}

// Permissions returns a user's permissions by vhost.
func (s *Store) Permissions(name string) map[string]Permission {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return nil
	}
	out := make(map[string]Permission, len(u.perms))
	for v, p := range u.perms {
		out[v] = p.Permission
	}
	return out
}

// VhostAllowed reports whether a user may use a vhost at all.
func (s *Store) VhostAllowed(name, vhost string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return false
	}
	_, ok = u.perms[vhost]
	return ok
}

// Allowed reports whether a user may have access a to the resource named
// resource in vhost.
func (s *Store) Allowed(name, vhost string, a Access, resource string) bool {
	if a < Configure || a > Read {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return false
	}
	p, ok := u.perms[vhost]
	if !ok || p.re[a] == nil {
		return false
	}
	return p.re[a].MatchString(resource)
}

// vhostsOf lists a user's vhosts, sorted (for the users file).
func vhostsOf(u *user) []string { return slices.Sorted(maps.Keys(u.perms)) }
