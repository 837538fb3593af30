package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// exchange runs franz-go's SCRAM client against the server side until the
// client is done or the server refuses.
func exchange(t *testing.T, s *Store, m sasl.Mechanism, mech Mechanism) (string, error) {
	t.Helper()
	srv, err := s.NewScramServer(mech)
	if err != nil {
		t.Fatal(err)
	}
	sess, first, err := m.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	serverFirst, err := srv.First(first)
	if err != nil {
		return "", err
	}
	done, final, err := sess.Challenge(serverFirst)
	if err != nil || done {
		t.Fatalf("client after server-first: done %v, %v", done, err)
	}
	serverFinal, err := srv.Final(final)
	if err != nil {
		return "", err
	}
	if done, _, err := sess.Challenge(serverFinal); err != nil || !done {
		t.Fatalf("client rejected the server's signature: done %v, %v", done, err)
	}
	return srv.User(), nil
}

func TestScramWithFranzGoClient(t *testing.T) {
	s := NewDefaultStore()
	if err := s.Put("ali,ce=", "pässword", false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mech Mechanism
		mk   func(scram.Auth) sasl.Mechanism
	}{
		{ScramSHA256, func(a scram.Auth) sasl.Mechanism { return a.AsSha256Mechanism() }},
		{ScramSHA512, func(a scram.Auth) sasl.Mechanism { return a.AsSha512Mechanism() }},
	} {
		user, err := exchange(t, s, c.mk(scram.Auth{User: "ali,ce=", Pass: "pässword"}), c.mech)
		if err != nil || user != "ali,ce=" {
			t.Errorf("%s: %q, %v", c.mech, user, err)
		}
		if _, err := exchange(t, s, c.mk(scram.Auth{User: "ali,ce=", Pass: "wrong"}), c.mech); !errors.Is(err, ErrScram) || !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s wrong password: %v", c.mech, err)
		}
		if _, err := exchange(t, s, c.mk(scram.Auth{User: "nobody", Pass: "x"}), c.mech); !errors.Is(err, ErrScram) {
			t.Errorf("%s unknown user: %v", c.mech, err)
		}
	}
	// A SHA-256 exchange cannot use the SHA-512 credential.
	if _, err := exchange(t, s, scram.Auth{User: "guest", Pass: "guest"}.AsSha512Mechanism(), ScramSHA256); err == nil {
		t.Error("SHA-512 client accepted by a SHA-256 exchange")
	}
}

func TestScramUnknownUserLooksKnown(t *testing.T) {
	s := NewDefaultStore()
	salt := func(user string) string {
		srv, _ := s.NewScramServer(ScramSHA256)
		out, err := srv.First([]byte("n,,n=" + user + ",r=abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(out), ",")
		return parts[1]
	}
	if a, b := salt("ghost"), salt("ghost"); a != b {
		t.Errorf("an unknown user's salt changes between attempts: %s, %s", a, b)
	}
}

func TestScramMalformedMessages(t *testing.T) {
	s := NewDefaultStore()
	for _, m := range []string{"", "n", "n,,", "p=tls-unique,,n=guest,r=x", "n,,r=x,n=guest", "n,,n=gu=est,r=x",
		"n,,n=guest,r=", "n,a=other,n=guest,r=x", "n,,n=guest,r=x,ext=1", "x,,n=guest,r=x"} {
		srv, _ := s.NewScramServer(ScramSHA256)
		if _, err := srv.First([]byte(m)); !errors.Is(err, ErrScram) {
			t.Errorf("client-first %q: %v", m, err)
		}
	}
	srv, _ := s.NewScramServer(ScramSHA256)
	if _, err := srv.Final([]byte("c=biws,r=x,p=AAAA")); err == nil {
		t.Error("final before first accepted")
	}
	if _, err := srv.First([]byte("n,,n=guest,r=abc")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"c=biws,r=abc", "c=biws,r=wrong,p=AAAA", "c=!!,r=abc,p=AAAA"} {
		srv, _ := s.NewScramServer(ScramSHA256)
		first, err := srv.First([]byte("n,,n=guest,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		_ = first
		if _, err := srv.Final([]byte(m)); !errors.Is(err, ErrScram) {
			t.Errorf("client-final %q: %v", m, err)
		}
	}
	if _, err := s.NewScramServer("SCRAM-MD5"); err == nil {
		t.Error("unknown mechanism accepted")
	}
}

// FuzzScramServer feeds arbitrary client messages to both steps: the
// server never panics, and it authenticates nobody without the password.
func FuzzScramServer(f *testing.F) {
	f.Add([]byte("n,,n=guest,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("y,a=guest,n=guest,r=a,tokenauth=false"), []byte("c=eSws,r=a,p="))
	s := NewDefaultStore()
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, m := range ScramMechanisms() {
			srv, err := s.NewScramServer(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := srv.First(first); err != nil {
				continue
			}
			if _, err := srv.Final(final); err == nil {
				t.Fatalf("authenticated %q without a valid proof", srv.User())
			}
		}
	})
}

func scramSHA512(t *testing.T, user, pass string) sasl.Mechanism {
	t.Helper()
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}
