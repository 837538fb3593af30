package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The users file: every user with its hashes, SCRAM credentials, tags and
// permissions, as one JSON document. It is replaced whole on every change
// (written beside, fsynced, renamed over, directory fsynced), so a crash
// leaves either the old file or the new one.

// fileVersion is the format of the users file.
const fileVersion = 1

type fileDoc struct {
	Version int        `json:"version"`
	Users   []fileUser `json:"users"`
}

type fileUser struct {
	Name         string   `json:"name"`
	LoopbackOnly bool     `json:"loopback_only,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	// PasswordHash is salt || SHA-256(salt || password), base64, as
	// RabbitMQ's definitions carry it (rabbit_password_hashing_sha256).
	PasswordHash string                        `json:"password_hash"`
	Scram        map[Mechanism]ScramCredential `json:"scram,omitempty"`
	Permissions  map[string]Permission         `json:"permissions,omitempty"`
}

// Open returns the store kept in the file at path. A missing file is a new
// broker's: the store starts with the default user (see DefaultUser),
// written to the file at once.
func Open(path string) (*Store, error) {
	s := NewStore()
	s.path = path
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := s.addDefault(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.saveLocked(); err != nil {
			return nil, err
		}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("auth: reading the users file: %w", err)
	}
	users, err := decodeUsers(data)
	if err != nil {
		return nil, fmt.Errorf("auth: users file %s: %w", path, err)
	}
	s.users = users
	return s, nil
}

// decodeUsers parses a users file.
func decodeUsers(data []byte) (map[string]*user, error) {
	var doc fileDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Version != fileVersion {
		return nil, fmt.Errorf("format version %d, want %d", doc.Version, fileVersion)
	}
	users := make(map[string]*user, len(doc.Users))
	for _, fu := range doc.Users {
		if fu.Name == "" {
			return nil, errors.New("a user without a name")
		}
		if _, dup := users[fu.Name]; dup {
			return nil, fmt.Errorf("user '%s' twice", fu.Name)
		}
		hash, err := base64.StdEncoding.DecodeString(fu.PasswordHash)
		if err != nil || len(hash) != saltLen+32 {
			return nil, fmt.Errorf("user '%s': malformed password hash", fu.Name)
		}
		u := &user{User: User{Name: fu.Name, LoopbackOnly: fu.LoopbackOnly, Tags: fu.Tags}, hash: hash,
			scram: map[Mechanism]ScramCredential{}, perms: map[string]*permission{}}
		for m, c := range fu.Scram {
			h := m.newHash()
			if h == nil {
				return nil, fmt.Errorf("user '%s': unknown SCRAM mechanism %q", fu.Name, string(m))
			}
			if len(c.StoredKey) != h().Size() || len(c.ServerKey) != h().Size() || len(c.Salt) == 0 || c.Iterations < 1 || c.Iterations > 1<<20 {
				return nil, fmt.Errorf("user '%s': malformed %s credential", fu.Name, string(m))
			}
			u.scram[m] = c
		}
		for vhost, p := range fu.Permissions {
			cp, err := compilePermission(p)
			if err != nil {
				return nil, fmt.Errorf("user '%s' in vhost '%s': %w", fu.Name, vhost, err)
			}
			u.perms[vhost] = cp
		}
		users[fu.Name] = u
	}
	return users, nil
}

// encodeUsers renders the users file, users sorted by name.
func encodeUsers(users map[string]*user) ([]byte, error) {
	doc := fileDoc{Version: fileVersion}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range users {
			if !yield(n) {
				return
			}
		}
	}) {
		u := users[name]
		fu := fileUser{Name: u.Name, LoopbackOnly: u.LoopbackOnly, Tags: u.Tags, PasswordHash: EncodeHash(u.hash), Scram: u.scram}
		if len(u.perms) > 0 {
			fu.Permissions = map[string]Permission{}
			for _, v := range vhostsOf(u) {
				fu.Permissions[v] = u.perms[v].Permission
			}
		}
		doc.Users = append(doc.Users, fu)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// saveLocked writes the users file, if the store has one. Callers hold
// s.mu for writing and undo their change when it fails.
func (s *Store) saveLocked() error {
	if s.path == "" {
		return nil
	}
	data, err := encodeUsers(s.users)
	if err != nil {
		return fmt.Errorf("auth: encoding the users file: %w", err)
	}
	return writeFileAtomic(s.path, data)
}

// writeFileAtomic replaces path with data durably: a temporary file beside
// it, fsynced, renamed over it, then the directory fsynced.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("auth: writing the users file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: writing the users file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: writing the users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: syncing the users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: writing the users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: replacing the users file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("auth: syncing the users file's directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("auth: syncing the users file's directory: %w", err)
	}
	return nil
}
