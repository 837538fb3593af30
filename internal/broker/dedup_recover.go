package broker

import (
	"context"
	"fmt"
)

// Closing the crash window of deduplication. A message's id is written to
// its window's log only once the message's own append is durable, so a
// crash between the two fsyncs leaves a durable message whose id the
// window's log never got: its publisher was not confirmed, retries, and
// the retry would be stored a second time. On open, the broker therefore
// also remembers the ids of the messages the durable queues recovered
// (their message_id travels in their stored properties): a queue's window
// takes its own messages' ids, an exchange's window the ids of messages
// published to it found in any durable queue. Each id its log lacked is
// written to it, durably, before the broker serves anyone.
//
// What stays open: a message consumed, acknowledged and its settlement
// written in the milliseconds between its append's fsync and its id's is
// no longer in its queue when the broker opens, so its id is not found.

// rememberRecovered adds id, accepted at (ms), to the window unless it is
// there; a window with a log writes it there first, durably.
func (w *dedupWindow) rememberRecovered(id string, at int64) error {
	w.mu.Lock()
	_, known := w.ids[id]
	w.mu.Unlock()
	if known {
		return nil
	}
	if w.store == nil {
		w.restore(id, at, -1)
		return nil
	}
	off, p, err := w.store.append(id, at)
	if err != nil {
		return fmt.Errorf("writing a recovered message id to the deduplication log of %s: %w", w.what, err)
	}
	if err := p.Wait(context.Background()); err != nil {
		return fmt.Errorf("writing a recovered message id to the deduplication log of %s: %w", w.what, err)
	}
	w.restore(id, at, off)
	return nil
}

// recoveredMessages calls fn with every message a durable queue recovered,
// reading back those recovered paged out. Only the broker's open calls
// it, before the queue serves anyone.
func (q *Queue) recoveredMessages(recovered []*queued, fn func(*Message) error) error {
	for _, m := range recovered {
		msg := m.msg
		if msg == nil {
			if q.store == nil {
				continue
			}
			var err error
			if msg, err = q.store.load(m.offset); err != nil {
				return fmt.Errorf("reading back a message of %s: %w", q, err)
			}
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
	return nil
}

// rememberQueueIDs gives a deduplicating queue's window the ids of the
// messages it recovered.
func (q *Queue) rememberQueueIDs(recovered []*queued) error {
	if q.dedup == nil || len(recovered) == 0 {
		return nil
	}
	return q.recoveredMessages(recovered, func(msg *Message) error {
		if id, ok := propertyMessageID(msg.Properties); ok && id != "" {
			return q.dedup.rememberRecovered(id, msg.Timestamp)
		}
		return nil
	})
}

// rememberExchangeIDs gives every deduplicating exchange's window the ids
// of the messages published to it that the durable queues recovered.
// recovered lists, per queue, what it recovered.
func (b *Broker) rememberExchangeIDs(recovered map[*Queue][]*queued) error {
	if len(b.dedupX.byName) == 0 {
		return nil
	}
	for q, msgs := range recovered {
		err := q.recoveredMessages(msgs, func(msg *Message) error {
			w := b.dedupX.byName[ExchangeName{Vhost: q.Vhost, Name: msg.Exchange}]
			if w == nil {
				return nil
			}
			if id, ok := propertyMessageID(msg.Properties); ok && id != "" {
				return w.rememberRecovered(id, msg.Timestamp)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
