package auth

import (
	"errors"
	"net"
	"testing"
)

func TestAuthenticate(t *testing.T) {
	s := NewDefaultStore()
	if err := s.Put("alice", "s3cret", false); err != nil {
		t.Fatal(err)
	}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	local6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 5000}
	remote := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5000}
	cases := []struct {
		user, pass string
		from       net.Addr
		want       error
	}{
		{"guest", "guest", local, nil},
		{"guest", "guest", local6, nil},
		{"guest", "guest", remote, ErrLoopbackOnly},
		{"guest", "guest", nil, ErrLoopbackOnly},
		{"guest", "wrong", local, ErrInvalidCredentials},
		{"alice", "s3cret", remote, nil},
		{"alice", "s3cret ", remote, ErrInvalidCredentials},
		{"alice", "", remote, ErrInvalidCredentials},
		{"bob", "s3cret", local, ErrInvalidCredentials},
		{"", "", local, ErrInvalidCredentials},
	}
	for _, c := range cases {
		u, err := s.Authenticate(c.user, c.pass, c.from)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("Authenticate(%q, %q, %v) = %v, want %v", c.user, c.pass, c.from, err, c.want)
		}
		if err == nil && u.Name != c.user {
			t.Errorf("Authenticate(%q) named %q", c.user, u.Name)
		}
	}
}

func TestHashesAreSaltedAndNotPlain(t *testing.T) {
	a, err := HashPassword("guest")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("guest")
	if err != nil {
		t.Fatal(err)
	}
	if string(a) == string(b) {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if len(a) != 36 || !checkPassword(a, "guest") || checkPassword(a, "Guest") {
		t.Fatalf("hash %x of length %d does not check", a, len(a))
	}
	// RabbitMQ's layout: salt, then SHA-256 of salt and password.
	if got := EncodeHash(hashWithSalt([]byte{0x90, 0x8d, 0xc6, 0x0a}, "test12")); got != "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR" {
		t.Fatalf("hash = %s, not RabbitMQ's for the same salt", got)
	}
}

func TestDeleteAndUsers(t *testing.T) {
	s := NewDefaultStore()
	if err := s.Put("", "x", false); err == nil {
		t.Fatal("an empty user name was accepted")
	}
	if err := s.Put("zed", "x", false); err != nil {
		t.Fatal(err)
	}
	if got := s.Users(); len(got) != 2 || got[0].Name != "guest" || !got[0].LoopbackOnly || got[1].Name != "zed" {
		t.Fatalf("users = %+v", got)
	}
	s.Delete("zed")
	if _, err := s.Authenticate("zed", "x", nil); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("deleted user authenticated: %v", err)
	}
}
