package broker

import "github.com/wharfmq/wharf/internal/alarm"

// The resource alarms' errors, re-exported so adapters map them with the
// core's other errors.
var (
	ErrDiskAlarm   = alarm.ErrDisk
	ErrMemoryAlarm = alarm.ErrMemory
)

// openAlarms makes the broker's resource alarm monitor; it watches the
// data directory unless the options name another one.
func (b *Broker) openAlarms() {
	opts := b.opts.Alarms
	if opts.Dir == "" {
		opts.Dir = b.opts.DataDir
	}
	if opts.Logger == nil {
		opts.Logger = b.logger
	}
	b.alarms = alarm.New(opts)
}

// Alarms is the broker's resource alarm monitor (disk free space, memory
// high watermark). Adapters ask it before accepting data and subscribe to
// it to learn of changes.
func (b *Broker) Alarms() *alarm.Monitor { return b.alarms }
