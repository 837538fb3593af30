package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Placeholders for values not set at link time.
const (
	DefaultVersion = "dev"
	DefaultCommit  = "unknown"
)

// Info describes a build.
type Info struct {
	Version   string
	Commit    string
	GoVersion string
}

// String renders Info as the version command prints it.
func (i Info) String() string {
	return fmt.Sprintf("wharf %s\ncommit: %s\ngo: %s\n", i.Version, i.Commit, i.GoVersion)
}

// Get returns the build's Info. version and commit are the link-time values;
// where they are empty or placeholders, the build information recorded by
// the Go toolchain fills them in when it has them.
func Get(version, commit string) Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, bi)
}

// resolve merges link-time values with recorded build information, which
// may be nil.
func resolve(version, commit string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if info.Version == "" {
		info.Version = DefaultVersion
	}
	if info.Commit == "" {
		info.Commit = DefaultCommit
	}
	if bi == nil {
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if info.Version == DefaultVersion && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Commit == DefaultCommit {
		var revision string
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if revision != "" {
			info.Commit = revision
			if modified {
				info.Commit += "-dirty"
			}
		}
	}
	return info
}
