package crashcopy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirCopiesDataAndSkipsTemporaryFiles(t *testing.T) {
	src := t.TempDir()
	for name, data := range map[string]string{
		"a/00000000000000000000.log": "batch",
		"a/acks":                     "state",
		"a/acks.tmp":                 "half-written",
		".lock":                      "",
	} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := Dir(t, src)
	for name, want := range map[string]string{"a/00000000000000000000.log": "batch", "a/acks": "state"} {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"a/acks.tmp", ".lock"} {
		if _, err := os.Stat(filepath.Join(dst, name)); !os.IsNotExist(err) {
			t.Errorf("%s copied (%v)", name, err)
		}
	}
}
