package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestRunWritesTheCheckedInFile runs the command as go generate does, into
// a temporary file, and compares the result with the checked-in output.
func TestRunWritesTheCheckedInFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "methods_gen.go")
	if err := run([]string{"-spec", "../spec/amqp-rabbitmq-0.9.1.json", "-out", out}, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../wire/methods_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("generated output differs from internal/amqp/wire/methods_gen.go: run go generate ./internal/amqp/wire")
	}
}

func TestRunNeedsBothFlags(t *testing.T) {
	if err := run([]string{"-spec", "x.json"}, io.Discard); err == nil {
		t.Fatal("run without -out succeeded")
	}
	if err := run([]string{"-spec", filepath.Join(t.TempDir(), "missing.json"), "-out", filepath.Join(t.TempDir(), "x.go")}, io.Discard); err == nil {
		t.Fatal("run with a missing definition succeeded")
	}
}
