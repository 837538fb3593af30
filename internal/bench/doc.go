// Package bench holds Wharf's own load generators, used by `wharf bench`.
// They measure a broker from the outside, over real sockets with real
// clients, so that Wharf and a peer can be measured the same way in the same
// run. Every payload is incompressible and carries its send time, so
// end-to-end latency is measured per record, and a sequence number, so
// losses and duplicates are counted rather than assumed. The restart
// bench (restart.go) times `wharf serve` starting on a filled data
// directory, after a clean stop and after a crash.
package bench
