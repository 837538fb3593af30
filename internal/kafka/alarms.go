package kafka

import (
	"time"

	"github.com/wharfmq/wharf/internal/alarm"
	"github.com/wharfmq/wharf/internal/broker"
)

// Resource alarms and Produce. The disk alarm refuses every partition of a
// produce request with KAFKA_STORAGE_ERROR (56), retriable: it is what
// Kafka answers when it cannot write its log directory (a full disk takes
// Kafka's log directory offline), and producers retry it until their
// delivery timeout, so they pause while the alarm lasts and go on when it
// clears; nothing of a refused request is written. The memory alarm
// accepts the request but throttles the connection, as Kafka's quotas do:
// the response carries throttle_time_ms and the server reads nothing more
// from that connection until the throttle time has passed (clients of
// Produce v6 and later also hold back on their side, KIP-219). Fetches are
// not affected by either alarm.

// defaultAlarmThrottle is the throttle time of a produce request under
// the memory alarm.
const defaultAlarmThrottle = time.Second

// produceAlarms says what the alarms make of a produce request now: refuse
// is the error every partition gets (nil to accept it), throttle how long
// the connection is held back after it.
func (s *Server) produceAlarms() (refuse error, throttle time.Duration) {
	set := s.b.Alarms().Alarms()
	if set.Has(alarm.Disk) {
		refuse = broker.ErrDiskAlarm
	}
	if set.Has(alarm.Memory) {
		throttle = s.opts.AlarmThrottle
	}
	return refuse, throttle
}

// throttle holds the connection's reader back for d from now (or longer
// if an earlier throttle ends later).
func (c *conn) throttle(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.throttleUntil.Load()
		if cur >= until || c.throttleUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// waitThrottle waits until the connection's throttle time has passed. A
// shutdown ends the wait (the reader then reads what the client sent
// before it, as every connection does); if the connection ends meanwhile
// it returns errStopped.
func (c *conn) waitThrottle() error {
	d := time.Until(time.Unix(0, c.throttleUntil.Load()))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.ctx.Done():
		return errStopped
	case <-c.s.stopping:
		return nil
	}
}
