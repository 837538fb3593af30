package storage

import "errors"

// Errors returned by the storage engine. Protocol adapters map them to their
// own error codes; wrap-aware comparison (errors.Is) is the contract.
var (
	// ErrCorruptBatch: a batch is malformed or its CRC does not match.
	ErrCorruptBatch = errors.New("storage: corrupt record batch")
	// ErrInvalidRecord: a batch is well formed but its contents are not
	// acceptable (its record count disagrees with its offset range).
	ErrInvalidRecord = errors.New("storage: invalid record batch")
	// ErrBatchTooLarge: a batch exceeds the log's MaxBatchBytes.
	ErrBatchTooLarge = errors.New("storage: record batch too large")
	// ErrUnsupportedMagic: a batch is not RecordBatch v2 (magic 2).
	ErrUnsupportedMagic = errors.New("storage: unsupported record batch magic")
	// ErrOffsetOutOfRange: the offset is below the log start or above the
	// high watermark.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrClosed: the log has been closed or deleted.
	ErrClosed = errors.New("storage: log closed")
	// ErrStorage: the filesystem failed (write, fsync, ...). The wrapped
	// error says how. Nothing written after the last successful fsync was
	// acknowledged under FsyncAlways.
	ErrStorage = errors.New("storage: filesystem error")
)
