package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
)

// Errors returned by Authenticate. Callers must not tell the client which
// one it was beyond "refused": both mean a failed login.
var (
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrLoopbackOnly       = errors.New("user may only connect from a loopback address")
)

// ErrNoUser is returned by changes that name a user who does not exist.
var ErrNoUser = errors.New("no such user")

// DefaultUser and DefaultPassword are the user every new broker has, as in
// RabbitMQ: an administrator with every permission on vhost "/", who may
// only connect from loopback.
const (
	DefaultUser     = "guest"
	DefaultPassword = "guest"
	DefaultVhost    = "/"
)

// TagAdministrator is the tag that lets a user use the admin API;
// TagMonitoring lets a user read its listings.
const (
	TagAdministrator = "administrator"
	TagMonitoring    = "monitoring"
)

const saltLen = 4

// User is a user without its secrets.
type User struct {
	Name         string
	LoopbackOnly bool
	// Tags are RabbitMQ-style user tags, such as administrator.
	Tags []string
}

// HasTag reports whether the user carries tag.
func (u User) HasTag(tag string) bool { return slices.Contains(u.Tags, tag) }

type user struct {
	User
	hash  []byte // salt || sha256(salt || password)
	scram map[Mechanism]ScramCredential
	perms map[string]*permission // by vhost
}

// Store holds the users and their permissions. It is safe for concurrent
// use. A store opened on a file (Open) writes every change to it before
// the change returns.
type Store struct {
	mu    sync.RWMutex
	users map[string]*user
	path  string // "" keeps the users in memory only
	decoy []byte // keys the made-up SCRAM salts of unknown users
	guard *loginGuard
}

// NewStore returns a store with no users, in memory only.
func NewStore() *Store {
	decoy := make([]byte, 32)
	_, _ = rand.Read(decoy)
	return &Store{users: map[string]*user{}, decoy: decoy, guard: newLoginGuard()}
}

// NewDefaultStore returns an in-memory store holding the default user
// (see DefaultUser).
func NewDefaultStore() *Store {
	s := NewStore()
	if err := s.addDefault(); err != nil {
		panic(err) // unreachable: the name is valid and rand.Read does not fail
	}
	return s
}

// addDefault adds guest/guest, loopback only, administrator, with every
// permission on vhost "/".
func (s *Store) addDefault() error {
	u, err := newUser(DefaultUser, DefaultPassword, true)
	if err != nil {
		return err
	}
	u.Tags = []string{TagAdministrator}
	all, _ := compilePermission(Permission{Configure: ".*", Write: ".*", Read: ".*"})
	u.perms[DefaultVhost] = all
	s.users[DefaultUser] = u
	return nil
}

// newUser derives every credential of a user from its password.
func newUser(name, password string, loopbackOnly bool) (*user, error) {
	if name == "" {
		return nil, errors.New("auth: a user name cannot be empty")
	}
	h, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &user{User: User{Name: name, LoopbackOnly: loopbackOnly}, hash: h, scram: map[Mechanism]ScramCredential{}, perms: map[string]*permission{}}
	for _, m := range ScramMechanisms() {
		c, err := NewScramCredential(m, password)
		if err != nil {
			return nil, err
		}
		u.scram[m] = c
	}
	return u, nil
}

// Put adds a user or replaces its password and restriction; an existing
// user keeps its tags and permissions. A new user has no tags and no
// permissions, as in RabbitMQ.
func (s *Store) Put(name, password string, loopbackOnly bool) error {
	u, err := newUser(name, password, loopbackOnly)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, existed := s.users[name]
	if existed {
		u.Tags, u.perms = old.Tags, old.perms
	}
	s.users[name] = u
	if err := s.saveLocked(); err != nil {
		if existed {
			s.users[name] = old
		} else {
			delete(s.users, name)
		}
		return err
	}
	return nil
}

// SetTags replaces a user's tags.
func (s *Store) SetTags(name string, tags []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return fmt.Errorf("user '%s': %w", name, ErrNoUser)
	}
	old := u.Tags
	u.Tags = slices.Compact(slices.Sorted(slices.Values(tags)))
	if err := s.saveLocked(); err != nil {
		u.Tags = old
		return err
	}
	return nil
}

// Delete removes a user; removing an unknown user does nothing.
func (s *Store) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.users[name]
	if !ok {
		return nil
	}
	delete(s.users, name)
	if err := s.saveLocked(); err != nil {
		s.users[name] = old
		return err
	}
	return nil
}

// Users lists the users, sorted by name.
func (s *Store) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		uc := u.User
		uc.Tags = slices.Clone(u.Tags)
		out = append(out, uc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns one user.
func (s *Store) Lookup(name string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return User{}, false
	}
	uc := u.User
	uc.Tags = slices.Clone(u.Tags)
	return uc, true
}

// Authenticate checks a user's password, and that a loopback-only user
// connects from a loopback address (remote nil counts as not loopback).
//
// Failed attempts count against the source address (guard.go): past the
// limit, its logins fail with ErrTooManyFailures whatever they give.
func (s *Store) Authenticate(name, password string, remote net.Addr) (User, error) {
	if s.guard.refused(remote) {
		return User{}, fmt.Errorf("user '%s' from %v: %w", name, remote, ErrTooManyFailures)
	}
	s.mu.RLock()
	u, ok := s.users[name]
	s.mu.RUnlock()
	if !ok || !checkPassword(u.hash, password) {
		s.guard.failed(remote)
		return User{}, fmt.Errorf("user '%s': %w", name, ErrInvalidCredentials)
	}
	if u.LoopbackOnly && !isLoopback(remote) {
		return User{}, fmt.Errorf("user '%s' from %v: %w", name, remote, ErrLoopbackOnly)
	}
	uc := u.User
	uc.Tags = slices.Clone(u.Tags)
	return uc, nil
}

// AuthenticateExternal logs in a user whose identity another layer proved
// (a TLS client certificate checked against the CA: AMQP's EXTERNAL
// mechanism): the user must exist, and the loopback-only restriction and
// the failed-login limit apply.
func (s *Store) AuthenticateExternal(name string, remote net.Addr) (User, error) {
	if s.guard.refused(remote) {
		return User{}, fmt.Errorf("user '%s' from %v: %w", name, remote, ErrTooManyFailures)
	}
	u, ok := s.Lookup(name)
	if !ok {
		s.guard.failed(remote)
		return User{}, fmt.Errorf("user '%s': %w", name, ErrInvalidCredentials)
	}
	if u.LoopbackOnly && !isLoopback(remote) {
		return User{}, fmt.Errorf("user '%s' from %v: %w", name, remote, ErrLoopbackOnly)
	}
	return u, nil
}

// CheckLoopback applies the loopback-only restriction to a user who
// authenticated by other means (SCRAM, a certificate).
func (s *Store) CheckLoopback(name string, remote net.Addr) error {
	u, ok := s.Lookup(name)
	if !ok {
		return fmt.Errorf("user '%s': %w", name, ErrInvalidCredentials)
	}
	if u.LoopbackOnly && !isLoopback(remote) {
		return fmt.Errorf("user '%s' from %v: %w", name, remote, ErrLoopbackOnly)
	}
	return nil
}

// scramCredential returns a user's credential for a SCRAM mechanism.
func (s *Store) scramCredential(name string, m Mechanism) (ScramCredential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return ScramCredential{}, false
	}
	c, ok := u.scram[m]
	return c, ok
}

// decoyCredential is a credential for a user who does not exist: its salt
// is the same on every attempt, so a client cannot tell the user is
// unknown before the proof fails.
func (s *Store) decoyCredential(name string, m Mechanism) ScramCredential {
	salt := hmacSum(sha256.New, s.decoy, string(m)+"\x00"+name)[:24]
	h := m.newHash()
	return ScramCredential{Salt: salt, Iterations: scramIterations, StoredKey: make([]byte, h().Size()), ServerKey: make([]byte, h().Size())}
}

// HashPassword returns salt || SHA-256(salt || password) with a random
// four-byte salt.
func HashPassword(password string) ([]byte, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("auth: making a salt: %w", err)
	}
	return hashWithSalt(salt, password), nil
}

// EncodeHash is a hash as RabbitMQ's definitions carry it (base64).
func EncodeHash(h []byte) string { return base64.StdEncoding.EncodeToString(h) }

func hashWithSalt(salt []byte, password string) []byte {
	sum := sha256.Sum256(append(append([]byte(nil), salt...), password...))
	return append(append([]byte(nil), salt...), sum[:]...)
}

func checkPassword(hash []byte, password string) bool {
	if len(hash) != saltLen+sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(hash, hashWithSalt(hash[:saltLen], password)) == 1
}

func isLoopback(a net.Addr) bool {
	switch t := a.(type) {
	case *net.TCPAddr:
		return t.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	if a == nil {
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
