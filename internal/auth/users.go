package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
)

// Errors returned by Authenticate. Callers must not tell the client which
// one it was beyond "refused": both mean a failed login.
var (
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrLoopbackOnly       = errors.New("user may only connect from a loopback address")
)

// DefaultUser and DefaultPassword are the user every new broker has, as in
// RabbitMQ; it may only connect from loopback.
const (
	DefaultUser     = "guest"
	DefaultPassword = "guest"
)

const saltLen = 4

// User is a user without its secret.
type User struct {
	Name         string
	LoopbackOnly bool
}

type user struct {
	User
	hash []byte // salt || sha256(salt || password)
}

// Store holds the users. It is safe for concurrent use.
type Store struct {
	mu    sync.RWMutex
	users map[string]*user
}

// NewStore returns a store with no users.
func NewStore() *Store {
	return &Store{users: map[string]*user{}}
}

// NewDefaultStore returns a store holding the loopback-only guest user.
func NewDefaultStore() *Store {
	s := NewStore()
	if err := s.Put(DefaultUser, DefaultPassword, true); err != nil {
		panic(err) // unreachable: the name is valid and rand.Read does not fail
	}
	return s
}

// Put adds a user or replaces its password and restriction.
func (s *Store) Put(name, password string, loopbackOnly bool) error {
	if name == "" {
		return errors.New("auth: a user name cannot be empty")
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = &user{User: User{Name: name, LoopbackOnly: loopbackOnly}, hash: h}
	return nil
}

// Delete removes a user; removing an unknown user does nothing.
func (s *Store) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, name)
}

// Users lists the users, sorted by name.
func (s *Store) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u.User)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Authenticate checks a user's password, and that a loopback-only user
// connects from a loopback address (remote nil counts as not loopback).
func (s *Store) Authenticate(name, password string, remote net.Addr) (User, error) {
	s.mu.RLock()
	u, ok := s.users[name]
	s.mu.RUnlock()
	if !ok || !checkPassword(u.hash, password) {
		return User{}, fmt.Errorf("user '%s': %w", name, ErrInvalidCredentials)
	}
	if u.LoopbackOnly && !isLoopback(remote) {
		return User{}, fmt.Errorf("user '%s' from %v: %w", name, remote, ErrLoopbackOnly)
	}
	return u.User, nil
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
