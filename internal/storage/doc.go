// Package storage is Wharf's segmented log: the one place that touches data
// files. Everything the broker stores, whatever protocol it came from, is a
// Kafka RecordBatch v2 (magic 2, CRC32C) in a Log.
//
// # Layout
//
// A Log is a directory of segments named by their base offset:
// 00000000000000000000.log holds whole batches back to back;
// .index is the sparse offset index (relative offset -> file position, one
// entry per IndexIntervalBytes, always at a batch boundary) with a trailer
// summarising the segment (next offset, size, max timestamp) and a CRC32C;
// .timeindex maps increasing max timestamps to offsets, with a CRC32C;
// .txnindex holds the transactions open where the segment begins and ends
// (producer id, first offset) and those aborted in it (producer id, first
// offset, abort marker offset), with a CRC32C (txn.go).
// log-start-offset records a start moved by DeleteRecords.
//
// # Invariants
//
//   - Offsets are dense and strictly increasing across segments: segment i
//     ends exactly where segment i+1 begins.
//   - A segment file holds only whole batches that passed CheckBatch, with
//     the base offsets the log assigned.
//   - While a log is open its active (last) segment has no index files; its
//     indexes live in memory. A sealed segment gets index files only after
//     its data has been fsynced, and so does the active one when Close has
//     fsynced everything (whatever the fsync policy): an index file on disk
//     means "this segment is whole". Recovery reads batch by batch, and cuts
//     at the first torn or corrupt batch, every segment without valid index
//     files (an index is valid only if its recorded size is the file's):
//     after a crash, the last segment; after a clean Close, none. Open
//     removes the active segment's index files before anything is
//     appended. A torn sealed segment ends the log.
//   - Readers never see data at or past the high watermark. Under
//     FsyncAlways the high watermark is what has been fsynced, so nothing a
//     reader saw can disappear in a crash; under FsyncInterval and
//     FsyncNever it is what has been written.
//   - An append under FsyncAlways is acknowledged only after an fsync that
//     covers it (group commit: every append waiting when a round starts
//     shares it). If an fsync fails, the log is cut back to the high
//     watermark and every append waiting on a later offset fails: data whose
//     fsync failed is never acknowledged.
//   - The log follows Kafka transactions from the batch headers and
//     control records it stores: the open ones give the last stable
//     offset (never past the high watermark), and abort markers the
//     aborted list a read-committed reader needs. A segment's .txnindex is
//     written with its other indexes and trusted only with them; without
//     it the segment is read again, from the open transactions where it
//     begins, as recovery reads any segment without indexes. A cut back
//     after a failed fsync follows the cut segment's transactions again.
//   - The append path validates the header and CRC and rewrites the base
//     offset (and, for LogAppendTime, the timestamp and CRC); it never
//     decodes records. The read path returns file ranges (Slice) that can be
//     sent to a socket with sendfile.
//
// # Concurrency
//
// Log.mu guards the segment list, offsets and in-memory indexes. Appends hold
// it while they assign offsets and write, which makes them the single writer;
// CRC validation happens before, fsync after, both outside the lock. The
// syncer goroutine runs fsync rounds outside the lock. Readers hold it only
// to locate data; file reads happen outside it on a reference-counted
// segment, so retention can delete a segment while a reader still sends it.
//
// All file access goes through the FS interface so tests can inject ENOSPC,
// EIO and fsync failures.
package storage
