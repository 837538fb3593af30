package alarm

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReadLimit reads cgroup limit files as v1 and v2 write them.
func TestReadLimit(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    uint64
		err     error
	}{
		{"536870912\n", 536870912, nil},
		{"max\n", 0, errNoLimit},
		{"9223372036854771712\n", 0, errNoLimit}, // v1 unlimited
	} {
		p := filepath.Join(dir, "limit")
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readLimit(p)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("readLimit(%q) = %d, %v; want %d, %v", tc.content, got, err, tc.want, tc.err)
		}
	}
	if _, err := readLimit(filepath.Join(dir, "missing")); err == nil {
		t.Error("readLimit of a missing file succeeded")
	}
	if !hasController("cpu,memory", "memory") || hasController("memoryx", "memory") {
		t.Error("hasController")
	}
}
