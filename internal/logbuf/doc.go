// Package logbuf is a text log kept in memory, safe for concurrent
// writers, for tests that read what a server logged.
//
// Invariants: every Write is kept whole and in order; readers see a
// consistent snapshot. The package holds no state of its own.
package logbuf
