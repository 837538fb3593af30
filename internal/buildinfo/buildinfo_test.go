package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.99",
			Main:      debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev},
				{Key: "vcs.modified", Value: modified},
			},
		}
	}
	tests := []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		want            Info
	}{
		{"nothing known", "", "", nil, Info{"dev", "unknown", runtime.Version()}},
		{"placeholders without build info", "dev", "unknown", nil, Info{"dev", "unknown", runtime.Version()}},
		{"link-time values win", "v1.2.3", "abc123", vcs("def456", "false"), Info{"v1.2.3", "abc123", "go1.99"}},
		{"vcs fills commit", "dev", "unknown", vcs("def456", "false"), Info{"dev", "def456", "go1.99"}},
		{"dirty tree", "dev", "unknown", vcs("def456", "true"), Info{"dev", "def456-dirty", "go1.99"}},
		{"module version fills version", "dev", "unknown",
			&debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v0.4.0"}},
			Info{"v0.4.0", "unknown", "go1.99"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolve(tt.version, tt.commit, tt.bi); got != tt.want {
				t.Errorf("resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	got := Info{"v1.0.0", "abc", "go1.26"}.String()
	for _, want := range []string{"wharf v1.0.0", "commit: abc", "go: go1.26"} {
		if !strings.Contains(got, want) {
			t.Errorf("String() = %q, missing %q", got, want)
		}
	}
}

func TestGetHasGoVersion(t *testing.T) {
	if got := Get("", ""); got.GoVersion == "" || got.Version == "" || got.Commit == "" {
		t.Errorf("Get = %+v, want every field set", got)
	}
}
