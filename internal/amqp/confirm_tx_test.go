package amqp

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Integration tests of publisher confirms and transactions.

// itConfirms waits for n confirmations and checks that they are acks with
// delivery tags from+0 .. from+n-1, in order.
func itConfirms(t *testing.T, confirms chan amqp091.Confirmation, from uint64, n int) {
	t.Helper()
	for i := range n {
		select {
		case c, ok := <-confirms:
			if !ok {
				t.Fatalf("confirmation channel closed after %d of %d", i, n)
			}
			if want := from + uint64(i); c.DeliveryTag != want || !c.Ack {
				t.Fatalf("confirmation %d: tag %d ack %v, want tag %d ack", i, c.DeliveryTag, c.Ack, want)
			}
		case <-time.After(itWait):
			t.Fatalf("only %d of %d confirmations", i, n)
		}
	}
}

// itNoConfirmation checks that nothing is waiting in confirms.
func itNoConfirmation(t *testing.T, confirms chan amqp091.Confirmation) {
	t.Helper()
	select {
	case c := <-confirms:
		t.Fatalf("unexpected confirmation %+v", c)
	default:
	}
}

func TestConfirmAcksInOrder(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "confirmed")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	// A second confirm.select is harmless.
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 300
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, n))
	for i := range n {
		switch i % 3 {
		case 0, 1:
			itPub(t, ch, "", q.Name, fmt.Sprint(i))
		case 2:
			// Unroutable messages are confirmed too.
			itPub(t, ch, "amq.direct", "nowhere", fmt.Sprint(i))
		}
	}
	itConfirms(t, confirms, 1, n)
	if got := itMessages(t, ch, q.Name); got != 2*n/3 {
		t.Fatalf("%d messages queued, want %d", got, 2*n/3)
	}
	itNoConfirmation(t, confirms)

	// Another confirm channel numbers its publishes from 1 as well.
	_, ch2 := ts.channel(t)
	if err := ch2.Confirm(false); err != nil {
		t.Fatal(err)
	}
	c2 := ch2.NotifyPublish(make(chan amqp091.Confirmation, 3))
	for i := range 3 {
		itPub(t, ch2, "", q.Name, fmt.Sprint("second-", i))
	}
	itConfirms(t, c2, 1, 3)
	// And the first goes on from where it was.
	itPub(t, ch, "", q.Name, "more")
	itConfirms(t, confirms, n+1, 1)
}

func TestConfirmPersistentDurable(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	dq, err := ch.QueueDeclare("durable-confirmed", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	tq := itDeclare(t, ch, "transient-confirmed")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 200
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, n))
	var deferred []*amqp091.DeferredConfirmation
	var wantDurable []string
	for i := range n {
		p := amqp091.Publishing{Body: []byte(fmt.Sprint("p", i))}
		key := dq.Name
		switch i % 4 {
		case 0, 1:
			p.DeliveryMode = amqp091.Persistent
			wantDurable = append(wantDurable, string(p.Body))
		case 2:
			p.DeliveryMode = amqp091.Transient
			wantDurable = append(wantDurable, string(p.Body))
		case 3:
			p.DeliveryMode = amqp091.Persistent
			key = tq.Name // persistent to a transient queue: not stored
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", key, false, false, p)
		if err != nil {
			t.Fatal(err)
		}
		if dc.DeliveryTag != uint64(i+1) {
			t.Fatalf("publish %d has sequence number %d", i, dc.DeliveryTag)
		}
		deferred = append(deferred, dc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), itWait)
	defer cancel()
	for i, dc := range deferred {
		ok, err := dc.WaitContext(ctx)
		if err != nil || !ok {
			t.Fatalf("publish %d: confirmed ack=%v err=%v", i+1, ok, err)
		}
	}
	itConfirms(t, confirms, 1, n)
	itSame(t, "durable queue", itDrain(t, ch, dq.Name), wantDurable)
	if got := itMessages(t, ch, tq.Name); got != n/4 {
		t.Fatalf("%d in the transient queue, want %d", got, n/4)
	}
}

func TestConfirmMandatoryReturnBeforeAck(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q, err := ch.QueueDeclare("ret-durable", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp091.Return, 4))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 4))
	// 1: persistent to a durable queue (waits for an fsync); 2:
	// unroutable and mandatory; 3: routed again.
	itPublish(t, ch, "", q.Name, true, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("stored")})
	itPublish(t, ch, "", "no-such-queue", true, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("bounced")})
	itPublish(t, ch, "", q.Name, true, amqp091.Publishing{Body: []byte("after")})
	itConfirms(t, confirms, 1, 1)
	itConfirms(t, confirms, 2, 1)
	// The client hands frames over in order: the return of 2 came before
	// its ack, so it is already there.
	select {
	case r := <-returns:
		if r.ReplyCode != amqp091.NoRoute || string(r.Body) != "bounced" || r.RoutingKey != "no-such-queue" {
			t.Fatalf("return %d %q key %q", r.ReplyCode, r.Body, r.RoutingKey)
		}
	default:
		t.Fatal("the ack of an unroutable mandatory message came before its basic.return")
	}
	itConfirms(t, confirms, 3, 1)
	itSame(t, "queue", itDrain(t, ch, q.Name), []string{"stored", "after"})
}

func TestConfirmTxExclusive(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	err := ch.Tx()
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")

	ch2, _ := c.Channel()
	if err := ch2.Tx(); err != nil {
		t.Fatal(err)
	}
	// A second tx.select is harmless.
	if err := ch2.Tx(); err != nil {
		t.Fatal(err)
	}
	err = ch2.Confirm(false)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")
	itConnUsable(t, c)
}

func TestConfirmPublishToMissingExchange(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 2))
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	itPub(t, ch, "", "whatever", "ok")
	itConfirms(t, confirms, 1, 1)
	itPub(t, ch, "no-such-exchange", "k", "lost")
	itWaitClose(t, closed, amqp091.NotFound, "NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'")
	// The client closes its confirmation channel without an ack.
	select {
	case cf, ok := <-confirms:
		if ok {
			t.Fatalf("confirmation %+v for a publish that closed the channel", cf)
		}
	case <-time.After(itWait):
		t.Fatal("confirmation channel not closed")
	}
	itConnUsable(t, c)
}

func TestTxCommitRollback(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, tch := ts.channel(t)
	q := itDeclare(t, tch, "tx-q")
	dq, err := tch.QueueDeclare("tx-durable", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	obs, _ := c.Channel()
	if err := tch.Tx(); err != nil {
		t.Fatal(err)
	}
	returns := tch.NotifyReturn(make(chan amqp091.Return, 2))
	for _, b := range []string{"t1", "t2", "t3"} {
		itPub(t, tch, "", q.Name, b)
	}
	itPublish(t, tch, "", dq.Name, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("d1")})
	itPublish(t, tch, "", "no-such-queue", true, amqp091.Publishing{Body: []byte("bounce")})
	// Nothing is visible before the commit, and nothing is returned yet.
	if _, ok, err := obs.Get(q.Name, true); err != nil || ok {
		t.Fatalf("get before commit: ok=%v err=%v", ok, err)
	}
	if n := itMessages(t, obs, q.Name); n != 0 {
		t.Fatalf("%d messages before commit", n)
	}
	if n := itMessages(t, tch, dq.Name); n != 0 {
		t.Fatalf("%d durable messages before commit", n)
	}
	select {
	case r := <-returns:
		t.Fatalf("return of %q before commit", r.Body)
	default:
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if string(r.Body) != "bounce" || r.ReplyCode != amqp091.NoRoute {
			t.Fatalf("return %d %q", r.ReplyCode, r.Body)
		}
	default:
		t.Fatal("no basic.return before tx.commit-ok")
	}
	itSame(t, "after commit", itDrain(t, obs, q.Name), []string{"t1", "t2", "t3"})
	itSame(t, "durable after commit", itDrain(t, obs, dq.Name), []string{"d1"})

	// Rollback discards the publishes.
	itPub(t, tch, "", q.Name, "r1")
	itPub(t, tch, "", q.Name, "r2")
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxCommit(); err != nil { // an empty commit
		t.Fatal(err)
	}
	itSame(t, "after rollback", itDrain(t, obs, q.Name), nil)
	// The channel stays transactional after both.
	itPub(t, tch, "", q.Name, "later")
	if n := itMessages(t, obs, q.Name); n != 0 {
		t.Fatalf("%d visible before the next commit", n)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	itSame(t, "next commit", itDrain(t, obs, q.Name), []string{"later"})

	// Publishing to a missing exchange in a transaction fails at once.
	closed := tch.NotifyClose(make(chan *amqp091.Error, 1))
	itPub(t, tch, "no-such-exchange", "k", "x")
	itWaitClose(t, closed, amqp091.NotFound, "NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'")
	itConnUsable(t, c)
}

func TestTxAcks(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, tch := ts.channel(t)
	q := itDeclare(t, tch, "tx-acks")
	for _, b := range itNames("m", 1, 5) {
		itPub(t, tch, "", q.Name, b)
	}
	if err := tch.Tx(); err != nil {
		t.Fatal(err)
	}
	get := func(want string) amqp091.Delivery {
		t.Helper()
		d, ok, err := tch.Get(q.Name, false)
		if err != nil || !ok || string(d.Body) != want {
			t.Fatalf("get: %q ok=%v err=%v, want %q", d.Body, ok, err, want)
		}
		return d
	}
	sync := func() { itMessages(t, tch, q.Name) } // orders asynchronous acks
	unacked := func(want int) {
		t.Helper()
		sync()
		if n := itUnacked(t, ts, q.Name); n != want {
			t.Fatalf("%d unacked, want %d", n, want)
		}
	}

	// An ack takes effect on commit.
	d1 := get("m1")
	if err := d1.Ack(false); err != nil {
		t.Fatal(err)
	}
	unacked(1)
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	unacked(0)

	// After a rollback the delivery is unacknowledged again, and can be
	// acked again (no 406).
	d2 := get("m2")
	if err := d2.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	unacked(1)
	if err := d2.Ack(false); err != nil {
		t.Fatal(err)
	}
	unacked(1)
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	unacked(0)

	// A reject with requeue in a transaction: the message stays with the
	// channel until commit, then is back in the queue, redelivered.
	d3 := get("m3")
	if err := d3.Reject(true); err != nil {
		t.Fatal(err)
	}
	obs, _ := c.Channel()
	sync()
	if n := itMessages(t, obs, q.Name); n != 2 {
		t.Fatalf("%d ready before committing the reject, want 2 (m4, m5)", n)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	d, ok, err := obs.Get(q.Name, true)
	if err != nil || !ok || string(d.Body) != "m3" || !d.Redelivered {
		t.Fatalf("after committed reject: %q redelivered=%v ok=%v err=%v", d.Body, d.Redelivered, ok, err)
	}

	// An ack rolled back stays pending when the channel closes: the message
	// goes back to the queue.
	d4 := get("m4")
	if err := d4.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	// And an ack not yet committed when the channel closes is not applied.
	d5 := get("m5")
	if err := d5.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := tch.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		d, ok, err := obs.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if !d.Redelivered {
			t.Fatalf("%q not marked redelivered", d.Body)
		}
		got = append(got, string(d.Body))
	}
	itSame(t, "after closing the transactional channel", got, []string{"m4", "m5"})

	// A multiple ack in a transaction settles up to its tag, on commit.
	tch2, _ := c.Channel()
	for _, b := range itNames("n", 1, 3) {
		itPub(t, tch2, "", q.Name, b)
	}
	if err := tch2.Tx(); err != nil {
		t.Fatal(err)
	}
	msgs := itConsume(t, tch2, q.Name, "txc", false)
	ds := itRecvN(t, msgs, 3)
	itSame(t, "consumed", itBodies(ds), itNames("n", 1, 3))
	if err := ds[1].Ack(true); err != nil {
		t.Fatal(err)
	}
	itMessages(t, tch2, q.Name)
	if n := itUnacked(t, ts, q.Name); n != 3 {
		t.Fatalf("%d unacked before commit, want 3", n)
	}
	if err := tch2.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if n := itUnacked(t, ts, q.Name); n != 1 {
		t.Fatalf("%d unacked after commit, want 1", n)
	}
}

func TestTxWithoutSelect(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	err := ch.TxCommit()
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - channel is not transactional")
	ch, _ = c.Channel()
	err = ch.TxRollback()
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - channel is not transactional")
	itConnUsable(t, c)
}

// Publishes before tx.select are not part of any transaction.
func TestTxSelectAfterPublishes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "tx-late")
	itPub(t, ch, "", q.Name, "before")
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	itPub(t, ch, "", q.Name, "inside")
	if err := ch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	got := itDrain(t, ch, q.Name)
	if !slices.Equal(got, []string{"before"}) {
		t.Fatalf("got %q, want [before]", got)
	}
}

// Publishing to an internal exchange in a transaction is refused at once,
// as in RabbitMQ, and the transaction's earlier publishes are not applied:
// the channel closes with the transaction uncommitted.
func TestTxPublishToInternalExchange(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if err := ch.ExchangeDeclare("tx-internal", "fanout", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	q := itDeclare(t, ch, "tx-internal-q")
	tch, _ := c.Channel()
	if err := tch.Tx(); err != nil {
		t.Fatal(err)
	}
	closed := tch.NotifyClose(make(chan *amqp091.Error, 1))
	itPub(t, tch, "", q.Name, "earlier-in-tx")
	itPub(t, tch, "tx-internal", "", "refused")
	err := tch.TxCommit()
	if err == nil {
		t.Fatal("tx.commit succeeded after a publish to an internal exchange")
	}
	itWaitClose(t, closed, amqp091.AccessRefused, "ACCESS_REFUSED - cannot publish to internal exchange 'tx-internal' in vhost '/'")
	itSame(t, "queue after the failed transaction", itDrain(t, ch, q.Name), nil)
	itConnUsable(t, c)
}

// RabbitMQ routes a transactional publish when it is received and delivers
// at tx.commit, so an exchange deleted in between does not matter, and a
// commit applies all of its publishes or none.
func TestTxExchangeDeletedBeforeCommit(t *testing.T) {
	// Publishes are routed when they arrive and enqueued at commit, as in
	// RabbitMQ, so deleting an exchange in between splits nothing.
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	itExchange(t, ch, "tx-doomed", "fanout")
	q := itDeclare(t, ch, "tx-doomed-q")
	itBind(t, ch, q.Name, "", "tx-doomed", nil)
	tch, _ := c.Channel()
	if err := tch.Tx(); err != nil {
		t.Fatal(err)
	}
	itPub(t, tch, "", q.Name, "direct-to-queue")
	itPub(t, tch, "tx-doomed", "", "through-exchange")
	itMessages(t, tch, q.Name) // the publishes are in
	if err := ch.ExchangeDelete("tx-doomed", false, false); err != nil {
		t.Fatal(err)
	}
	err := tch.TxCommit()
	got := itDrain(t, ch, q.Name)
	if err != nil {
		// Either all or nothing.
		itSame(t, "after a failed commit", got, nil)
		return
	}
	itSame(t, "after commit", got, []string{"direct-to-queue", "through-exchange"})
}
