package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wharfmq/wharf/internal/amqp/internal/gen"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// run parses args, generates the codec and writes it to the output file.
func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	specPath := fs.String("spec", "", "the AMQP definition (JSON)")
	out := fs.String("out", "", "the Go file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *specPath == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("need -spec and -out, and no other arguments")
	}
	src, err := os.ReadFile(*specPath)
	if err != nil {
		return err
	}
	code, err := gen.Generate(src, filepath.Base(*specPath))
	if err != nil {
		return err
	}
	return os.WriteFile(*out, code, 0o644)
}
