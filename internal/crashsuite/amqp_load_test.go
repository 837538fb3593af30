//go:build unix

package crashsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

const (
	amqpQueue      = "crashsuite"
	amqpPublishers = 2
	amqpConsumers  = 2
	amqpPrefetch   = 20
	// Confirms a publisher waits for at most at once.
	amqpWindow = 32
	// Each publisher makes amqpBurst new messages every amqpTick: about
	// 400 a second each.
	amqpBurst = 8
	amqpTick  = 20 * time.Millisecond
	// A consumer proves its acks reached the broker with a round trip on
	// the same channel after this many, or after amqpAckProof.
	amqpAckBatch = 16
	amqpAckProof = 50 * time.Millisecond
	// The longest a consumer waits after connecting before it consumes.
	amqpPause = 1500 * time.Millisecond
)

// amqpLoad is the AMQP side of the suite: publishers with confirms and
// persistent messages, and consumers with manual acks and a prefetch, on a
// durable queue. Each client reconnects whenever its connection dies; a
// publisher republishes every message not confirmed yet.
type amqpLoad struct {
	t      *testing.T
	url    string
	ledger *AMQPLedger

	ctx    context.Context // cancelled to stop everything
	cancel context.CancelFunc

	stopPublishing atomic.Bool
	stopConsuming  atomic.Bool
	publishers     sync.WaitGroup
	consumers      sync.WaitGroup

	confirmed atomic.Int64
	delivered atomic.Int64
	unproved  atomic.Int64 // acks sent whose arrival is not proved yet, over all consumers
	dials     atomic.Int64
}

func dialAMQP(url string) (*amqp091.Connection, error) {
	return amqp091.DialConfig(url, amqp091.Config{
		Heartbeat: 10 * time.Second,
		Dial:      amqp091.DefaultDial(2 * time.Second),
	})
}

func startAMQPLoad(t *testing.T, addr string, ledger *AMQPLedger, seed uint64) *amqpLoad {
	a := &amqpLoad{t: t, url: "amqp://guest:guest@" + addr + "/", ledger: ledger}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	for p := range amqpPublishers {
		rng := rand.New(rand.NewPCG(seed, 100+uint64(p)))
		a.publishers.Go(func() { a.publish(p, rng) })
	}
	for c := range amqpConsumers {
		// Every other consumer acks in transactions.
		tx := c%2 == 1
		name := fmt.Sprintf("consumer %d", c)
		if tx {
			name = fmt.Sprintf("tx consumer %d", c)
		}
		rng := rand.New(rand.NewPCG(seed, 200+uint64(c)))
		a.consumers.Go(func() { a.consume(name, tx, rng) })
	}
	return a
}

// connect dials until it gets a connection and a channel on which the
// queue is declared, or the load stops.
func (a *amqpLoad) connect() (*amqp091.Connection, *amqp091.Channel, bool) {
	for a.ctx.Err() == nil {
		conn, err := dialAMQP(a.url)
		if err == nil {
			a.dials.Add(1)
			ch, err := conn.Channel()
			if err == nil {
				_, err = ch.QueueDeclare(amqpQueue, true, false, false, false, nil)
			}
			if err == nil {
				return conn, ch, true
			}
			conn.Close()
		}
		select {
		case <-a.ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil, nil, false
}

// inflight is a publish waiting for its confirm.
type inflight struct {
	seq  int64
	copy int64
	dc   *amqp091.DeferredConfirmation
}

// publish makes messages until told to stop, and then until every one of
// them is confirmed. A message not confirmed (nacked, or its connection
// lost) is published again as a new copy.
func (a *amqpLoad) publish(publisher int, rng *rand.Rand) {
	var (
		nextSeq  int64
		nextCopy int64
		resend   []int64 // sequences to publish again, in order
		budget   int     // new messages allowed now
	)
	tick := time.NewTicker(amqpTick)
	defer tick.Stop()
	for a.ctx.Err() == nil {
		if a.stopPublishing.Load() && len(resend) == 0 {
			return
		}
		conn, ch, ok := a.connect()
		if !ok {
			return
		}
		if err := ch.Confirm(false); err != nil {
			conn.Close()
			continue
		}
		var window []inflight
		// settle waits for the oldest confirm.
		settle := func() {
			f := window[0]
			window = window[1:]
			if ok, err := f.dc.WaitContext(a.ctx); err == nil && ok {
				a.ledger.Confirmed(ID{Proto: ProtoAMQP, Producer: publisher, Seq: f.seq, Copy: f.copy})
				a.confirmed.Add(1)
				return
			}
			resend = append(resend, f.seq)
		}
		for a.ctx.Err() == nil && !conn.IsClosed() {
			var seq int64
			switch {
			case len(resend) > 0:
				seq, resend = resend[0], resend[1:]
			case a.stopPublishing.Load():
				seq = -1
			case budget > 0:
				seq = nextSeq
				nextSeq++
				budget--
			default:
				seq = -2
			}
			if seq == -1 && len(window) == 0 {
				break // stopping, and everything is confirmed
			}
			if seq < 0 {
				if len(window) > 0 {
					settle()
					continue
				}
				select {
				case <-tick.C:
					budget = amqpBurst
				case <-a.ctx.Done():
				}
				continue
			}
			id := ID{Proto: ProtoAMQP, Producer: publisher, Seq: seq, Copy: nextCopy}
			nextCopy++
			dc, err := ch.PublishWithDeferredConfirmWithContext(a.ctx, "", amqpQueue, false, false, amqp091.Publishing{
				DeliveryMode: amqp091.Persistent,
				Body:         Encode(id, rng.IntN(maxFiller+1)),
			})
			if err != nil {
				resend = append(resend, seq)
				break
			}
			window = append(window, inflight{seq: seq, copy: id.Copy, dc: dc})
			if len(window) >= amqpWindow {
				settle()
			}
		}
		// Whatever is still waiting either gets its confirm or is nacked
		// when the connection closes.
		for len(window) > 0 {
			settle()
		}
		conn.Close()
		// Republish in sequence order.
		sortInt64s(resend)
	}
}

func sortInt64s(s []int64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// consume takes deliveries until told to stop, checks and acks each one,
// and proves now and then that its acks reached the broker: a basic.qos
// round trip on the same channel is answered only after the broker has
// handled every method sent before it. A transactional consumer (tx) acks
// in transactions and commits instead: tx.commit-ok says its acks are
// settled for good.
//
// After each connect a consumer waits a random while (up to amqpPause)
// before consuming, unless the load is draining, so that the queue backs
// up past the server's queue memory and messages are paged out to the log
// and read back, and so that restarts recover deep queues.
func (a *amqpLoad) consume(name string, tx bool, rng *rand.Rand) {
	for !a.stopConsuming.Load() && a.ctx.Err() == nil {
		conn, ch, ok := a.connect()
		if !ok {
			return
		}
		if !a.stopPublishing.Load() {
			select {
			case <-time.After(time.Duration(rng.Int64N(int64(amqpPause)))):
			case <-a.ctx.Done():
			}
		}
		a.consumeOn(name, ch, tx)
		conn.Close()
	}
}

func (a *amqpLoad) consumeOn(name string, ch *amqp091.Channel, tx bool) {
	if err := ch.Qos(amqpPrefetch, 0, false); err != nil {
		return
	}
	if tx {
		if err := ch.Tx(); err != nil {
			return
		}
	}
	deliveries, err := ch.Consume(amqpQueue, "", false, false, false, false, nil)
	if err != nil {
		return
	}
	// unproved holds the deliveries in hand: received, and acked or about
	// to be, but not yet proved to be settled at the broker.
	var unproved []ID
	defer func() { a.unproved.Add(-int64(len(unproved))) }()
	prove := func() bool {
		if len(unproved) == 0 {
			return true
		}
		var err error
		if tx {
			err = ch.TxCommit()
		} else {
			err = ch.Qos(amqpPrefetch, 0, false)
		}
		if err != nil {
			return false
		}
		a.ledger.AcksReached(unproved, tx)
		a.unproved.Add(-int64(len(unproved)))
		unproved = unproved[:0]
		return true
	}
	tick := time.NewTicker(amqpAckProof)
	defer tick.Stop()
	for !a.stopConsuming.Load() {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			a.unproved.Add(1)
			// A corrupt delivery is acked too (its zero ID matches no
			// message): it is counted, and must not come back forever.
			id, _ := a.ledger.Delivered(name, d.Body, d.Redelivered)
			unproved = append(unproved, id)
			a.delivered.Add(1)
			if d.Ack(false) != nil {
				return
			}
			if len(unproved) >= amqpAckBatch && !prove() {
				return
			}
		case <-tick.C:
			if !prove() {
				return
			}
		case <-a.ctx.Done():
			return
		}
	}
	prove()
}

// stopPublishers stops making new messages and waits until every message
// made is confirmed; the server must be up.
func (a *amqpLoad) stopPublishers(deadline time.Duration) error {
	a.stopPublishing.Store(true)
	done := make(chan struct{})
	go func() {
		a.publishers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(deadline):
		return fmt.Errorf("publishers still have unconfirmed messages after %v", deadline)
	}
}

// waitDrained waits until every confirmed message was delivered, the
// queue is empty and every ack is proved to have reached the broker.
func (a *amqpLoad) waitDrained(deadline time.Duration) error {
	until := time.Now().Add(deadline)
	for {
		undelivered := a.ledger.Undelivered()
		ready, err := queueDepth(a.url)
		if err == nil && undelivered == 0 && ready == 0 && a.unproved.Load() == 0 {
			return nil
		}
		if time.Now().After(until) {
			return fmt.Errorf("not drained after %v: %d confirmed messages undelivered, %d ready in the queue (%v), %d deliveries in hand",
				deadline, undelivered, ready, err, a.unproved.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueDepth returns the number of messages ready in the queue, from a
// passive declare.
func queueDepth(url string) (int, error) {
	conn, err := dialAMQP(url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	q, err := ch.QueueDeclarePassive(amqpQueue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}

// close stops the consumers and waits for every client to be gone.
func (a *amqpLoad) close() {
	a.stopPublishing.Store(true)
	a.stopConsuming.Store(true)
	a.cancel()
	a.publishers.Wait()
	a.consumers.Wait()
}
