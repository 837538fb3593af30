// Package crashcopy copies a live data directory the way a process crash
// leaves it, for tests that check what a restart after a crash recovers.
//
// Invariants: every byte the broker has written (to the page cache, synced
// or not) is copied, as a killed process leaves it; nothing is added that
// only a clean close writes. Temporary files (*.tmp) and the directory lock
// are left out, and a file that vanishes while the copy runs (a flush
// renaming it) is skipped, as it would be absent after a crash at that
// moment. The package holds no state.
package crashcopy
