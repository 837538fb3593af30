package auth

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func TestLoginLimitPerAddress(t *testing.T) {
	s := NewDefaultStore()
	if err := s.Put("alice", "right", false); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	s.SetLoginLimit(3, time.Minute, func() time.Time { return now })
	guesser := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}
	samePort2 := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 2}
	other := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 1}
	for i := range 3 {
		if _, err := s.Authenticate("alice", "wrong", guesser); !errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrTooManyFailures) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// The fourth attempt is refused even with the right password, from any
	// port of that address; another address is served.
	if _, err := s.Authenticate("alice", "right", samePort2); !errors.Is(err, ErrTooManyFailures) || !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("after the limit: %v", err)
	}
	if _, err := s.Authenticate("alice", "right", other); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if _, err := s.NewScramServer(ScramSHA256, guesser); !errors.Is(err, ErrTooManyFailures) {
		t.Fatalf("SCRAM from the refused address: %v", err)
	}
	// Once the window ends, the address may try again.
	now = now.Add(time.Minute)
	if _, err := s.Authenticate("alice", "right", guesser); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// A failed SCRAM proof counts too.
	for range 3 {
		if _, err := exchangeFrom(t, s, scram.Auth{User: "alice", Pass: "wrong"}, other); err == nil {
			t.Fatal("a wrong SCRAM password worked")
		}
	}
	if _, err := s.Authenticate("alice", "right", other); !errors.Is(err, ErrTooManyFailures) {
		t.Fatalf("after three failed SCRAM proofs: %v", err)
	}
	s.SetLoginLimit(0, 0, nil)
	if _, err := s.Authenticate("alice", "right", other); err != nil {
		t.Fatalf("with the limit off: %v", err)
	}
}

// exchangeFrom runs a SHA-256 exchange from remote and returns the
// server's verdict.
func exchangeFrom(t *testing.T, s *Store, a scram.Auth, remote net.Addr) (string, error) {
	t.Helper()
	srv, err := s.NewScramServer(ScramSHA256, remote)
	if err != nil {
		return "", err
	}
	sess, first, err := a.AsSha256Mechanism().Authenticate(t.Context(), "broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	sf, err := srv.First(first)
	if err != nil {
		return "", err
	}
	_, final, err := sess.Challenge(sf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Final(final); err != nil {
		return "", err
	}
	return srv.User(), nil
}
