package main

import (
	"context"
	"strings"
	"testing"

	"github.com/wharfmq/wharf/internal/buildinfo"
)

func noEnv(string) (string, bool) { return "", false }

func TestCommands(t *testing.T) {
	info := buildinfo.Info{Version: "v9.9.9", Commit: "abc123", GoVersion: "go1.99"}
	tests := []struct {
		name       string
		args       []string
		wantErr    string // fragment; empty means success
		wantStdout string
	}{
		{"version", []string{"version"}, "", "wharf v9.9.9\ncommit: abc123\ngo: go1.99\n"},
		{"version takes no arguments", []string{"version", "x"}, "unknown command", ""},
		{"unknown command", []string{"bogus"}, "unknown command", ""},
		{"unknown flag", []string{"serve", "--bogus"}, "unknown flag: --bogus", ""},
		{"flag error points at help", []string{"serve", "--bogus"}, "wharf serve --help", ""},
		{"bad flag value", []string{"serve", "--shutdown-timeout", "soon"}, "not a duration", ""},
		{"invalid setting", []string{"serve", "--log-level", "loud"}, "log_level (--log-level)", ""},
		{"invalid listener", []string{"serve", "--http-listen", "nowhere"}, "http_listen (--http-listen)", ""},
		{"missing config file", []string{"serve", "--config", "missing.yaml"}, "missing.yaml", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRootCmd(info, noEnv)
			var stdout, stderr strings.Builder
			root.SetOut(&stdout)
			root.SetErr(&stderr)
			root.SetArgs(tt.args)
			err := root.Execute()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.wantStdout)
			}
		})
	}
}

// TestServeStopsWithContext runs serve with a context that is already
// cancelled: it must start, shut down cleanly and return nil.
func TestServeStopsWithContext(t *testing.T) {
	root := newRootCmd(buildinfo.Info{}, noEnv)
	var stderr strings.Builder
	root.SetErr(&stderr)
	root.SetArgs([]string{"serve",
		"--data-dir", t.TempDir(),
		"--http-listen", "127.0.0.1:0",
		"--kafka-listen", "",
		"--amqp-listen", "",
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("serve = %v\nlog:\n%s", err, stderr.String())
	}
	for _, want := range []string{"listener=http addr=127.0.0.1:", "broker closed"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}
