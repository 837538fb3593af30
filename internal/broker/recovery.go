package broker

import (
	"sync"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// recoveryTotals adds up what opening the broker's logs took, for the one
// line Open logs about it.
type recoveryTotals struct {
	mu        sync.Mutex
	logs      int
	scanned   int   // segments read batch by batch
	scanBytes int64 // their bytes
	truncated int64 // torn or corrupt bytes cut off
}

func (r *recoveryTotals) add(rec storage.Recovery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs++
	r.scanned += rec.ScannedSegments
	r.scanBytes += rec.ScannedBytes
	r.truncated += rec.TruncatedBytes
}

// logRecovery logs how the logs opened: "clean start" when no segment had
// to be read (after a clean shutdown every segment has valid indexes),
// "recovered an unclean shutdown" otherwise, with what was read and cut.
func (b *Broker) logRecovery(took time.Duration) {
	r := &b.recovery
	r.mu.Lock()
	defer r.mu.Unlock()
	msg, log := "clean start", b.logger.Info
	if r.scanned > 0 || r.truncated > 0 {
		msg, log = "recovered an unclean shutdown", b.logger.Warn
	}
	log(msg, "logs", r.logs, "scanned_segments", r.scanned, "scanned_bytes", r.scanBytes,
		"truncated_bytes", r.truncated, "took", took.Round(time.Millisecond))
}
