package amqp

import (
	"context"
	"errors"
	"sync"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// confirmer sends a confirm-mode channel's basic.ack and basic.nack in
// publish order. A publish that stored nothing durable is confirmed at once
// when nothing is ahead of it; one that did waits (in the confirmer's
// goroutine) for the group-commit fsync. Consecutive acks are folded into
// one with multiple=true.
type confirmer struct {
	c       *conn
	channel uint16

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []confirmItem // waiting, in sequence order
	inflight bool          // the goroutine holds items taken from queue
	acked    uint64        // highest sequence number confirmed on the wire
	stopped  bool
	idle     []chan struct{} // flush waiters: closed once nothing is waiting for a confirm
	ctx      context.Context
	cancel   context.CancelFunc
}

type confirmItem struct {
	seq uint64
	res *broker.PublishResult // nil with err: failed before storing
	err error
}

func newConfirmer(c *conn, channel uint16) *confirmer {
	f := &confirmer{c: c, channel: channel}
	f.cond = sync.NewCond(&f.mu)
	f.ctx, f.cancel = context.WithCancel(context.Background())
	go f.run()
	return f
}

// add hands over publish seq's outcome.
func (f *confirmer) add(seq uint64, res *broker.PublishResult, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	if err == nil && !res.Durable() && res.Rejected == 0 && len(f.queue) == 0 && !f.inflight {
		f.sendLocked(seq, true)
		return
	}
	f.queue = append(f.queue, confirmItem{seq: seq, res: res, err: err})
	f.cond.Signal()
}

// sendLocked confirms seq (and, with multiple, everything before it).
func (f *confirmer) sendLocked(seq uint64, ok bool) {
	if ok {
		f.c.sendMethod(f.channel, &wire.BasicAck{DeliveryTag: seq, Multiple: seq > f.acked+1})
	} else {
		if seq > f.acked+1 {
			f.c.sendMethod(f.channel, &wire.BasicAck{DeliveryTag: seq - 1, Multiple: seq-1 > f.acked+1})
		}
		f.c.sendMethod(f.channel, &wire.BasicNack{DeliveryTag: seq})
	}
	f.acked = seq
}

func (f *confirmer) run() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		for len(f.queue) == 0 && !f.stopped {
			f.cond.Wait()
		}
		if f.stopped {
			return
		}
		batch := f.queue
		f.queue = nil
		f.inflight = true
		f.mu.Unlock()
		errs := make([]error, len(batch))
		for i, it := range batch {
			errs[i] = it.err
			if it.err == nil {
				errs[i] = it.res.Wait(f.ctx)
			}
		}
		f.mu.Lock()
		f.inflight = false
		if f.stopped {
			return
		}
		// Acks fold into one multiple ack up to the last success before a
		// failure; a failure is nacked alone.
		var pending uint64
		for i, it := range batch {
			if errs[i] == nil {
				pending = it.seq
				continue
			}
			if errors.Is(errs[i], broker.ErrQueueFull) {
				f.c.logger.Debug("publish refused by a full queue; nacking", "channel", f.channel, "seq", it.seq, "err", errs[i])
			} else {
				f.c.logger.Error("publish not durable; nacking", "channel", f.channel, "seq", it.seq, "err", errs[i])
			}
			if pending != 0 {
				f.sendLocked(pending, true)
				pending = 0
			}
			f.sendLocked(it.seq, false)
		}
		if pending != 0 {
			f.sendLocked(pending, true)
		}
		if len(f.queue) == 0 {
			f.wakeIdle()
		}
	}
}

// flush waits until every publish handed over so far has been confirmed or
// nacked on the wire, the confirmer has stopped, or abort is closed.
func (f *confirmer) flush(abort <-chan struct{}) {
	f.mu.Lock()
	if f.stopped || len(f.queue) == 0 && !f.inflight {
		f.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	f.idle = append(f.idle, idle)
	f.mu.Unlock()
	select {
	case <-idle:
	case <-abort:
	}
}

// wakeIdle releases the flush waiters. Callers hold mu.
func (f *confirmer) wakeIdle() {
	for _, ch := range f.idle {
		close(ch)
	}
	f.idle = nil
}

// stop ends the confirmer; outstanding publishes are not confirmed (their
// channel is closing).
func (f *confirmer) stop() {
	f.mu.Lock()
	f.stopped = true
	f.wakeIdle()
	f.cond.Broadcast()
	f.mu.Unlock()
	f.cancel()
}

// confirmSelect is confirm.select: publishes from now on are numbered from
// 1 and confirmed.
func (ch *channel) confirmSelect(m *wire.ConfirmSelect) error {
	if ch.tx != nil {
		return newCloseError(wire.ReplyPreconditionFailed, "cannot switch from tx to confirm mode")
	}
	if ch.confirms == nil {
		ch.confirms = newConfirmer(ch.c, ch.id)
	}
	if m.NoWait {
		return nil
	}
	return ch.c.sendMethod(ch.id, &wire.ConfirmSelectOk{})
}
