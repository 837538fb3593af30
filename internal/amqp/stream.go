package amqp

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/amqp/tables"
	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// Consumers of stream queues. A stream consumer is a goroutine reading the
// stream's log with its own broker.StreamReader from the consumer's
// x-stream-offset, and sending each record as a delivery with its offset
// in the x-stream-offset header. Its prefetch count is its credit: a
// delivery takes one, and an ack, nack or reject of it (requeue or not;
// a stream never redelivers) gives it back, as RabbitMQ does. The reader
// holds no lock while it waits for data or credit; a delivery takes only
// the channel's lock, as a queue's does.

// streamConsumer is a basic.consume on a stream queue.
type streamConsumer struct {
	tag    string
	s      *broker.Stream
	credit chan struct{} // one token per delivery the consumer may have out
	kick   chan struct{} // the channel's flow or the connection's outbox may allow deliveries again
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader goroutine has returned
}

// stop ends the consumer's goroutine and waits for it.
func (sc *streamConsumer) stop() {
	sc.cancel()
	<-sc.done
}

// give returns one unit of credit.
func (sc *streamConsumer) give() {
	select {
	case sc.credit <- struct{}{}:
	default:
	}
}

// decompressor decodes compressed batches that Kafka producers wrote.
func decompressor() broker.Decompressor {
	d := kgo.DefaultDecompressor()
	return func(codec int, records []byte) ([]byte, error) {
		return d.Decompress(records, kgo.CompressionCodecType(codec))
	}
}

// consumeStream is basic.consume of a stream queue: RabbitMQ's rules (a
// prefetch count is required, automatic acknowledgement is refused), then
// a reader from x-stream-offset (default next).
func (ch *channel) consumeStream(m *wire.BasicConsume, tag string, s *broker.Stream) error {
	if m.NoAck {
		return newCloseError(wire.ReplyNotImplemented, "automatic acknowledgement not supported by stream queues %s", s)
	}
	if ch.prefetch <= 0 {
		return newCloseError(wire.ReplyPreconditionFailed, "consumer prefetch count is not set for stream %s", s)
	}
	args := tables.ToBroker(m.Arguments)
	at, err := broker.ParseStreamOffset(args[broker.HeaderStreamOffset], ch.c.s.opts.Now())
	if err != nil {
		return newCloseError(wire.ReplyPreconditionFailed, "invalid arg 'x-stream-offset' for consumer '%s' of %s: %v", tag, s, err)
	}
	filter, err := broker.ParseStreamFilter(args[broker.ArgStreamFilter], args[broker.ArgStreamMatchUnfiltered])
	if err != nil {
		return newCloseError(wire.ReplyPreconditionFailed, "invalid arg for consumer '%s' of %s: %v", tag, s, err)
	}
	r, err := s.NewReader(at, decompressor())
	if err != nil {
		return err
	}
	r.SetFilter(filter)
	ctx, cancel := context.WithCancel(context.Background())
	sc := &streamConsumer{tag: tag, s: s, credit: make(chan struct{}, ch.prefetch), kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	for range ch.prefetch {
		sc.credit <- struct{}{}
	}
	ch.mu.Lock()
	if ch.streams == nil {
		ch.streams = map[string]*streamConsumer{}
	}
	ch.streams[tag] = sc
	ch.mu.Unlock()
	s.AddConsumer()
	if !m.NoWait {
		if err := ch.c.sendMethod(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag}); err != nil {
			ch.mu.Lock()
			delete(ch.streams, tag)
			ch.mu.Unlock()
			s.RemoveConsumer()
			cancel()
			close(sc.done)
			return err
		}
	}
	go ch.runStream(ctx, sc, r)
	return nil
}

// runStream delivers a stream consumer's records as its credit allows,
// and while the channel's flow is on and the connection's outbox is not
// backed up (as a queue's consumer is skipped while Busy).
func (ch *channel) runStream(ctx context.Context, sc *streamConsumer, r *broker.StreamReader) {
	defer close(sc.done)
	defer sc.s.RemoveConsumer()
	for {
		select {
		case <-sc.credit:
		case <-ctx.Done():
			return
		}
		rec, err := r.Next(ctx)
		if err != nil {
			if errors.Is(err, broker.ErrStreamClosed) {
				ch.streamGone(sc.tag)
			} else if ctx.Err() == nil {
				ch.c.logger.Error("reading a stream queue", "queue", sc.s.Name, "err", err)
				ch.streamGone(sc.tag)
			}
			return
		}
		for ch.flowOff.Load() || ch.c.busy() {
			select {
			case <-sc.kick:
			case <-ctx.Done():
				return
			}
		}
		ch.deliverStream(sc, rec)
	}
}

// deliverStream sends a stream record to its consumer, unless the
// consumer was cancelled meanwhile.
func (ch *channel) deliverStream(sc *streamConsumer, rec broker.StreamRecord) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed || ch.streams[sc.tag] != sc {
		return
	}
	ch.nextTag++
	dt := ch.nextTag
	ch.unacked.items = append(ch.unacked.items, unackedEntry{tag: dt, d: broker.Delivery{Message: rec.Message}, at: ch.c.s.opts.Now().UnixMilli(), timeout: -1, live: true, stream: sc})
	ch.unacked.live++
	msg := rec.Message
	err := ch.c.sendMessage(ch.id, &wire.BasicDeliver{ConsumerTag: sc.tag, DeliveryTag: dt, Exchange: msg.Exchange, RoutingKey: msg.RoutingKey}, msg.Properties, msg.Body)
	if err != nil && err != errConnClosed {
		ch.c.logger.Error("encoding a delivery", "queue", sc.s.Name, "err", err)
	}
}

// kickStreams wakes the channel's stream consumers waiting for its flow or
// its connection's outbox.
func (ch *channel) kickStreams() {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, sc := range ch.streams {
		select {
		case sc.kick <- struct{}{}:
		default:
		}
	}
}

// streamGone is a stream consumer's queue being deleted: the consumer
// goes, and a client that understands it is told with basic.cancel.
func (ch *channel) streamGone(tag string) {
	ch.mu.Lock()
	_, ok := ch.streams[tag]
	delete(ch.streams, tag)
	closed := ch.closed
	ch.mu.Unlock()
	if ok && !closed && ch.c.cancelNotify {
		ch.c.sendMethod(ch.id, &wire.BasicCancel{ConsumerTag: tag, NoWait: true})
	}
}

// cancelStream is basic.cancel of a stream consumer; it reports whether
// tag named one.
func (ch *channel) cancelStream(tag string) bool {
	ch.mu.Lock()
	sc, ok := ch.streams[tag]
	delete(ch.streams, tag)
	ch.mu.Unlock()
	if ok {
		sc.stop()
	}
	return ok
}

// stopStreams ends every stream consumer of a closing channel.
func (ch *channel) stopStreams() {
	ch.mu.Lock()
	scs := ch.streams
	ch.streams = nil
	ch.mu.Unlock()
	for _, sc := range scs {
		sc.stop()
	}
}

// creditStreams gives back the credit of settled stream deliveries and
// returns the others, which belong to queues.
func creditStreams(es []unackedEntry) []unackedEntry {
	kept := es[:0]
	for _, e := range es {
		if e.stream != nil {
			e.stream.give()
			continue
		}
		kept = append(kept, e)
	}
	return kept
}

// streamGetRefused is basic.get of a stream queue, refused as RabbitMQ
// refuses it.
func streamGetRefused(s *broker.Stream) error {
	return newCloseError(wire.ReplyNotImplemented, "basic.get not supported by stream queues %s", s)
}
