package amqp

import (
	"encoding/binary"
	"maps"
	"slices"

	"github.com/wharfmq/wharf/internal/alarm"
	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// Resource alarms, as RabbitMQ applies them: while the disk or the memory
// alarm is set, publishing connections are blocked and everything else goes
// on. A connection becomes a publishing one when it first sends
// basic.publish. When an alarm goes off, every publishing connection whose
// client announced the connection.blocked capability is sent
// connection.blocked with the reason ("low on disk", "low on memory", both
// joined by " & "); when a publishing connection sends basic.publish while
// an alarm is set, its reader stops after that method frame (its content
// and anything after it stay in the socket, so TCP holds the client back)
// until every alarm has cleared. connection.unblocked follows the
// connection.blocked once all alarms are clear. Heartbeats are not
// expected from a blocked connection, since it is not read, and a shutdown
// closes it with 320 without draining it. Connections
// that only consume are never blocked; a connection that both publishes
// and consumes stops reading its acks while blocked, as in RabbitMQ.

// isPublish reports whether f is the method frame of basic.publish.
func isPublish(f wire.Frame) bool {
	return f.Type == wire.FrameMethod && len(f.Payload) >= 4 &&
		binary.BigEndian.Uint16(f.Payload) == wire.ClassBasic && binary.BigEndian.Uint16(f.Payload[2:]) == 40
}

// alarmsChanged is the server's subscription to the broker's alarms: it
// tells every publishing connection.
func (s *Server) alarmsChanged(set alarm.Set) {
	s.mu.Lock()
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	for _, c := range conns {
		c.alarmsChanged(set)
	}
}

// alarmsChanged sends connection.blocked or connection.unblocked if the
// connection publishes and the change calls for it.
func (c *conn) alarmsChanged(set alarm.Set) {
	if !c.publisher.Load() {
		return
	}
	c.blockMu.Lock()
	defer c.blockMu.Unlock()
	if set.Any() {
		c.notifyBlockedLocked(set)
	} else {
		c.notifyUnblockedLocked()
	}
}

// notifyBlockedLocked sends connection.blocked unless it was sent since
// the last connection.unblocked. Callers hold blockMu.
func (c *conn) notifyBlockedLocked(set alarm.Set) {
	if c.blockedSent {
		return
	}
	c.blockedSent = true
	if c.blockedCap {
		c.sendMethod(0, &wire.ConnectionBlocked{Reason: set.Reason()})
	}
	c.logger.Info("connection blocked", "reason", set.Reason())
}

// notifyUnblockedLocked sends connection.unblocked after a
// connection.blocked. Callers hold blockMu.
func (c *conn) notifyUnblockedLocked() {
	if !c.blockedSent {
		return
	}
	c.blockedSent = false
	if c.blockedCap {
		c.sendMethod(0, &wire.ConnectionUnblocked{})
	}
	c.logger.Info("connection unblocked")
}

// blockWhileAlarmed runs in the reader after a basic.publish method frame:
// the connection is a publishing one from now on, and while any alarm is
// set the reader waits here, reading nothing, until they have all cleared
// or the server shuts down.
func (c *conn) blockWhileAlarmed() {
	if !c.publisher.Load() {
		c.publisher.Store(true)
	}
	mon := c.b.Alarms()
	if !mon.Alarms().Any() {
		// The common case, without a lock. A connection.blocked sent
		// before the alarms cleared is answered by the subscription's
		// connection.unblocked, or by this loop if the two crossed.
		return
	}
	for {
		changed := mon.Changed()
		set := mon.Alarms()
		c.blockMu.Lock()
		if !set.Any() {
			c.notifyUnblockedLocked()
			c.blockMu.Unlock()
			return
		}
		c.notifyBlockedLocked(set)
		c.blockMu.Unlock()
		c.readerBlocked.Store(true)
		select {
		case <-changed:
			c.readerBlocked.Store(false)
		case <-c.s.stopping:
			// A blocked connection is not drained on shutdown: what it
			// sent since it was blocked (the content of this publish
			// included) is neither read as data nor confirmed, and the
			// connection closes with 320.
			c.readerBlocked.Store(false)
			c.startClose(newCloseError(wire.ReplyConnectionForced, "broker shutdown"))
			return
		}
	}
}
