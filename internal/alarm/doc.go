// Package alarm holds Wharf's resource alarms, as RabbitMQ has them: the
// disk alarm, set while the free space of the filesystem holding the data
// directory is below a limit, and the memory alarm, set while the memory
// the Go runtime holds for the process is above a high watermark.
//
// It belongs to the core: the broker owns the Monitor (it starts it on
// open and stops it on close) and hands it to whoever asks. Protocol
// adapters ask it before they accept data (Alarms, Err), wait on it
// (Changed), or register a callback (Subscribe) to learn of changes; the
// Monitor never knows who they are.
//
// Measurements go through seams (Options.DiskFree, Options.MemoryInUse) so
// tests can fake free space and memory use; the defaults are statfs on the
// data directory and runtime/metrics.
//
// Invariants:
//   - The alarm set changes only in a check (Check, or the periodic one),
//     which logs each change once: a warning when an alarm is set, an info
//     line when it clears.
//   - The memory alarm clears only below ClearFraction of the watermark
//     (hysteresis), so it does not flap while the garbage collector works;
//     the disk alarm clears as soon as free space is back at the limit.
//   - With the runtime's own measurement, a reading at or above
//     ClearFraction of the watermark is taken again after a garbage
//     collection, so dead objects neither set the alarm nor hold it set.
//   - A measurement that fails leaves that alarm as it was, and is logged.
//   - Subscribers are called after each change, in registration order,
//     from the goroutine that ran the check and without the Monitor's lock
//     held; they must not block.
//   - Changed's channel is closed exactly when the set changes, so a
//     waiter that re-reads Alarms after it fires never misses a change.
package alarm
