package crashcopy

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Dir copies the data directory src into a new temporary directory of t
// and returns it.
func Dir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	Into(t, src, dst)
	return dst
}

// Into copies the data directory src into dst.
func Into(t testing.TB, src, dst string) {
	t.Helper()
	if err := copyTree(src, dst); err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if strings.HasSuffix(path, ".tmp") || e.Name() == ".lock" {
			return nil
		}
		return copyFile(path, target)
	})
}

func copyFile(path, target string) error {
	in, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(target)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
