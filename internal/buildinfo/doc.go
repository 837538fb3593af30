// Package buildinfo describes the running binary: its version, the commit
// it was built from and the Go toolchain that built it.
//
// Invariants:
//   - Values given at link time (the version and commit passed to Get) win
//     over what the Go toolchain recorded; the recorded module version and
//     VCS revision fill in only the placeholders "dev" and "unknown".
//   - The package holds no package-level state; callers own the link-time
//     variables.
package buildinfo
