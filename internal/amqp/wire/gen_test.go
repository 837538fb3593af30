package wire

import (
	"bytes"
	"os"
	"testing"

	"github.com/wharfmq/wharf/internal/amqp/internal/gen"
	"github.com/wharfmq/wharf/internal/amqp/spec"
)

// TestGeneratedFileIsCurrent regenerates methods_gen.go from the definition
// and fails if the checked-in file differs, so the two never drift.
func TestGeneratedFileIsCurrent(t *testing.T) {
	want, err := gen.Generate(spec.JSON(), spec.FileName)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	got, err := os.ReadFile("methods_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("methods_gen.go is out of date with %s: run go generate ./internal/amqp/wire", spec.FileName)
	}
}
