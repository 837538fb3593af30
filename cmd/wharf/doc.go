// Command wharf runs the Wharf message broker.
//
//	wharf serve     run the broker (see wharf serve --help for settings)
//	wharf version   print the version, commit and Go version
//
// This package only wires things together: configuration loading lives in
// internal/config, the serve logic in internal/server and build metadata in
// internal/buildinfo. Its only package-level variables are the version and
// commit the linker sets; nothing assigns them at run time. The process
// exits 0 after a clean shutdown and 1 on any error or a forced shutdown.
package main
