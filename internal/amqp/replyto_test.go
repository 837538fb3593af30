package amqp

import (
	"context"
	"fmt"
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Direct reply-to (replyto.go), with amqp091-go clients over real sockets.

// drtRequester is a requester: a channel consuming amq.rabbitmq.reply-to.
type drtRequester struct {
	conn    *amqp091.Connection
	ch      *amqp091.Channel
	replies <-chan amqp091.Delivery
}

func drtNewRequester(t *testing.T, ts *testServer, tag string) *drtRequester {
	t.Helper()
	c, ch := ts.channel(t)
	return &drtRequester{conn: c, ch: ch, replies: itConsume(t, ch, replyQueue, tag, true)}
}

// request publishes body to queue with reply_to amq.rabbitmq.reply-to.
func (r *drtRequester) request(t *testing.T, queue, correlation, body string) {
	t.Helper()
	itPublish(t, r.ch, "", queue, false, amqp091.Publishing{ReplyTo: replyQueue, CorrelationId: correlation, Body: []byte(body)})
}

// drtResponder consumes the request queue on a connection of its own, in
// confirm mode, and watches for basic.return.
type drtResponder struct {
	conn     *amqp091.Connection
	ch       *amqp091.Channel
	requests <-chan amqp091.Delivery
	confirms chan amqp091.Confirmation
	returns  chan amqp091.Return
	seq      uint64
}

func drtNewResponder(t *testing.T, ts *testServer, queue string) *drtResponder {
	t.Helper()
	c, ch := ts.channel(t)
	itDeclare(t, ch, queue)
	r := &drtResponder{conn: c, ch: ch, requests: itConsume(t, ch, queue, "responder", true)}
	r.confirms = itConfirmMode(t, ch, 16)
	r.returns = ch.NotifyReturn(make(chan amqp091.Return, 16))
	return r
}

// reply publishes a reply to the request's reply_to and waits for its
// confirm, which follows any basic.return of it.
func (r *drtResponder) reply(t *testing.T, req amqp091.Delivery, mandatory bool, body string) {
	t.Helper()
	itPublish(t, r.ch, "", req.ReplyTo, mandatory, amqp091.Publishing{CorrelationId: req.CorrelationId, Body: []byte(body)})
	r.seq++
	itConfirms(t, r.confirms, r.seq, 1)
}

// noReturn checks that no basic.return came before the last confirm.
func (r *drtResponder) noReturn(t *testing.T) {
	t.Helper()
	select {
	case ret := <-r.returns:
		t.Fatalf("unexpected basic.return %d %q of %q to %q", ret.ReplyCode, ret.ReplyText, ret.Body, ret.RoutingKey)
	default:
	}
}

func TestDirectReplyRoundTrip(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	resp := drtNewResponder(t, ts, "rpc")
	req := drtNewRequester(t, ts, "replies")
	if caps, _ := req.conn.Properties["capabilities"].(amqp091.Table); caps["direct_reply_to"] != true {
		t.Fatalf("server capabilities %v: want direct_reply_to true", caps)
	}
	var name string
	var lastTag uint64
	for i := range 3 {
		corr := fmt.Sprintf("id-%d", i)
		req.request(t, "rpc", corr, fmt.Sprintf("question %d", i))
		d := itRecv(t, resp.requests)
		if !strings.HasPrefix(d.ReplyTo, replyQueue+".") || len(d.ReplyTo) <= len(replyQueue)+1 {
			t.Fatalf("request reply_to %q: want %s.<opaque>", d.ReplyTo, replyQueue)
		}
		if name == "" {
			name = d.ReplyTo
		} else if d.ReplyTo != name {
			t.Fatalf("request %d reply_to %q, want the channel's name %q again", i, d.ReplyTo, name)
		}
		if d.CorrelationId != corr || string(d.Body) != fmt.Sprintf("question %d", i) {
			t.Fatalf("request: correlation %q body %q", d.CorrelationId, d.Body)
		}
		resp.reply(t, d, true, fmt.Sprintf("answer %d", i))
		resp.noReturn(t)
		r := itRecv(t, req.replies)
		if string(r.Body) != fmt.Sprintf("answer %d", i) || r.CorrelationId != corr {
			t.Fatalf("reply %d: body %q correlation %q", i, r.Body, r.CorrelationId)
		}
		if r.ConsumerTag != "replies" || r.Exchange != "" || r.RoutingKey != name || r.Redelivered {
			t.Fatalf("reply %d: consumer %q exchange %q key %q redelivered %v", i, r.ConsumerTag, r.Exchange, r.RoutingKey, r.Redelivered)
		}
		if r.DeliveryTag <= lastTag {
			t.Fatalf("reply %d: delivery tag %d after %d", i, r.DeliveryTag, lastTag)
		}
		lastTag = r.DeliveryTag
	}
	// Nothing went through a queue: the request queue is empty and no
	// queue of the reply's name exists beyond the pseudo-queue's answer.
	if n := itMessages(t, resp.ch, "rpc"); n != 0 {
		t.Fatalf("request queue holds %d messages", n)
	}
}

func TestDirectReplyConsumeRefusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	_, err := ch.Consume(replyQueue, "acking", false, false, false, false, nil)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - reply consumer cannot acknowledge")
	itWaitClose(t, closed, amqp091.PreconditionFailed, "PRECONDITION_FAILED - reply consumer cannot acknowledge")

	ch = mustChannel(t, c)
	itConsume(t, ch, replyQueue, "first", true)
	_, err = ch.Consume(replyQueue, "second", true, false, false, false, nil)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - reply consumer already set")

	itConnUsable(t, c)

	// The reply consumer's tag is taken on its channel (530 closes the
	// connection, as in RabbitMQ).
	_, ch = ts.channel(t)
	itDeclare(t, ch, "other")
	itConsume(t, ch, replyQueue, "tag", true)
	_, err = ch.Consume("other", "tag", true, false, false, false, nil)
	itWantError(t, err, amqp091.NotAllowed, "NOT_ALLOWED - attempt to reuse consumer tag 'tag'")
}

func TestDirectReplyPublishWithoutConsumer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	itDeclare(t, ch, "rpc")
	const text = "PRECONDITION_FAILED - fast reply consumer does not exist"

	// A channel that never consumed the pseudo-queue.
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	itPublish(t, ch, "", "rpc", false, amqp091.Publishing{ReplyTo: replyQueue, Body: []byte("lost?")})
	itWaitClose(t, closed, amqp091.PreconditionFailed, text)

	// Another channel of a connection whose first channel consumes: the
	// consumer is per channel.
	consuming := mustChannel(t, c)
	itConsume(t, consuming, replyQueue, "", true)
	ch = mustChannel(t, c)
	closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	itPublish(t, ch, "", "rpc", false, amqp091.Publishing{ReplyTo: replyQueue, Body: []byte("lost?")})
	itWaitClose(t, closed, amqp091.PreconditionFailed, text)

	// A channel whose reply consumer was cancelled.
	ch = mustChannel(t, c)
	itConsume(t, ch, replyQueue, "gone", true)
	if err := ch.Cancel("gone", false); err != nil {
		t.Fatalf("cancel the reply consumer: %v", err)
	}
	closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	itPublish(t, ch, "", "rpc", false, amqp091.Publishing{ReplyTo: replyQueue, Body: []byte("lost?")})
	itWaitClose(t, closed, amqp091.PreconditionFailed, text)

	// None of the refused requests reached the queue, and the server
	// serves on.
	ch = mustChannel(t, c)
	if n := itMessages(t, ch, "rpc"); n != 0 {
		t.Fatalf("the request queue holds %d refused requests", n)
	}
	// A reply_to that only looks like the pseudo-queue is left alone.
	itPublish(t, ch, "", "rpc", false, amqp091.Publishing{ReplyTo: replyQueue + "-not", Body: []byte("plain")})
	d, ok, err := ch.Get("rpc", true)
	if err != nil || !ok || d.ReplyTo != replyQueue+"-not" {
		t.Fatalf("get: ok %v err %v reply_to %q", ok, err, d.ReplyTo)
	}
	itConnUsable(t, c)
}

func TestDirectReplyDeclare(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	// The pseudo-queue exists for every declare, passive or not, with one
	// consumer and no messages, as in RabbitMQ.
	for _, passive := range []bool{true, false} {
		declare := ch.QueueDeclare
		if passive {
			declare = ch.QueueDeclarePassive
		}
		q, err := declare(replyQueue, false, false, false, false, nil)
		if err != nil {
			t.Fatalf("declare %s (passive %v): %v", replyQueue, passive, err)
		}
		if q.Name != replyQueue || q.Messages != 0 || q.Consumers != 1 {
			t.Fatalf("declare-ok %q messages %d consumers %d", q.Name, q.Messages, q.Consumers)
		}
	}

	resp := drtNewResponder(t, ts, "rpc")
	req := drtNewRequester(t, ts, "")
	req.request(t, "rpc", "1", "q")
	name := itRecv(t, resp.requests).ReplyTo
	// A live requester's name exists, from any connection.
	if !itQueueExists(t, c, name) {
		t.Fatalf("passive declare of live %q: not found", name)
	}
	// Names that are no requester's do not.
	for _, bogus := range []string{replyQueue + ".bogus", replyQueue + "x", name + "x"} {
		if itQueueExists(t, c, bogus) {
			t.Fatalf("passive declare of %q succeeded", bogus)
		}
	}
	// Once the requester has gone, neither does its name.
	if err := req.conn.Close(); err != nil {
		t.Fatal(err)
	}
	itEventually(t, "the closed requester's name is gone", func() bool { return !itQueueExists(t, c, name) })
}

func TestDirectReplyRequesterGone(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	resp := drtNewResponder(t, ts, "rpc")
	c, _ := ts.channel(t)

	// The requester's channel cancels its reply consumer: a reply to the
	// old name is dropped (returned when mandatory) and a new consumer gets
	// a new name.
	req := drtNewRequester(t, ts, "first")
	req.request(t, "rpc", "1", "q1")
	first := itRecv(t, resp.requests)
	if err := req.ch.Cancel("first", false); err != nil {
		t.Fatal(err)
	}
	resp.reply(t, first, true, "too late")
	ret := itReturn(t, resp.returns)
	if ret.ReplyCode != amqp091.NoRoute || ret.Exchange != "" || ret.RoutingKey != first.ReplyTo || string(ret.Body) != "too late" {
		t.Fatalf("return: %d exchange %q key %q body %q", ret.ReplyCode, ret.Exchange, ret.RoutingKey, ret.Body)
	}
	replies := itConsume(t, req.ch, replyQueue, "second", true)
	req.request(t, "rpc", "2", "q2")
	second := itRecv(t, resp.requests)
	if second.ReplyTo == first.ReplyTo {
		t.Fatalf("a new reply consumer kept the name %q", first.ReplyTo)
	}
	resp.reply(t, second, true, "in time")
	resp.noReturn(t)
	if r := itRecv(t, replies); string(r.Body) != "in time" || r.ConsumerTag != "second" {
		t.Fatalf("reply: body %q consumer %q", r.Body, r.ConsumerTag)
	}

	// The requester's connection closes: replies are dropped, returned when
	// mandatory, confirmed either way.
	req.request(t, "rpc", "3", "q3")
	third := itRecv(t, resp.requests)
	if err := req.conn.Close(); err != nil {
		t.Fatal(err)
	}
	itEventually(t, "the closed requester's name is gone", func() bool { return !itQueueExists(t, c, third.ReplyTo) })
	resp.reply(t, third, false, "dropped")
	resp.noReturn(t)
	resp.reply(t, third, true, "returned")
	ret = itReturn(t, resp.returns)
	if ret.ReplyCode != amqp091.NoRoute || ret.ReplyText != "NO_ROUTE" || ret.RoutingKey != third.ReplyTo || string(ret.Body) != "returned" {
		t.Fatalf("return: %d %q key %q body %q", ret.ReplyCode, ret.ReplyText, ret.RoutingKey, ret.Body)
	}
	itConnUsable(t, resp.conn)
}

func TestDirectReplyInTransaction(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, rch := ts.channel(t)
	itDeclare(t, rch, "rpc")
	requests := itConsume(t, rch, "rpc", "", true)
	req := drtNewRequester(t, ts, "")
	// The request itself is published in a transaction: its reply_to is
	// rewritten when it is published.
	if err := req.ch.Tx(); err != nil {
		t.Fatal(err)
	}
	req.request(t, "rpc", "tx", "question")
	if err := req.ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	d := itRecv(t, requests)
	// The reply goes in a transaction too, and is delivered at commit.
	if err := rch.Tx(); err != nil {
		t.Fatal(err)
	}
	itPublish(t, rch, "", d.ReplyTo, false, amqp091.Publishing{CorrelationId: d.CorrelationId, Body: []byte("answer")})
	if err := rch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if r := itRecv(t, req.replies); string(r.Body) != "answer" || r.CorrelationId != "tx" {
		t.Fatalf("reply: body %q correlation %q", r.Body, r.CorrelationId)
	}
}

func TestDirectReplyVhostIsolation(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	if err := ts.b.CreateVhost(context.Background(), "v2"); err != nil {
		t.Fatal(err)
	}
	grantVhost(t, ts, "guest", "v2")
	resp := drtNewResponder(t, ts, "rpc")
	req := drtNewRequester(t, ts, "")
	req.request(t, "rpc", "1", "q")
	d := itRecv(t, resp.requests)

	v2conn, err := amqp091.Dial("amqp://guest:guest@" + ts.addr + "/v2")
	if err != nil {
		t.Fatalf("dial v2: %v", err)
	}
	defer v2conn.Close()
	if itQueueExistsIn(t, v2conn, d.ReplyTo, "v2") {
		t.Fatalf("the reply name %q of vhost / declares in v2", d.ReplyTo)
	}
	v2 := mustChannel(t, v2conn)
	confirms := itConfirmMode(t, v2, 1)
	returns := v2.NotifyReturn(make(chan amqp091.Return, 1))
	itPublish(t, v2, "", d.ReplyTo, true, amqp091.Publishing{Body: []byte("from v2")})
	itConfirms(t, confirms, 1, 1)
	if ret := itReturn(t, returns); ret.ReplyCode != amqp091.NoRoute || string(ret.Body) != "from v2" {
		t.Fatalf("return: %d body %q", ret.ReplyCode, ret.Body)
	}
	// The requester still gets a reply from its own vhost, and only that.
	resp.reply(t, d, true, "from /")
	resp.noReturn(t)
	if r := itRecv(t, req.replies); string(r.Body) != "from /" {
		t.Fatalf("reply %q, want the one from /", r.Body)
	}
}

// itQueueExistsIn is itQueueExists on a connection to vhost.
func itQueueExistsIn(t *testing.T, c *amqp091.Connection, name, vhost string) bool {
	t.Helper()
	ch := mustChannel(t, c)
	_, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	if err == nil {
		ch.Close()
		return true
	}
	itWantError(t, err, amqp091.NotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '%s'", name, vhost))
	return false
}
