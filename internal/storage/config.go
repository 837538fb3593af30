package storage

import (
	"fmt"
	"time"
)

// FsyncPolicy says when appended data is forced to stable storage and
// therefore when an append is acknowledged.
type FsyncPolicy int

const (
	// FsyncAlways acknowledges an append only after an fsync that covers it.
	// Concurrent appends share one fsync (group commit). This is the default.
	FsyncAlways FsyncPolicy = iota
	// FsyncInterval acknowledges after the write reaches the page cache and
	// fsyncs in the background every FsyncInterval. A machine crash can lose
	// up to one interval of acknowledged data; a process crash loses nothing.
	FsyncInterval
	// FsyncNever acknowledges after the write reaches the page cache and
	// leaves write-back to the operating system (sealed segments are still
	// fsynced when they roll). A machine crash can lose whatever the OS had
	// not written back; a process crash loses nothing.
	FsyncNever
)

// String returns the policy name used in configuration.
func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("FsyncPolicy(%d)", int(p))
}

// ParseFsyncPolicy parses "always", "interval" or "never".
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "interval":
		return FsyncInterval, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("unknown fsync policy %q (want always, interval or never)", s)
}

// TimestampType says which timestamp a log keeps for its records.
type TimestampType int

const (
	// CreateTime keeps the producer's timestamps.
	CreateTime TimestampType = iota
	// LogAppendTime stamps each batch with the broker's clock on append.
	LogAppendTime
)

// LogConfig holds the settings of one log. The zero value is not valid; start
// from DefaultLogConfig.
type LogConfig struct {
	// SegmentBytes rolls the active segment when the next batch would take
	// it past this size.
	SegmentBytes int64
	// SegmentAge rolls the active segment once its first batch is this old.
	SegmentAge time.Duration
	// RetentionAge deletes a segment once its newest record is this old.
	// Zero or negative keeps data forever.
	RetentionAge time.Duration
	// RetentionBytes deletes the oldest segments while the log is larger than
	// this. Zero or negative keeps data forever.
	RetentionBytes int64
	// MaxBatchBytes is the largest batch the log accepts.
	MaxBatchBytes int
	// IndexIntervalBytes is the spacing of sparse index entries.
	IndexIntervalBytes int
	// TimestampType selects CreateTime or LogAppendTime.
	TimestampType TimestampType
	// Fsync selects the durability policy; FsyncInterval sets its period.
	Fsync         FsyncPolicy
	FsyncInterval time.Duration
}

// DefaultLogConfig returns Kafka's defaults, with fsync-before-ack.
func DefaultLogConfig() LogConfig {
	return LogConfig{
		SegmentBytes:       1 << 30,
		SegmentAge:         7 * 24 * time.Hour,
		RetentionAge:       7 * 24 * time.Hour,
		RetentionBytes:     -1,
		MaxBatchBytes:      1048588,
		IndexIntervalBytes: 4096,
		TimestampType:      CreateTime,
		Fsync:              FsyncAlways,
		FsyncInterval:      time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c LogConfig) Validate() error {
	switch {
	case c.SegmentBytes < 14 || c.SegmentBytes > maxSegmentBytes:
		return fmt.Errorf("segment bytes %d: must be between 14 and %d", c.SegmentBytes, int64(maxSegmentBytes))
	case c.SegmentAge <= 0:
		return fmt.Errorf("segment age %v: must be positive", c.SegmentAge)
	case c.MaxBatchBytes < batchHeaderSize:
		return fmt.Errorf("max batch bytes %d: must be at least %d", c.MaxBatchBytes, batchHeaderSize)
	case c.IndexIntervalBytes <= 0:
		return fmt.Errorf("index interval bytes %d: must be positive", c.IndexIntervalBytes)
	case c.TimestampType != CreateTime && c.TimestampType != LogAppendTime:
		return fmt.Errorf("timestamp type %d: unknown", c.TimestampType)
	case c.Fsync < FsyncAlways || c.Fsync > FsyncNever:
		return fmt.Errorf("fsync policy %d: unknown", c.Fsync)
	case c.Fsync == FsyncInterval && c.FsyncInterval <= 0:
		return fmt.Errorf("fsync interval %v: must be positive", c.FsyncInterval)
	}
	return nil
}
