package main

import (
	"fmt"
	"os"

	"github.com/wharfmq/wharf/internal/buildinfo"
)

// version and commit are set at link time, for example:
//
//	go build -ldflags "-X main.version=v0.1.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/wharf
//
// Nothing assigns them at run time.
var (
	version = buildinfo.DefaultVersion
	commit  = buildinfo.DefaultCommit
)

func main() {
	root := newRootCmd(buildinfo.Get(version, commit), os.LookupEnv)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "wharf:", err)
		os.Exit(1)
	}
}
