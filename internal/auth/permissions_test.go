package auth

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestPermissions(t *testing.T) {
	s := NewDefaultStore()
	if err := s.Put("app", "pw", false); err != nil {
		t.Fatal(err)
	}
	if s.VhostAllowed("app", "/") {
		t.Error("a new user may use vhost / without a permission")
	}
	if err := s.SetPermission("app", "/", Permission{Configure: "^app-", Write: ".*", Read: ""}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		vhost    string
		a        Access
		resource string
		want     bool
	}{
		{"/", Configure, "app-orders", true},
		{"/", Configure, "orders", false},
		{"/", Write, "anything", true},
		{"/", Read, "anything", false}, // empty expression: nothing
		{"other", Write, "x", false},
	}
	for _, c := range cases {
		if got := s.Allowed("app", c.vhost, c.a, c.resource); got != c.want {
			t.Errorf("Allowed(app, %s, %s, %s) = %v", c.vhost, c.a, c.resource, got)
		}
	}
	if !s.Allowed("guest", "/", Read, "q") || !s.VhostAllowed("guest", "/") {
		t.Error("guest lacks its default permissions")
	}
	if err := s.SetPermission("app", "/", Permission{Read: "("}); err == nil {
		t.Error("an invalid expression accepted")
	}
	if err := s.SetPermission("nobody", "/", Permission{}); !errors.Is(err, ErrNoUser) {
		t.Errorf("permission for an unknown user: %v", err)
	}
	if err := s.ClearPermission("app", "/"); err != nil || s.VhostAllowed("app", "/") {
		t.Errorf("clear: %v, still allowed %v", err, s.VhostAllowed("app", "/"))
	}
	// A changed password keeps permissions and tags.
	if err := s.SetPermission("app", "v", Permission{Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTags("app", []string{"monitoring", TagAdministrator, "monitoring"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("app", "new", false); err != nil {
		t.Fatal(err)
	}
	u, _ := s.Lookup("app")
	if !s.Allowed("app", "v", Read, "q") || !u.HasTag(TagAdministrator) || len(u.Tags) != 2 {
		t.Errorf("after a password change: tags %v, allowed %v", u.Tags, s.Allowed("app", "v", Read, "q"))
	}
}

func TestUsersFilePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if _, err := s.Authenticate("guest", "guest", local); err != nil {
		t.Fatalf("default user: %v", err)
	}
	if err := s.Put("bob", "b0b", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPermission("bob", "/", Permission{Configure: "", Write: "^bob", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTags("bob", []string{"monitoring"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("guest"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v, mode %v", err, st.Mode().Perm())
	}

	again, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Authenticate("guest", "guest", local); err == nil {
		t.Error("deleted user came back")
	}
	u, err := again.Authenticate("bob", "b0b", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)})
	if err != nil || !u.HasTag("monitoring") {
		t.Fatalf("bob after reopening: %+v, %v", u, err)
	}
	if !again.Allowed("bob", "/", Write, "bob-1") || again.Allowed("bob", "/", Write, "x") || again.Allowed("bob", "/", Configure, "bob") {
		t.Error("bob's permissions changed across reopening")
	}
	if user, err := exchange(t, again, scramSHA512(t, "bob", "b0b"), ScramSHA512); err != nil || user != "bob" {
		t.Errorf("SCRAM after reopening: %q, %v", user, err)
	}

	if err := os.WriteFile(path, []byte(`{"version":1,"users":[{"name":"x","password_hash":"!!"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil {
		t.Error("a malformed users file opened")
	}
}

// FuzzDecodeUsers feeds arbitrary users files to the decoder: it never
// panics, and what it accepts encodes and decodes to the same users.
func FuzzDecodeUsers(f *testing.F) {
	s := NewDefaultStore()
	_ = s.SetPermission("guest", "v", Permission{Write: "^a"})
	seed, _ := encodeUsers(s.users)
	f.Add(seed)
	f.Add([]byte(`{"version":1,"users":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := decodeUsers(data)
		if err != nil {
			return
		}
		enc, err := encodeUsers(users)
		if err != nil {
			t.Fatalf("decoded users do not encode: %v", err)
		}
		back, err := decodeUsers(enc)
		if err != nil || len(back) != len(users) {
			t.Fatalf("round trip: %d users, then %d (%v)", len(users), len(back), err)
		}
	})
}
