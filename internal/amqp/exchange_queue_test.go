package amqp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Integration tests of exchanges and queues over real sockets with
// amqp091-go. The helpers here (prefixed "it") are shared by the other
// integration test files of the package.

// itWait bounds every wait for something the server sends.
const itWait = 10 * time.Second

// itPublish publishes p and fails the test if the client refuses.
func itPublish(t *testing.T, ch *amqp091.Channel, exchange, key string, mandatory bool, p amqp091.Publishing) {
	t.Helper()
	if err := ch.PublishWithContext(context.Background(), exchange, key, mandatory, false, p); err != nil {
		t.Fatalf("publish to %q with key %q: %v", exchange, key, err)
	}
}

// itPub publishes a transient message with body.
func itPub(t *testing.T, ch *amqp091.Channel, exchange, key, body string) {
	t.Helper()
	itPublish(t, ch, exchange, key, false, amqp091.Publishing{Body: []byte(body)})
}

// itDeclare declares a plain queue (not durable, not exclusive, not
// auto-delete).
func itDeclare(t *testing.T, ch *amqp091.Channel, name string) amqp091.Queue {
	t.Helper()
	q, err := ch.QueueDeclare(name, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("declare queue %q: %v", name, err)
	}
	return q
}

// itExchange declares a plain exchange of kind.
func itExchange(t *testing.T, ch *amqp091.Channel, name, kind string) {
	t.Helper()
	if err := ch.ExchangeDeclare(name, kind, false, false, false, false, nil); err != nil {
		t.Fatalf("declare %s exchange %q: %v", kind, name, err)
	}
}

// itBind binds queue to exchange with key and args.
func itBind(t *testing.T, ch *amqp091.Channel, queue, key, exchange string, args amqp091.Table) {
	t.Helper()
	if err := ch.QueueBind(queue, key, exchange, false, args); err != nil {
		t.Fatalf("bind %q to %q with %q: %v", queue, exchange, key, err)
	}
}

// itDrain takes every ready message of queue with basic.get (no-ack) and
// returns their bodies in order.
func itDrain(t *testing.T, ch *amqp091.Channel, queue string) []string {
	t.Helper()
	var out []string
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %q: %v", queue, err)
		}
		if !ok {
			return out
		}
		out = append(out, string(d.Body))
	}
}

// itMessages returns the ready message count of queue (passive declare).
func itMessages(t *testing.T, ch *amqp091.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare %q: %v", queue, err)
	}
	return q.Messages
}

// itRecv waits for the next delivery.
func itRecv(t *testing.T, msgs <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case d, ok := <-msgs:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(itWait):
		t.Fatalf("no delivery within %v", itWait)
	}
	return amqp091.Delivery{}
}

// itRecvN waits for n deliveries.
func itRecvN(t *testing.T, msgs <-chan amqp091.Delivery, n int) []amqp091.Delivery {
	t.Helper()
	out := make([]amqp091.Delivery, 0, n)
	for range n {
		out = append(out, itRecv(t, msgs))
	}
	return out
}

// itBodies returns the bodies of deliveries.
func itBodies(ds []amqp091.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Body)
	}
	return out
}

// itNames returns prefix1..prefixN.
func itNames(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// itConsume starts a consumer with an explicit tag.
func itConsume(t *testing.T, ch *amqp091.Channel, queue, tag string, autoAck bool) <-chan amqp091.Delivery {
	t.Helper()
	msgs, err := ch.Consume(queue, tag, autoAck, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %q: %v", queue, err)
	}
	return msgs
}

// itWantError checks that err is an AMQP error with code and, unless text
// is empty, exactly that reply text.
func itWantError(t *testing.T, err error, code int, text string) {
	t.Helper()
	e, ok := err.(*amqp091.Error)
	if !ok {
		t.Fatalf("got error %v (%T), want AMQP error %d", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("got AMQP error %d %q, want code %d", e.Code, e.Reason, code)
	}
	if text != "" && e.Reason != text {
		t.Fatalf("got reply text %q, want %q", e.Reason, text)
	}
}

// itWantErrorPrefix checks the code and the start of the reply text.
func itWantErrorPrefix(t *testing.T, err error, code int, prefix string) {
	t.Helper()
	itWantError(t, err, code, "")
	if r := err.(*amqp091.Error).Reason; !strings.HasPrefix(r, prefix) {
		t.Fatalf("got reply text %q, want it to start with %q", r, prefix)
	}
}

// itWaitClose waits for a close notification and checks it as itWantError
// does.
func itWaitClose(t *testing.T, c chan *amqp091.Error, code int, text string) {
	t.Helper()
	e := waitClose(t, c)
	if e == nil {
		t.Fatalf("closed without an error, want %d", code)
	}
	itWantError(t, e, code, text)
}

// itConnUsable checks that a connection still works after a channel error:
// a new channel declares a queue, publishes to it and gets the message.
func itConnUsable(t *testing.T, c *amqp091.Connection) {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("opening a channel after a channel error: %v", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("declare on a new channel: %v", err)
	}
	itPub(t, ch, "", q.Name, "still-works")
	if got := itDrain(t, ch, q.Name); !slices.Equal(got, []string{"still-works"}) {
		t.Fatalf("new channel got %q, want [still-works]", got)
	}
}

// itEventually polls cond until it holds, failing after itWait.
func itEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(itWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, itWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// itQueueExists reports whether a queue exists, with a passive declare on
// a channel of its own.
func itQueueExists(t *testing.T, c *amqp091.Connection, name string) bool {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclarePassive(name, false, false, false, false, nil)
	if err == nil {
		ch.Close()
		return true
	}
	// Another connection's exclusive queue exists but is locked (405),
	// until its owner's close has deleted it.
	var e *amqp091.Error
	if errors.As(err, &e) && e.Code == amqp091.ResourceLocked {
		return true
	}
	itWantError(t, err, amqp091.NotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", name))
	return false
}

// itExchangeExists is itQueueExists for exchanges.
func itExchangeExists(t *testing.T, c *amqp091.Connection, name string) bool {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	err = ch.ExchangeDeclarePassive(name, "", false, false, false, false, nil)
	if err == nil {
		ch.Close()
		return true
	}
	itWantError(t, err, amqp091.NotFound, fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", name))
	return false
}

// itSame fails unless got equals want.
func itSame(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func TestExchangeDeclareTypes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	for _, kind := range []string{"direct", "fanout", "topic", "headers"} {
		name := "x-" + kind
		itExchange(t, ch, name, kind)
		// Redeclaring with the same properties is fine.
		itExchange(t, ch, name, kind)
		if err := ch.ExchangeDeclarePassive(name, kind, false, false, false, false, nil); err != nil {
			t.Fatalf("passive declare of %s: %v", name, err)
		}
	}
	// Each type routes as it should: direct by key, fanout to all.
	q1, q2 := itDeclare(t, ch, "q1"), itDeclare(t, ch, "q2")
	itBind(t, ch, q1.Name, "k1", "x-direct", nil)
	itBind(t, ch, q2.Name, "k2", "x-direct", nil)
	itBind(t, ch, q1.Name, "ignored", "x-fanout", nil)
	itBind(t, ch, q2.Name, "also-ignored", "x-fanout", nil)
	itPub(t, ch, "x-direct", "k1", "d1")
	itPub(t, ch, "x-direct", "k2", "d2")
	itPub(t, ch, "x-direct", "k3", "d3")
	itPub(t, ch, "x-fanout", "whatever", "f1")
	itSame(t, "q1", itDrain(t, ch, "q1"), []string{"d1", "f1"})
	itSame(t, "q2", itDrain(t, ch, "q2"), []string{"d2", "f1"})

	// An unknown type is refused with 503 COMMAND_INVALID, a connection
	// error, as in RabbitMQ.
	// (RabbitMQ words it "unknown exchange type 'no-such-type'".)
	closed := c.NotifyClose(make(chan *amqp091.Error, 1))
	err := ch.ExchangeDeclare("x-bad", "no-such-type", false, false, false, false, nil)
	itWantErrorPrefix(t, err, amqp091.CommandInvalid, "COMMAND_INVALID - ")
	e := waitClose(t, closed)
	if e == nil || e.Code != amqp091.CommandInvalid || !strings.Contains(e.Reason, "exchange type 'no-such-type'") {
		t.Fatalf("connection closed with %v", e)
	}
	if !c.IsClosed() {
		t.Fatal("connection open after 503")
	}
}

func TestExchangePassiveMissing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	err := ch.ExchangeDeclarePassive("nope", "direct", false, false, false, false, nil)
	itWantError(t, err, amqp091.NotFound, "NOT_FOUND - no exchange 'nope' in vhost '/'")
	itWaitClose(t, closed, amqp091.NotFound, "NOT_FOUND - no exchange 'nope' in vhost '/'")
	if !ch.IsClosed() {
		t.Fatal("channel still open after 404")
	}
	if c.IsClosed() {
		t.Fatal("connection closed by a channel error")
	}
	itConnUsable(t, c)
}

func TestExchangeRedeclareInequivalent(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c := ts.dial(t)
	ch, _ := c.Channel()
	itExchange(t, ch, "x", "direct")
	cases := []struct {
		name                        string
		kind                        string
		durable, autoDelete, intern bool
		text                        string
	}{
		{"type", "fanout", false, false, false, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"},
		{"durable", "direct", true, false, false, "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current is 'false'"},
		{"auto_delete", "direct", false, true, false, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': received 'true' but current is 'false'"},
		{"internal", "direct", false, false, true, "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'x' in vhost '/': received 'true' but current is 'false'"},
	}
	for _, tc := range cases {
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		err = ch.ExchangeDeclare("x", tc.kind, tc.durable, tc.autoDelete, tc.intern, false, nil)
		if err == nil {
			t.Fatalf("%s: redeclare accepted", tc.name)
		}
		itWantError(t, err, amqp091.PreconditionFailed, tc.text)
	}
	// The exchange is unchanged and the connection usable.
	ch, _ = c.Channel()
	itExchange(t, ch, "x", "direct")
	itConnUsable(t, c)
}

func TestExchangeAutoDelete(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if err := ch.ExchangeDeclare("ad", "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// An auto-delete exchange that never had a binding stays.
	if !itExchangeExists(t, c, "ad") {
		t.Fatal("auto-delete exchange without bindings was deleted")
	}
	q1, q2 := itDeclare(t, ch, "ad-q1"), itDeclare(t, ch, "ad-q2")
	itBind(t, ch, q1.Name, "a", "ad", nil)
	itBind(t, ch, q2.Name, "b", "ad", nil)
	if err := ch.QueueUnbind(q1.Name, "a", "ad", nil); err != nil {
		t.Fatal(err)
	}
	if !itExchangeExists(t, c, "ad") {
		t.Fatal("auto-delete exchange deleted while it still has a binding")
	}
	itPub(t, ch, "ad", "b", "via-ad")
	itSame(t, "ad-q2", itDrain(t, ch, q2.Name), []string{"via-ad"})
	if err := ch.QueueUnbind(q2.Name, "b", "ad", nil); err != nil {
		t.Fatal(err)
	}
	if itExchangeExists(t, c, "ad") {
		t.Fatal("auto-delete exchange still there after its last binding went")
	}

	// Deleting the bound queue removes the last binding too.
	if err := ch.ExchangeDeclare("ad2", "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	itBind(t, ch, q1.Name, "", "ad2", nil)
	if _, err := ch.QueueDelete(q1.Name, false, false, false); err != nil {
		t.Fatal(err)
	}
	if itExchangeExists(t, c, "ad2") {
		t.Fatal("auto-delete exchange still there after its bound queue was deleted")
	}

	// The same for an auto-delete exchange that is the source of an
	// exchange-to-exchange binding.
	if err := ch.ExchangeDeclare("ad3", "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	itExchange(t, ch, "ad3-dest", "fanout")
	if err := ch.ExchangeBind("ad3-dest", "", "ad3", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeUnbind("ad3-dest", "", "ad3", false, nil); err != nil {
		t.Fatal(err)
	}
	if itExchangeExists(t, c, "ad3") {
		t.Fatal("auto-delete exchange still there after its last exchange binding went")
	}
	if !itExchangeExists(t, c, "ad3-dest") {
		t.Fatal("the destination exchange went too")
	}

	// A durable exchange can be declared and redeclared durable.
	if err := ch.ExchangeDeclare("dur", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("dur", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
}

func TestExchangeInternalAndExchangeBindings(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if err := ch.ExchangeDeclare("inner", "topic", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	itExchange(t, ch, "front", "direct")
	q := itDeclare(t, ch, "e2e-q")
	itBind(t, ch, q.Name, "orders.#", "inner", nil)
	if err := ch.ExchangeBind("inner", "orders.new", "front", false, nil); err != nil {
		t.Fatal(err)
	}
	itPub(t, ch, "front", "orders.new", "routed-through")
	itPub(t, ch, "front", "orders.old", "not-bound-on-front")
	itSame(t, "through internal", itDrain(t, ch, q.Name), []string{"routed-through"})

	// Publishing to the internal exchange itself is refused.
	pubCh, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := pubCh.NotifyClose(make(chan *amqp091.Error, 1))
	itPub(t, pubCh, "inner", "orders.new", "direct-to-internal")
	itWaitClose(t, closed, amqp091.AccessRefused, "ACCESS_REFUSED - cannot publish to internal exchange 'inner' in vhost '/'")
	itSame(t, "after refused publish", itDrain(t, ch, q.Name), nil)

	// exchange.unbind stops the routing; the mandatory message comes back.
	if err := ch.ExchangeUnbind("inner", "orders.new", "front", false, nil); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	itPublish(t, ch, "front", "orders.new", true, amqp091.Publishing{Body: []byte("after-unbind")})
	select {
	case r := <-returns:
		if r.ReplyCode != amqp091.NoRoute || string(r.Body) != "after-unbind" {
			t.Fatalf("return %d %q body %q", r.ReplyCode, r.ReplyText, r.Body)
		}
	case <-time.After(itWait):
		t.Fatal("no basic.return after exchange.unbind")
	}
	itSame(t, "after unbind", itDrain(t, ch, q.Name), nil)

	// Exchange-to-exchange chains and cycles: each exchange routes once.
	itExchange(t, ch, "fan-a", "fanout")
	itExchange(t, ch, "fan-b", "fanout")
	if err := ch.ExchangeBind("fan-b", "", "fan-a", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeBind("fan-a", "", "fan-b", false, nil); err != nil {
		t.Fatal(err)
	}
	qa, qb := itDeclare(t, ch, "cyc-a"), itDeclare(t, ch, "cyc-b")
	itBind(t, ch, qa.Name, "", "fan-a", nil)
	itBind(t, ch, qb.Name, "", "fan-b", nil)
	itPub(t, ch, "fan-a", "", "cycle")
	itSame(t, "cyc-a", itDrain(t, ch, qa.Name), []string{"cycle"})
	itSame(t, "cyc-b", itDrain(t, ch, qb.Name), []string{"cycle"})

	// Binding to a missing exchange is 404.
	bch, _ := c.Channel()
	err = bch.ExchangeBind("missing-dest", "", "fan-a", false, nil)
	itWantError(t, err, amqp091.NotFound, "NOT_FOUND - no exchange 'missing-dest' in vhost '/'")
	itConnUsable(t, c)
}

func TestExchangeAlternate(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	itExchange(t, ch, "ae", "fanout")
	aeq := itDeclare(t, ch, "ae-q")
	itBind(t, ch, aeq.Name, "", "ae", nil)
	if err := ch.ExchangeDeclare("main", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "ae"}); err != nil {
		t.Fatal(err)
	}
	mq := itDeclare(t, ch, "main-q")
	itBind(t, ch, mq.Name, "known", "main", nil)
	returns := ch.NotifyReturn(make(chan amqp091.Return, 4))
	itPublish(t, ch, "main", "known", true, amqp091.Publishing{Body: []byte("m1")})
	itPublish(t, ch, "main", "unknown", true, amqp091.Publishing{Body: []byte("m2")})
	itPub(t, ch, "main", "other", "m3")
	itSame(t, "main-q", itDrain(t, ch, mq.Name), []string{"m1"})
	itSame(t, "ae-q", itDrain(t, ch, aeq.Name), []string{"m2", "m3"})
	select {
	case r := <-returns:
		t.Fatalf("message routed to the alternate exchange was returned: %q", r.Body)
	default:
	}
	// Redeclaring without the argument (or with another) is inequivalent.
	ch2, _ := c.Channel()
	err := ch2.ExchangeDeclare("main", "direct", false, false, false, false, nil)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'main' in vhost '/': received none but current is the value 'ae' of type 'longstr'")
	ch3, _ := c.Channel()
	if err := ch3.ExchangeDeclare("main", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "ae"}); err != nil {
		t.Fatalf("equivalent redeclare: %v", err)
	}
	// An alternate exchange that does not exist just drops the message.
	if err := ch3.ExchangeDeclare("lost", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "no-such"}); err != nil {
		t.Fatal(err)
	}
	ret3 := ch3.NotifyReturn(make(chan amqp091.Return, 1))
	itPublish(t, ch3, "lost", "k", true, amqp091.Publishing{Body: []byte("lost-msg")})
	select {
	case r := <-ret3:
		if string(r.Body) != "lost-msg" || r.ReplyCode != amqp091.NoRoute {
			t.Fatalf("return %d %q", r.ReplyCode, r.Body)
		}
	case <-time.After(itWait):
		t.Fatal("no return for a message its missing alternate exchange could not take")
	}
}

func TestExchangeDeleteIfUnused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	itExchange(t, ch, "used", "direct")
	q := itDeclare(t, ch, "used-q")
	itBind(t, ch, q.Name, "k", "used", nil)
	err := ch.ExchangeDelete("used", true, false)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - exchange 'used' in vhost '/' in use")
	if !itExchangeExists(t, c, "used") {
		t.Fatal("exchange deleted despite if-unused")
	}
	itConnUsable(t, c)
	ch, _ = c.Channel()
	if err := ch.QueueUnbind(q.Name, "k", "used", nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete("used", true, false); err != nil {
		t.Fatalf("if-unused delete of an unbound exchange: %v", err)
	}
	if itExchangeExists(t, c, "used") {
		t.Fatal("exchange still there")
	}
	// Without if-unused a bound exchange goes, with its bindings.
	itExchange(t, ch, "bound", "fanout")
	itBind(t, ch, q.Name, "", "bound", nil)
	if err := ch.ExchangeDelete("bound", false, false); err != nil {
		t.Fatal(err)
	}
	if itExchangeExists(t, c, "bound") {
		t.Fatal("exchange still there")
	}
	// Deleting a missing exchange succeeds.
	if err := ch.ExchangeDelete("never-was", false, false); err != nil {
		t.Fatalf("deleting a missing exchange: %v", err)
	}
}

func TestExchangePredeclared(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	kinds := map[string]string{"amq.direct": "direct", "amq.fanout": "fanout", "amq.topic": "topic", "amq.headers": "headers", "amq.match": "headers"}
	for name, kind := range kinds {
		if err := ch.ExchangeDeclarePassive(name, kind, true, false, false, false, nil); err != nil {
			t.Fatalf("passive %s: %v", name, err)
		}
		// An equivalent declaration of a predeclared exchange is allowed.
		if err := ch.ExchangeDeclare(name, kind, true, false, false, false, nil); err != nil {
			t.Fatalf("declare %s: %v", name, err)
		}
	}
	q := itDeclare(t, ch, "pre-q")
	itBind(t, ch, q.Name, "d", "amq.direct", nil)
	itBind(t, ch, q.Name, "unused", "amq.fanout", nil)
	itBind(t, ch, q.Name, "t.*", "amq.topic", nil)
	itBind(t, ch, q.Name, "", "amq.headers", amqp091.Table{"h": "1"})
	itBind(t, ch, q.Name, "", "amq.match", amqp091.Table{"m": "1"})
	itPub(t, ch, "amq.direct", "d", "direct")
	itPub(t, ch, "amq.direct", "e", "direct-miss")
	itPub(t, ch, "amq.fanout", "anything", "fanout")
	itPub(t, ch, "amq.topic", "t.x", "topic")
	itPub(t, ch, "amq.topic", "t.x.y", "topic-miss")
	itPublish(t, ch, "amq.headers", "", false, amqp091.Publishing{Headers: amqp091.Table{"h": "1"}, Body: []byte("headers")})
	itPublish(t, ch, "amq.match", "", false, amqp091.Publishing{Headers: amqp091.Table{"m": "1"}, Body: []byte("match")})
	itPublish(t, ch, "amq.match", "", false, amqp091.Publishing{Headers: amqp091.Table{"m": "2"}, Body: []byte("match-miss")})
	// The default exchange routes by queue name.
	itPub(t, ch, "", q.Name, "default")
	itSame(t, "pre-q", itDrain(t, ch, q.Name), []string{"direct", "fanout", "topic", "headers", "match", "default"})

	// The type of a predeclared exchange is checked on redeclaration.
	xch, _ := c.Channel()
	err := xch.ExchangeDeclare("amq.fanout", "direct", true, false, false, false, nil)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.fanout' in vhost '/': received 'direct' but current is 'fanout'")

	// New amq.* names are reserved.
	xch, _ = c.Channel()
	err = xch.ExchangeDeclare("amq.x", "direct", false, false, false, false, nil)
	itWantError(t, err, amqp091.AccessRefused, "ACCESS_REFUSED - exchange name 'amq.x' contains reserved prefix 'amq.*'")
	if itExchangeExists(t, c, "amq.x") {
		t.Fatal("amq.x was created")
	}

	// The predeclared exchanges cannot be deleted.
	xch, _ = c.Channel()
	err = xch.ExchangeDelete("amq.direct", false, false)
	itWantError(t, err, amqp091.AccessRefused, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed")
	if !itExchangeExists(t, c, "amq.direct") {
		t.Fatal("amq.direct is gone")
	}

	// Nor can the default exchange be declared, deleted or bound.
	xch, _ = c.Channel()
	err = xch.ExchangeDeclare("", "direct", true, false, false, false, nil)
	itWantError(t, err, amqp091.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")
	xch, _ = c.Channel()
	err = xch.QueueBind(q.Name, "k", "", false, nil)
	itWantError(t, err, amqp091.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")
	itConnUsable(t, c)
}

func TestExchangeTopicRouting(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	itExchange(t, ch, "topics", "topic")
	bindings := map[string]string{
		"star-mid":   "a.*.c",
		"a-hash":     "a.#",
		"hash-c":     "#.c",
		"a-hash-c":   "a.#.c",
		"hash":       "#",
		"star":       "*",
		"empty-word": "a..b",
		"literal":    "a.b.c",
		"hash-hash":  "#.#",
		"star-hash":  "*.#",
	}
	for q, key := range bindings {
		itDeclare(t, ch, q)
		itBind(t, ch, q, key, "topics", nil)
	}
	keys := []string{"a.b.c", "a.c", "a", "c", "a..c", "", "b.c.d", "a..b", "a.b.b.c", "a.b"}
	for _, k := range keys {
		itPub(t, ch, "topics", k, "key:"+k)
	}
	want := map[string][]string{
		"star-mid":   {"key:a.b.c", "key:a..c"},
		"a-hash":     {"key:a.b.c", "key:a.c", "key:a", "key:a..c", "key:a..b", "key:a.b.b.c", "key:a.b"},
		"hash-c":     {"key:a.b.c", "key:a.c", "key:c", "key:a..c", "key:a.b.b.c"},
		"a-hash-c":   {"key:a.b.c", "key:a.c", "key:a..c", "key:a.b.b.c"},
		"hash":       {"key:a.b.c", "key:a.c", "key:a", "key:c", "key:a..c", "key:", "key:b.c.d", "key:a..b", "key:a.b.b.c", "key:a.b"},
		"star":       {"key:a", "key:c"},
		"empty-word": {"key:a..b"},
		"literal":    {"key:a.b.c"},
		"hash-hash":  {"key:a.b.c", "key:a.c", "key:a", "key:c", "key:a..c", "key:", "key:b.c.d", "key:a..b", "key:a.b.b.c", "key:a.b"},
		"star-hash":  {"key:a.b.c", "key:a.c", "key:a", "key:c", "key:a..c", "key:b.c.d", "key:a..b", "key:a.b.b.c", "key:a.b"},
	}
	for q, w := range want {
		itSame(t, "queue "+q+" bound with "+bindings[q], itDrain(t, ch, q), w)
	}

	// Unbinding takes one binding out of the index and leaves the others,
	// also those sharing a prefix or the same key.
	itBind(t, ch, "literal", "a.#", "topics", nil)
	for q, key := range map[string]string{"a-hash": "a.#", "star-mid": "a.*.c", "hash": "#"} {
		if err := ch.QueueUnbind(q, key, "topics", nil); err != nil {
			t.Fatal(err)
		}
	}
	itPub(t, ch, "topics", "a.b.c", "again")
	want = map[string][]string{
		"star-mid": nil, "a-hash": nil, "hash": nil,
		"hash-c": {"again"}, "a-hash-c": {"again"}, "literal": {"again"}, "hash-hash": {"again"}, "star-hash": {"again"},
		"star": nil, "empty-word": nil,
	}
	for q, w := range want {
		itSame(t, "after unbinding, queue "+q, itDrain(t, ch, q), w)
	}
}

func TestExchangeHeadersRouting(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	itExchange(t, ch, "hx", "headers")
	binds := map[string]amqp091.Table{
		"all":         {"x-match": "all", "a": int32(1), "b": "x"},
		"any":         {"x-match": "any", "a": int32(1), "b": "x"},
		"default-all": {"a": int32(1)},
		"all-ignx":    {"x-match": "all", "a": int32(1), "x-foo": "bar"},
		"all-with-x":  {"x-match": "all-with-x", "a": int32(1), "x-foo": "bar"},
		"any-with-x":  {"x-match": "any-with-x", "x-foo": "bar"},
		"any-ignx":    {"x-match": "any", "x-foo": "bar"},
		"all-empty":   {"x-match": "all"},
	}
	for q, args := range binds {
		itDeclare(t, ch, q)
		itBind(t, ch, q, "", "hx", args)
	}
	msgs := []struct {
		body    string
		headers amqp091.Table
	}{
		{"m1", amqp091.Table{"a": int32(1), "b": "x"}},
		{"m2", amqp091.Table{"a": int32(1)}},
		{"m3", amqp091.Table{"b": "x", "x-foo": "bar"}},
		{"m4", amqp091.Table{"a": int32(1), "x-foo": "bar"}},
		{"m5", amqp091.Table{"c": int32(1)}},
		{"m6", amqp091.Table{"a": int32(2), "b": "y"}},
		{"m7", nil},
	}
	for _, m := range msgs {
		itPublish(t, ch, "hx", "ignored", false, amqp091.Publishing{Headers: m.headers, Body: []byte(m.body)})
	}
	want := map[string][]string{
		"all":         {"m1"},
		"any":         {"m1", "m2", "m3", "m4"},
		"default-all": {"m1", "m2", "m4"},
		"all-ignx":    {"m1", "m2", "m4"},
		"all-with-x":  {"m4"},
		"any-with-x":  {"m3", "m4"},
		"any-ignx":    nil,
		"all-empty":   {"m1", "m2", "m3", "m4", "m5", "m6", "m7"},
	}
	for q, w := range want {
		itSame(t, "headers queue "+q, itDrain(t, ch, q), w)
	}
	// Unbinding needs the same arguments: other arguments remove nothing.
	if err := ch.QueueUnbind("any", "", "hx", amqp091.Table{"x-match": "any", "a": int32(1)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueUnbind("all", "", "hx", binds["all"]); err != nil {
		t.Fatal(err)
	}
	itPublish(t, ch, "hx", "", false, amqp091.Publishing{Headers: amqp091.Table{"a": int32(1), "b": "x"}, Body: []byte("after-unbind")})
	itSame(t, "all after unbind", itDrain(t, ch, "all"), nil)
	itSame(t, "any still bound", itDrain(t, ch, "any"), []string{"after-unbind"})

	// An invalid x-match is refused when binding.
	bch, _ := c.Channel()
	err := bch.QueueBind("all", "", "hx", false, amqp091.Table{"x-match": "some"})
	itWantErrorPrefix(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - Invalid x-match field value")
	itConnUsable(t, c)
}

func TestQueueDeclare(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)

	// Server-named queues.
	q1, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	q2, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(q1.Name, "amq.gen-") || len(q1.Name) <= len("amq.gen-") || q1.Name == q2.Name {
		t.Fatalf("server-named queues %q and %q", q1.Name, q2.Name)
	}
	itPub(t, ch, "", q1.Name, "to-generated")
	itSame(t, "generated queue", itDrain(t, ch, q1.Name), []string{"to-generated"})

	// declare-ok counts ready messages and consumers.
	q := itDeclare(t, ch, "counted")
	if q.Messages != 0 || q.Consumers != 0 {
		t.Fatalf("new queue: %d messages, %d consumers", q.Messages, q.Consumers)
	}
	for i := range 3 {
		itPub(t, ch, "", "counted", fmt.Sprint(i))
	}
	q = itDeclare(t, ch, "counted")
	if q.Messages != 3 || q.Consumers != 0 {
		t.Fatalf("after 3 publishes: %d messages, %d consumers; want 3, 0", q.Messages, q.Consumers)
	}
	cch, _ := c.Channel()
	if err := cch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	itConsume(t, cch, "counted", "c1", false)
	itConsume(t, cch, "counted", "c2", false)
	q = itDeclare(t, ch, "counted")
	if q.Messages != 1 || q.Consumers != 2 {
		t.Fatalf("with 2 consumers of prefetch 1: %d messages, %d consumers; want 1, 2", q.Messages, q.Consumers)
	}

	// Redeclaring with another durable flag is 406.
	dch, _ := c.Channel()
	_, err = dch.QueueDeclare("counted", true, false, false, false, nil)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'counted' in vhost '/': received 'true' but current is 'false'")
	dch, _ = c.Channel()
	_, err = dch.QueueDeclare("counted", false, true, false, false, nil)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'counted' in vhost '/': received 'true' but current is 'false'")
	dch, _ = c.Channel()
	_, err = dch.QueueDeclare("counted", false, false, false, false, amqp091.Table{"x-max-length": int32(10)})
	itWantErrorPrefix(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'counted' in vhost '/'")

	// Reserved names.
	dch, _ = c.Channel()
	_, err = dch.QueueDeclare("amq.mine", false, false, false, false, nil)
	itWantError(t, err, amqp091.AccessRefused, "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'")

	// Passive declaration of a missing queue.
	dch, _ = c.Channel()
	_, err = dch.QueueDeclarePassive("missing", false, false, false, false, nil)
	itWantError(t, err, amqp091.NotFound, "NOT_FOUND - no queue 'missing' in vhost '/'")

	itConnUsable(t, c)
	if q := itDeclare(t, ch, "counted"); q.Messages != 1 || q.Consumers != 2 {
		t.Fatalf("after the errors: %d messages, %d consumers", q.Messages, q.Consumers)
	}
}

func TestQueueExclusive(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	owner, och := ts.channel(t)
	if _, err := och.QueueDeclare("excl", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	itPub(t, och, "", "excl", "mine")

	other := ts.dial(t)
	locked := "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'excl' in vhost '/'"
	uses := map[string]func(ch *amqp091.Channel) error{
		"passive declare": func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclarePassive("excl", false, false, true, false, nil)
			return err
		},
		"declare exclusive": func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclare("excl", false, false, true, false, nil)
			return err
		},
		"declare shared": func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclare("excl", false, false, false, false, nil)
			return err
		},
		"consume": func(ch *amqp091.Channel) error {
			_, err := ch.Consume("excl", "x", false, false, false, false, nil)
			return err
		},
		"get": func(ch *amqp091.Channel) error {
			_, _, err := ch.Get("excl", false)
			return err
		},
		"bind": func(ch *amqp091.Channel) error { return ch.QueueBind("excl", "k", "amq.direct", false, nil) },
		"purge": func(ch *amqp091.Channel) error {
			_, err := ch.QueuePurge("excl", false)
			return err
		},
		"delete": func(ch *amqp091.Channel) error {
			_, err := ch.QueueDelete("excl", false, false, false)
			return err
		},
	}
	for name, use := range uses {
		ch, err := other.Channel()
		if err != nil {
			t.Fatal(err)
		}
		err = use(ch)
		if err == nil {
			t.Fatalf("%s of another connection's exclusive queue succeeded", name)
		}
		itWantErrorPrefix(t, err, amqp091.ResourceLocked, locked)
	}
	itConnUsable(t, other)

	// Publishing to it is allowed to anyone.
	pch, _ := other.Channel()
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	conf := pch.NotifyPublish(make(chan amqp091.Confirmation, 1))
	itPub(t, pch, "", "excl", "from-other")
	itConfirms(t, conf, 1, 1)

	// The owner still has its queue and messages, and uses it from any of
	// its channels.
	och2, _ := owner.Channel()
	itSame(t, "owner's queue", itDrain(t, och2, "excl"), []string{"mine", "from-other"})

	// Closing the owner deletes the queue.
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	itEventually(t, "exclusive queue deleted with its connection", func() bool { return !itQueueExists(t, other, "excl") })
	// The name is free again.
	ch, _ := other.Channel()
	if _, err := ch.QueueDeclare("excl", false, false, true, false, nil); err != nil {
		t.Fatalf("redeclaring the name of a deleted exclusive queue: %v", err)
	}
}

func TestQueueAutoDelete(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("ad-q", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// An auto-delete queue that never had a consumer stays.
	itPub(t, ch, "", "ad-q", "one")
	if !itQueueExists(t, c, "ad-q") {
		t.Fatal("auto-delete queue without consumers was deleted")
	}
	cch, _ := c.Channel()
	m1 := itConsume(t, cch, "ad-q", "first", true)
	itConsume(t, cch, "ad-q", "second", true)
	if d := itRecv(t, m1); string(d.Body) != "one" {
		t.Fatalf("got %q", d.Body)
	}
	if err := cch.Cancel("first", false); err != nil {
		t.Fatal(err)
	}
	if !itQueueExists(t, c, "ad-q") {
		t.Fatal("auto-delete queue deleted while a consumer remains")
	}
	if err := cch.Cancel("second", false); err != nil {
		t.Fatal(err)
	}
	if itQueueExists(t, c, "ad-q") {
		t.Fatal("auto-delete queue still there after its last consumer was cancelled")
	}

	// Closing the consumer's channel counts as cancelling.
	if _, err := ch.QueueDeclare("ad-q2", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	cch2, _ := c.Channel()
	itConsume(t, cch2, "ad-q2", "only", false)
	if err := cch2.Close(); err != nil {
		t.Fatal(err)
	}
	if itQueueExists(t, c, "ad-q2") {
		t.Fatal("auto-delete queue still there after its consumer's channel closed")
	}
}

func TestQueueBindUnbindPurgeDelete(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	itExchange(t, ch, "bx", "direct")
	q := itDeclare(t, ch, "bq")
	itBind(t, ch, q.Name, "k1", "bx", nil)
	itBind(t, ch, q.Name, "k2", "bx", nil)
	itBind(t, ch, q.Name, "k1", "bx", nil) // binding twice is binding once
	itPub(t, ch, "bx", "k1", "a")
	itPub(t, ch, "bx", "k2", "b")
	itPub(t, ch, "bx", "k3", "c")
	itSame(t, "bound twice", itDrain(t, ch, q.Name), []string{"a", "b"})
	if err := ch.QueueUnbind(q.Name, "k1", "bx", nil); err != nil {
		t.Fatal(err)
	}
	// Unbinding what is not bound succeeds.
	if err := ch.QueueUnbind(q.Name, "nope", "bx", nil); err != nil {
		t.Fatalf("unbinding a missing binding: %v", err)
	}
	itPub(t, ch, "bx", "k1", "d")
	itPub(t, ch, "bx", "k2", "e")
	itSame(t, "after unbind", itDrain(t, ch, q.Name), []string{"e"})

	// Binding to missing things is 404.
	bch, _ := c.Channel()
	err := bch.QueueBind("no-queue", "k", "bx", false, nil)
	itWantError(t, err, amqp091.NotFound, "NOT_FOUND - no queue 'no-queue' in vhost '/'")
	bch, _ = c.Channel()
	err = bch.QueueBind(q.Name, "k", "no-exchange", false, nil)
	itWantError(t, err, amqp091.NotFound, "NOT_FOUND - no exchange 'no-exchange' in vhost '/'")

	// Purge returns the count of ready messages and removes them.
	for i := range 5 {
		itPub(t, ch, "", q.Name, fmt.Sprint(i))
	}
	n, err := ch.QueuePurge(q.Name, false)
	if err != nil || n != 5 {
		t.Fatalf("purge: %d, %v; want 5", n, err)
	}
	if n := itMessages(t, ch, q.Name); n != 0 {
		t.Fatalf("%d messages after purge", n)
	}
	// Unacknowledged messages are not purged.
	itPub(t, ch, "", q.Name, "held")
	itPub(t, ch, "", q.Name, "ready")
	if d, ok, err := ch.Get(q.Name, false); err != nil || !ok || string(d.Body) != "held" {
		t.Fatalf("get: %q %v %v", d.Body, ok, err)
	}
	if n, err := ch.QueuePurge(q.Name, false); err != nil || n != 1 {
		t.Fatalf("purge with one unacked: %d, %v; want 1", n, err)
	}

	// delete if-unused refuses a queue with a consumer.
	dq := itDeclare(t, ch, "dq")
	itPub(t, ch, "", "dq", "x1")
	itPub(t, ch, "", "dq", "x2")
	cch, _ := c.Channel()
	if err := cch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs := itConsume(t, cch, dq.Name, "holder", false)
	first := itRecv(t, msgs)
	xch, _ := c.Channel()
	_, err = xch.QueueDelete(dq.Name, true, false, false)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - queue 'dq' in vhost '/' in use")
	if err := cch.Cancel("holder", false); err != nil {
		t.Fatal(err)
	}
	if err := first.Ack(false); err != nil {
		t.Fatal(err)
	}
	// delete if-empty refuses a queue with messages.
	xch, _ = c.Channel()
	_, err = xch.QueueDelete(dq.Name, false, true, false)
	itWantError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - queue 'dq' in vhost '/' not empty")
	if !itQueueExists(t, c, dq.Name) {
		t.Fatal("queue deleted despite if-empty")
	}
	// delete-ok reports the messages deleted.
	n, err = ch.QueueDelete(dq.Name, true, false, false)
	if err != nil || n != 1 {
		t.Fatalf("delete: %d, %v; want 1", n, err)
	}
	if itQueueExists(t, c, dq.Name) {
		t.Fatal("deleted queue still there")
	}
	// if-empty on an empty queue, and deleting a missing queue, succeed.
	e := itDeclare(t, ch, "empty")
	if n, err := ch.QueueDelete(e.Name, true, true, false); err != nil || n != 0 {
		t.Fatalf("delete empty: %d, %v", n, err)
	}
	if n, err := ch.QueueDelete("never-was", false, false, false); err != nil || n != 0 {
		t.Fatalf("delete missing: %d, %v", n, err)
	}
	// The bindings of a deleted queue go with it: a recreated queue of the
	// same name gets nothing through them.
	itDeclare(t, ch, "bq2")
	itBind(t, ch, "bq2", "k9", "bx", nil)
	if _, err := ch.QueueDelete("bq2", false, false, false); err != nil {
		t.Fatal(err)
	}
	itDeclare(t, ch, "bq2")
	itPub(t, ch, "bx", "k9", "stale-binding")
	itSame(t, "recreated queue", itDrain(t, ch, "bq2"), nil)
	itConnUsable(t, c)
}

func TestQueueEmptyNameMeansLastDeclared(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	fresh, _ := c.Channel()
	_, _, err := fresh.Get("", true)
	itWantError(t, err, amqp091.NotFound, "NOT_FOUND - no previously declared queue")

	itDeclare(t, ch, "first")
	itDeclare(t, ch, "last")
	itPub(t, ch, "", "last", "to-last")
	itPub(t, ch, "", "first", "to-first")
	d, ok, err := ch.Get("", true)
	if err != nil || !ok || string(d.Body) != "to-last" {
		t.Fatalf("get from \"\": %q ok=%v err=%v", d.Body, ok, err)
	}
	// A passive declaration also counts.
	if _, err := ch.QueueDeclarePassive("first", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := ch.QueuePurge("", false); err != nil || n != 1 {
		t.Fatalf("purge \"\": %d %v", n, err)
	}
	if n := itMessages(t, ch, "first"); n != 0 {
		t.Fatalf("first has %d", n)
	}
	// queue.bind with both names empty binds the last queue with its name
	// as the key.
	if err := ch.QueueBind("", "", "amq.direct", false, nil); err != nil {
		t.Fatal(err)
	}
	itPub(t, ch, "amq.direct", "first", "via-bind")
	itSame(t, "bound by \"\"", itDrain(t, ch, "first"), []string{"via-bind"})
	msgs := itConsume(t, ch, "", "c", true)
	itPub(t, ch, "", "first", "consumed")
	if d := itRecv(t, msgs); string(d.Body) != "consumed" {
		t.Fatalf("consume \"\": %q", d.Body)
	}
}
