// Package faultfs is a storage.FS that fails on demand: writes that return
// ENOSPC or EIO (optionally after a short write), fsyncs of files and of
// directories that fail. It lets tests outside the storage engine (the
// broker, the server with real clients) drive the engine's failure paths
// through the same seam the engine's own tests use.
//
// It owns nothing but its fault settings and counters.
//
// Invariants:
//   - Operations on files the match function does not select, and every
//     operation while no fault is armed, are passed through to the
//     underlying FS unchanged.
//   - A failing WriteAt writes exactly the configured number of leading
//     bytes (never more than asked) before it returns the error, as a
//     short write before ENOSPC does; a failing Sync or SyncDir does not
//     reach the underlying file at all.
//   - Every method is safe for concurrent use; the fault settings can be
//     changed while the engine runs on the FS.
package faultfs
