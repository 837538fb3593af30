// Package config owns Wharf's process configuration: the Config struct, its
// defaults, where values come from and how they are checked.
//
// Every setting is described once, in the table returned by Settings. That
// table drives the command-line flags, the WHARF_* environment variables and
// the settings table in README.md (a test keeps the README in step). YAML
// files are decoded strictly into Config's yaml tags, and another test keeps
// those tags in step with the table. The one list setting, bridges (rules
// that publish Kafka records into exchanges, bridges.go), is given only in
// a YAML file and documented in README.md apart from the table.
//
// Invariants:
//   - Precedence is, highest first: flags set on the command line, WHARF_*
//     environment variables, the YAML file named by --config, Default().
//     A flag that was not given never overrides anything.
//   - An unknown key in the YAML file is an error, never silently ignored.
//   - Every error from Validate is a *FieldError naming the setting by its
//     YAML key and flag and saying why the value cannot work.
//   - An empty listener address disables that listener.
//   - The package holds no mutable package-level state.
package config
