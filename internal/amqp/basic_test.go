package amqp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// Integration tests of the basic class over real sockets with amqp091-go
// (and, where amqp091-go cannot say it, a minimal raw client).

// itUnacked returns the number of deliveries of queue not yet settled, as
// the broker counts them.
func itUnacked(t *testing.T, ts *testServer, queue string) int {
	t.Helper()
	q, err := ts.b.Queue("/", "", queue)
	if err != nil {
		t.Fatalf("broker queue %q: %v", queue, err)
	}
	return q.Unacked()
}

// itReturn waits for a basic.return.
func itReturn(t *testing.T, returns chan amqp091.Return) amqp091.Return {
	t.Helper()
	select {
	case r := <-returns:
		return r
	case <-time.After(itWait):
		t.Fatal("no basic.return")
	}
	return amqp091.Return{}
}

func TestBasicMandatoryReturn(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	returns := ch.NotifyReturn(make(chan amqp091.Return, 4))
	itExchange(t, ch, "nowhere", "direct")
	// Not mandatory: dropped silently, so the first return is the
	// mandatory one after it.
	itPub(t, ch, "nowhere", "k", "silent")
	itPublish(t, ch, "nowhere", "k", true, amqp091.Publishing{
		ContentType: "text/plain", Headers: amqp091.Table{"h": "v"}, MessageId: "id-1", Body: []byte("loud"),
	})
	itPublish(t, ch, "", "no-such-queue", true, amqp091.Publishing{Body: []byte("to-default")})
	r := itReturn(t, returns)
	if r.ReplyCode != amqp091.NoRoute || r.ReplyText != "NO_ROUTE" || r.Exchange != "nowhere" || r.RoutingKey != "k" {
		t.Fatalf("return: %d %q exchange %q key %q", r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
	}
	if string(r.Body) != "loud" || r.ContentType != "text/plain" || r.MessageId != "id-1" || r.Headers["h"] != "v" {
		t.Fatalf("returned message: body %q content-type %q message-id %q headers %v", r.Body, r.ContentType, r.MessageId, r.Headers)
	}
	r = itReturn(t, returns)
	if r.ReplyCode != amqp091.NoRoute || r.Exchange != "" || r.RoutingKey != "no-such-queue" || string(r.Body) != "to-default" {
		t.Fatalf("second return: %d exchange %q key %q body %q", r.ReplyCode, r.Exchange, r.RoutingKey, r.Body)
	}
	// A mandatory message that is routed is not returned.
	q := itDeclare(t, ch, "routed")
	itPublish(t, ch, "", q.Name, true, amqp091.Publishing{Body: []byte("delivered")})
	itSame(t, "routed", itDrain(t, ch, q.Name), []string{"delivered"})
	select {
	case r := <-returns:
		t.Fatalf("unexpected return of %q", r.Body)
	default:
	}
}

func TestBasicConsumeNoAck(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	q := itDeclare(t, ch, "noack")
	msgs := itConsume(t, ch, q.Name, "na", true)
	for _, b := range itNames("m", 1, 5) {
		itPub(t, ch, "", q.Name, b)
	}
	ds := itRecvN(t, msgs, 5)
	itSame(t, "no-ack deliveries", itBodies(ds), itNames("m", 1, 5))
	for i, d := range ds {
		if d.DeliveryTag != uint64(i+1) || d.Redelivered || d.ConsumerTag != "na" || d.Exchange != "" || d.RoutingKey != q.Name {
			t.Fatalf("delivery %d: tag %d redelivered %v consumer %q exchange %q key %q", i, d.DeliveryTag, d.Redelivered, d.ConsumerTag, d.Exchange, d.RoutingKey)
		}
	}
	if n := itMessages(t, ch, q.Name); n != 0 {
		t.Fatalf("%d messages left", n)
	}
	if n := itUnacked(t, ts, q.Name); n != 0 {
		t.Fatalf("%d unacked with no-ack", n)
	}
	// Acknowledging a no-ack delivery is an unknown tag: 406.
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.Ack(ds[0].DeliveryTag, false); err != nil {
		t.Fatal(err)
	}
	itWaitClose(t, closed, amqp091.PreconditionFailed, "PRECONDITION_FAILED - unknown delivery tag 1")
	itConnUsable(t, c)
}

func TestBasicExclusiveConsumer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	q := itDeclare(t, ch, "exq")
	msgs, err := ch.Consume(q.Name, "owner", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	refused := "ACCESS_REFUSED - queue 'exq' in vhost '/' in exclusive use"
	other := ts.dial(t)
	och, _ := other.Channel()
	_, err = och.Consume(q.Name, "intruder", true, false, false, false, nil)
	itWantError(t, err, amqp091.AccessRefused, refused)
	och, _ = other.Channel()
	_, err = och.Consume(q.Name, "intruder2", true, true, false, false, nil)
	itWantError(t, err, amqp091.AccessRefused, refused)
	// Even on the owner's connection.
	och, _ = c.Channel()
	_, err = och.Consume(q.Name, "sibling", true, false, false, false, nil)
	itWantError(t, err, amqp091.AccessRefused, refused)
	itConnUsable(t, other)
	itConnUsable(t, c)

	// The exclusive consumer gets everything.
	itPub(t, ch, "", q.Name, "only-for-owner")
	if d := itRecv(t, msgs); string(d.Body) != "only-for-owner" {
		t.Fatalf("got %q", d.Body)
	}
	// Once it is cancelled, others may consume.
	if err := ch.Cancel("owner", false); err != nil {
		t.Fatal(err)
	}
	och, _ = other.Channel()
	m2 := itConsume(t, och, q.Name, "next", true)
	itPub(t, ch, "", q.Name, "for-next")
	if d := itRecv(t, m2); string(d.Body) != "for-next" {
		t.Fatalf("got %q", d.Body)
	}
	// And an exclusive consumer is refused while another consumer exists.
	xch, _ := c.Channel()
	_, err = xch.Consume(q.Name, "late-exclusive", true, true, false, false, nil)
	itWantError(t, err, amqp091.AccessRefused, refused)
}

// itRaw is a minimal AMQP client speaking frames directly, for what
// amqp091-go hides (it always names its consumers itself).
type itRaw struct {
	t  *testing.T
	nc net.Conn
	fr *wire.FrameReader
}

// itRawMsg is a method read by itRaw, with its content if it has one.
type itRawMsg struct {
	channel uint16
	m       wire.Method
	props   wire.Properties
	body    []byte
}

func itRawDial(t *testing.T, addr string) *itRaw {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &itRaw{t: t, nc: nc, fr: wire.NewFrameReader(nc, 131072)}
	if _, err := nc.Write([]byte(wire.ProtocolHeader)); err != nil {
		t.Fatal(err)
	}
	itRawExpect[*wire.ConnectionStart](r)
	r.send(0, &wire.ConnectionStartOk{
		ClientProperties: wire.Table{"product": "itRaw", "capabilities": wire.Table{"consumer_cancel_notify": true}},
		Mechanism:        "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
	})
	itRawExpect[*wire.ConnectionTune](r)
	r.send(0, &wire.ConnectionTuneOk{ChannelMax: 16, FrameMax: 131072})
	r.send(0, &wire.ConnectionOpen{VirtualHost: "/"})
	itRawExpect[*wire.ConnectionOpenOk](r)
	return r
}

func (r *itRaw) send(channel uint16, m wire.Method) {
	r.t.Helper()
	b, err := wire.AppendMethodFrame(nil, channel, m, 131072)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *itRaw) sendMessage(channel uint16, m wire.Method, props *wire.Properties, body []byte) {
	r.t.Helper()
	b, err := wire.AppendMessage(nil, channel, m, props, body, 131072)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// next reads the next method, skipping heartbeats, with its content.
func (r *itRaw) next() itRawMsg {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(itWait))
	frame := func() wire.Frame {
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				r.t.Fatalf("raw client read: %v", err)
			}
			if f.Type != wire.FrameHeartbeat {
				return f
			}
		}
	}
	f := frame()
	if f.Type != wire.FrameMethod {
		r.t.Fatalf("frame type %d, want a method", f.Type)
	}
	m, err := wire.DecodeMethod(f.Payload)
	if err != nil {
		r.t.Fatal(err)
	}
	out := itRawMsg{channel: f.Channel, m: m}
	if !m.HasContent() {
		return out
	}
	h := frame()
	ch, err := wire.DecodeContentHeader(h.Payload)
	if err != nil {
		r.t.Fatal(err)
	}
	out.props, out.body = ch.Properties, []byte{}
	for uint64(len(out.body)) < ch.BodySize {
		b := frame()
		out.body = append(out.body, b.Payload...)
	}
	return out
}

func itRawExpect[T wire.Method](r *itRaw) T {
	r.t.Helper()
	got := r.next()
	m, ok := got.m.(T)
	if !ok {
		var want T
		r.t.Fatalf("raw client got %s (%+v), want %T", got.m.Name(), got.m, want)
	}
	return m
}

func TestBasicServerGeneratedConsumerTag(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := itRawDial(t, ts.addr)
	r.send(1, &wire.ChannelOpen{})
	itRawExpect[*wire.ChannelOpenOk](r)
	r.send(1, &wire.QueueDeclare{Queue: "raw-q"})
	if ok := itRawExpect[*wire.QueueDeclareOk](r); ok.Queue != "raw-q" {
		t.Fatalf("declared %q", ok.Queue)
	}
	r.send(1, &wire.BasicConsume{Queue: "raw-q", NoAck: true})
	tag1 := itRawExpect[*wire.BasicConsumeOk](r).ConsumerTag
	r.send(1, &wire.BasicConsume{Queue: "raw-q", NoAck: true})
	tag2 := itRawExpect[*wire.BasicConsumeOk](r).ConsumerTag
	for _, tag := range []string{tag1, tag2} {
		if !strings.HasPrefix(tag, "amq.ctag-") || len(tag) <= len("amq.ctag-") {
			t.Fatalf("server-generated tag %q", tag)
		}
	}
	if tag1 == tag2 {
		t.Fatalf("two consumers got the same tag %q", tag1)
	}
	// Deliveries name the generated tags, round-robin.
	r.sendMessage(1, &wire.BasicPublish{RoutingKey: "raw-q"}, &wire.Properties{}, []byte("first"))
	r.sendMessage(1, &wire.BasicPublish{RoutingKey: "raw-q"}, &wire.Properties{}, []byte("second"))
	var got []string
	for range 2 {
		msg := r.next()
		d, ok := msg.m.(*wire.BasicDeliver)
		if !ok {
			t.Fatalf("got %s, want basic.deliver", msg.m.Name())
		}
		got = append(got, d.ConsumerTag+"="+string(msg.body))
	}
	itSame(t, "deliveries", got, []string{tag1 + "=first", tag2 + "=second"})
	// Cancelling by the generated tag answers with it.
	r.send(1, &wire.BasicCancel{ConsumerTag: tag1})
	if ok := itRawExpect[*wire.BasicCancelOk](r); ok.ConsumerTag != tag1 {
		t.Fatalf("cancel-ok for %q, want %q", ok.ConsumerTag, tag1)
	}
	// With the queue deleted, the remaining consumer is told (the client
	// announced consumer_cancel_notify).
	r.send(1, &wire.QueueDelete{Queue: "raw-q"})
	var sawCancel, sawDeleteOk bool
	for !sawCancel || !sawDeleteOk {
		switch m := r.next().m.(type) {
		case *wire.BasicCancel:
			if m.ConsumerTag != tag2 {
				t.Fatalf("basic.cancel for %q, want %q", m.ConsumerTag, tag2)
			}
			sawCancel = true
		case *wire.QueueDeleteOk:
			sawDeleteOk = true
		default:
			t.Fatalf("unexpected %s", m.Name())
		}
	}
}

func TestBasicDuplicateConsumerTag(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	q := itDeclare(t, ch, "dup-q")
	itConsume(t, ch, q.Name, "same", false)
	// The same tag on another channel is fine.
	ch2, _ := c.Channel()
	itConsume(t, ch2, q.Name, "same", false)
	closed := c.NotifyClose(make(chan *amqp091.Error, 1))
	_, err := ch.Consume(q.Name, "same", false, false, false, false, nil)
	if err == nil {
		t.Fatal("duplicate consumer tag accepted")
	}
	itWaitClose(t, closed, amqp091.NotAllowed, "NOT_ALLOWED - attempt to reuse consumer tag 'same'")
	if !c.IsClosed() {
		t.Fatal("connection still open after 530")
	}
}

func TestBasicCancel(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "cancel-q")
	msgs := itConsume(t, ch, q.Name, "c1", false)
	itPub(t, ch, "", q.Name, "before-1")
	itPub(t, ch, "", q.Name, "before-2")
	ds := itRecvN(t, msgs, 2)
	itSame(t, "before cancel", itBodies(ds), []string{"before-1", "before-2"})
	if err := ch.Cancel("c1", false); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	// The client closes the delivery channel on cancel-ok; nothing else
	// arrives.
	select {
	case d, ok := <-msgs:
		if ok {
			t.Fatalf("delivery %q after cancel", d.Body)
		}
	case <-time.After(itWait):
		t.Fatal("delivery channel not closed after cancel")
	}
	itPub(t, ch, "", q.Name, "after-1")
	itPub(t, ch, "", q.Name, "after-2")
	if n := itMessages(t, ch, q.Name); n != 2 {
		t.Fatalf("%d ready after cancel, want 2", n)
	}
	// Deliveries made before the cancel can still be acknowledged.
	if err := ds[1].Ack(true); err != nil {
		t.Fatal(err)
	}
	itMessages(t, ch, q.Name) // the ack is asynchronous; this orders it
	if n := itUnacked(t, ts, q.Name); n != 0 {
		t.Fatalf("%d unacked after acking the cancelled consumer's deliveries", n)
	}
	// Cancelling an unknown tag succeeds.
	if err := ch.Cancel("never-was", false); err != nil {
		t.Fatalf("cancel unknown tag: %v", err)
	}
	itSame(t, "after cancel", itDrain(t, ch, q.Name), []string{"after-1", "after-2"})
}

func TestBasicCancelNotifyOnQueueDelete(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	q := itDeclare(t, ch, "doomed")
	cancels := ch.NotifyCancel(make(chan string, 1))
	msgs := itConsume(t, ch, q.Name, "watcher", false)
	itPub(t, ch, "", q.Name, "last")
	if d := itRecv(t, msgs); string(d.Body) != "last" {
		t.Fatalf("got %q", d.Body)
	}
	dch, _ := c.Channel()
	if _, err := dch.QueueDelete(q.Name, false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancels:
		if tag != "watcher" {
			t.Fatalf("basic.cancel for %q", tag)
		}
	case <-time.After(itWait):
		t.Fatal("no basic.cancel after the queue was deleted")
	}
	select {
	case d, ok := <-msgs:
		if ok {
			t.Fatalf("delivery %q after basic.cancel", d.Body)
		}
	case <-time.After(itWait):
		t.Fatal("delivery channel not closed after basic.cancel")
	}
	// The channel stays open and usable.
	q2 := itDeclare(t, ch, "after-doomed")
	itPub(t, ch, "", q2.Name, "ok")
	itSame(t, "after basic.cancel", itDrain(t, ch, q2.Name), []string{"ok"})

	// Deleting the queue from the consumer's own channel: basic.cancel
	// too, and queue.delete-ok.
	m2 := itConsume(t, ch, q2.Name, "self", true)
	if n, err := ch.QueueDelete(q2.Name, false, false, false); err != nil || n != 0 {
		t.Fatalf("delete from the consumer's channel: %d %v", n, err)
	}
	select {
	case tag := <-cancels:
		if tag != "self" {
			t.Fatalf("basic.cancel for %q", tag)
		}
	case <-time.After(itWait):
		t.Fatal("no basic.cancel after deleting the queue on the consumer's channel")
	}
	select {
	case d, ok := <-m2:
		if ok {
			t.Fatalf("delivery %q after basic.cancel", d.Body)
		}
	case <-time.After(itWait):
		t.Fatal("delivery channel not closed after basic.cancel")
	}
	// Consuming from the deleted queue is 404.
	_, err := mustChannel(t, c).Consume(q2.Name, "", false, false, false, false, nil)
	itWantError(t, err, amqp091.NotFound, "NOT_FOUND - no queue 'after-doomed' in vhost '/'")
}

func TestBasicRoundRobin(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "rr")
	_, cha := ts.channel(t)
	_, chb := ts.channel(t)
	ma := itConsume(t, cha, q.Name, "a", true)
	mb := itConsume(t, chb, q.Name, "b", true)
	bodies := itNames("m", 0, 9)
	for _, b := range bodies {
		itPub(t, ch, "", q.Name, b)
	}
	gotA, gotB := itBodies(itRecvN(t, ma, 5)), itBodies(itRecvN(t, mb, 5))
	itSame(t, "consumer a", gotA, []string{"m0", "m2", "m4", "m6", "m8"})
	itSame(t, "consumer b", gotB, []string{"m1", "m3", "m5", "m7", "m9"})
}

func TestBasicFIFO(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "fifo")
	const n = 500
	bodies := itNames("msg-", 1, n)
	for _, b := range bodies {
		itPub(t, ch, "", q.Name, b)
	}
	// Half by basic.get, the rest by a consumer: one order throughout.
	var got []string
	for range n / 2 {
		d, ok, err := ch.Get(q.Name, true)
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		got = append(got, string(d.Body))
	}
	msgs := itConsume(t, ch, q.Name, "fifo", false)
	ds := itRecvN(t, msgs, n-n/2)
	got = append(got, itBodies(ds)...)
	itSame(t, "FIFO order", got, bodies)
	if err := ds[len(ds)-1].Ack(true); err != nil {
		t.Fatal(err)
	}
	if n := itMessages(t, ch, q.Name); n != 0 {
		t.Fatalf("%d left", n)
	}
	if n := itUnacked(t, ts, q.Name); n != 0 {
		t.Fatalf("%d unacked after a multiple ack of everything", n)
	}
}

func TestBasicGet(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	itExchange(t, ch, "gx", "direct")
	q := itDeclare(t, ch, "get-q")
	itBind(t, ch, q.Name, "gk", "gx", nil)
	if _, ok, err := ch.Get(q.Name, false); err != nil || ok {
		t.Fatalf("get on an empty queue: ok=%v err=%v", ok, err)
	}
	for _, b := range []string{"g1", "g2", "g3"} {
		itPub(t, ch, "gx", "gk", b)
	}
	for i, want := range []string{"g1", "g2", "g3"} {
		d, ok, err := ch.Get(q.Name, false)
		if err != nil || !ok {
			t.Fatalf("get %d: ok=%v err=%v", i, ok, err)
		}
		if string(d.Body) != want || d.MessageCount != uint32(2-i) || d.Redelivered || d.Exchange != "gx" || d.RoutingKey != "gk" || d.DeliveryTag != uint64(i+1) {
			t.Fatalf("get %d: body %q count %d redelivered %v exchange %q key %q tag %d", i, d.Body, d.MessageCount, d.Redelivered, d.Exchange, d.RoutingKey, d.DeliveryTag)
		}
	}
	if _, ok, err := ch.Get(q.Name, false); err != nil || ok {
		t.Fatalf("get after draining: ok=%v err=%v", ok, err)
	}
	if n := itUnacked(t, ts, q.Name); n != 3 {
		t.Fatalf("%d unacked, want 3", n)
	}
	if err := ch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	itMessages(t, ch, q.Name) // orders the ack
	if n := itUnacked(t, ts, q.Name); n != 0 {
		t.Fatalf("%d unacked after ack, want 0", n)
	}
	// basic.get of a missing queue is 404.
	ch2, _ := ts.dial(t).Channel()
	_, _, err := ch2.Get("missing", true)
	itWantError(t, err, amqp091.NotFound, "NOT_FOUND - no queue 'missing' in vhost '/'")
}

func TestBasicAckNackReject(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "settle")
	for _, b := range itNames("m", 1, 6) {
		itPub(t, ch, "", q.Name, b)
	}
	for i := 1; i <= 6; i++ {
		d, ok, err := ch.Get(q.Name, false)
		if err != nil || !ok || string(d.Body) != fmt.Sprintf("m%d", i) || d.DeliveryTag != uint64(i) {
			t.Fatalf("get %d: %q tag %d ok=%v err=%v", i, d.Body, d.DeliveryTag, ok, err)
		}
	}
	if err := ch.Ack(2, true); err != nil { // m1, m2
		t.Fatal(err)
	}
	if err := ch.Reject(6, true); err != nil { // m6 back
		t.Fatal(err)
	}
	if err := ch.Nack(4, true, true); err != nil { // m3, m4 back
		t.Fatal(err)
	}
	if err := ch.Reject(5, false); err != nil { // m5 dropped
		t.Fatal(err)
	}
	itPub(t, ch, "", q.Name, "m7")
	itMessages(t, ch, q.Name) // orders the settlements
	if n := itUnacked(t, ts, q.Name); n != 0 {
		t.Fatalf("%d unacked after settling everything", n)
	}
	// Requeued messages come back first, in their original order, marked
	// redelivered; then the new one.
	type got struct {
		body        string
		redelivered bool
	}
	var all []got
	for {
		d, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		all = append(all, got{string(d.Body), d.Redelivered})
	}
	want := []got{{"m3", true}, {"m4", true}, {"m6", true}, {"m7", false}}
	if !slices.Equal(all, want) {
		t.Fatalf("after settling: %v, want %v", all, want)
	}

	// The same with a consumer: nack multiple with requeue redelivers to it
	// in order.
	for _, b := range itNames("c", 1, 4) {
		itPub(t, ch, "", q.Name, b)
	}
	msgs := itConsume(t, ch, q.Name, "settler", false)
	first := itRecvN(t, msgs, 4)
	itSame(t, "first deliveries", itBodies(first), itNames("c", 1, 4))
	if err := first[0].Ack(false); err != nil { // c1 acked
		t.Fatal(err)
	}
	if err := first[2].Nack(true, true); err != nil { // c2, c3 back
		t.Fatal(err)
	}
	again := itRecvN(t, msgs, 2)
	itSame(t, "redelivered", itBodies(again), []string{"c2", "c3"})
	for _, d := range again {
		if !d.Redelivered || d.DeliveryTag <= first[3].DeliveryTag {
			t.Fatalf("redelivery %q: redelivered %v tag %d", d.Body, d.Redelivered, d.DeliveryTag)
		}
	}
	if err := first[3].Reject(false); err != nil { // c4 dropped
		t.Fatal(err)
	}
	if err := again[1].Ack(true); err != nil {
		t.Fatal(err)
	}
	if n := itMessages(t, ch, q.Name); n != 0 {
		t.Fatalf("%d ready at the end", n)
	}
	if n := itUnacked(t, ts, q.Name); n != 0 {
		t.Fatalf("%d unacked at the end", n)
	}
	if err := ch.Cancel("settler", false); err != nil {
		t.Fatal(err)
	}

	// Tag 0 with multiple means every outstanding delivery.
	for _, b := range itNames("z", 1, 3) {
		itPub(t, ch, "", q.Name, b)
	}
	for range 3 {
		if _, ok, err := ch.Get(q.Name, false); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if err := ch.Nack(0, true, true); err != nil {
		t.Fatal(err)
	}
	if n := itMessages(t, ch, q.Name); n != 3 {
		t.Fatalf("%d ready after nack(0, multiple), want 3", n)
	}
	for range 3 {
		if d, ok, err := ch.Get(q.Name, false); err != nil || !ok || !d.Redelivered {
			t.Fatal(ok, err, d.Redelivered)
		}
	}
	if err := ch.Ack(0, true); err != nil {
		t.Fatal(err)
	}
	if n := itMessages(t, ch, q.Name); n != 0 {
		t.Fatalf("%d ready after ack(0, multiple)", n)
	}
	if n := itUnacked(t, ts, q.Name); n != 0 {
		t.Fatalf("%d unacked after ack(0, multiple)", n)
	}
}

func TestBasicAckErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	q := itDeclare(t, ch, "ack-err")
	itPub(t, ch, "", q.Name, "x")
	itPub(t, ch, "", q.Name, "y")
	d, ok, err := ch.Get(q.Name, false)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	itWaitClose(t, closed, amqp091.PreconditionFailed, "PRECONDITION_FAILED - unknown delivery tag 1")
	itConnUsable(t, c)

	cases := []struct {
		name   string
		settle func(ch *amqp091.Channel) error
		text   string
	}{
		{"ack unknown", func(ch *amqp091.Channel) error { return ch.Ack(99, false) }, "PRECONDITION_FAILED - unknown delivery tag 99"},
		{"ack multiple unknown", func(ch *amqp091.Channel) error { return ch.Ack(42, true) }, "PRECONDITION_FAILED - unknown delivery tag 42"},
		{"nack unknown", func(ch *amqp091.Channel) error { return ch.Nack(7, false, true) }, "PRECONDITION_FAILED - unknown delivery tag 7"},
		{"reject unknown", func(ch *amqp091.Channel) error { return ch.Reject(8, false) }, "PRECONDITION_FAILED - unknown delivery tag 8"},
	}
	for _, tc := range cases {
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
		if err := tc.settle(ch); err != nil {
			t.Fatal(err)
		}
		itWaitClose(t, closed, amqp091.PreconditionFailed, tc.text)
	}
	// "x" was acked before the failure; "y" is still there.
	if n := itMessages(t, mustChannel(t, c), q.Name); n != 1 {
		t.Fatalf("%d messages after the errors, want 1", n)
	}
	// A channel closed by an error gives its unacknowledged messages back.
	ch2 := mustChannel(t, c)
	if d, ok, err := ch2.Get(q.Name, false); err != nil || !ok || string(d.Body) != "y" {
		t.Fatalf("get: %q ok=%v err=%v", d.Body, ok, err)
	}
	closed = ch2.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch2.Ack(5, false); err != nil {
		t.Fatal(err)
	}
	itWaitClose(t, closed, amqp091.PreconditionFailed, "PRECONDITION_FAILED - unknown delivery tag 5")
	d, ok, err = mustChannel(t, c).Get(q.Name, true)
	if err != nil || !ok || string(d.Body) != "y" || !d.Redelivered {
		t.Fatalf("after the failed channel: %q redelivered=%v ok=%v err=%v", d.Body, d.Redelivered, ok, err)
	}
	itConnUsable(t, c)
}

// mustChannel opens a channel on c.
func mustChannel(t *testing.T, c *amqp091.Connection) *amqp091.Channel {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

func TestBasicRecover(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "recover-q")
	msgs := itConsume(t, ch, q.Name, "r", false)
	for _, b := range itNames("r", 1, 3) {
		itPub(t, ch, "", q.Name, b)
	}
	first := itRecvN(t, msgs, 3)
	itSame(t, "first", itBodies(first), itNames("r", 1, 3))
	if err := first[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Recover(true); err != nil {
		t.Fatalf("recover: %v", err)
	}
	again := itRecvN(t, msgs, 2)
	itSame(t, "recovered", itBodies(again), []string{"r2", "r3"})
	for _, d := range again {
		if !d.Redelivered || d.DeliveryTag <= 3 {
			t.Fatalf("recovered %q: redelivered %v tag %d", d.Body, d.Redelivered, d.DeliveryTag)
		}
	}
	// The old tags are gone; the new ones settle.
	if err := again[1].Ack(true); err != nil {
		t.Fatal(err)
	}
	if n := itMessages(t, ch, q.Name); n != 0 {
		t.Fatalf("%d ready", n)
	}
	if n := itUnacked(t, ts, q.Name); n != 0 {
		t.Fatalf("%d unacked", n)
	}
}

func TestBasicQosPerConsumer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "qos")
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	ma := itConsume(t, ch, q.Name, "a", false)
	for _, b := range itNames("q", 1, 7) {
		itPub(t, ch, "", q.Name, b)
	}
	da := itRecvN(t, ma, 2)
	itSame(t, "first window", itBodies(da), []string{"q1", "q2"})
	if n := itMessages(t, ch, q.Name); n != 5 {
		t.Fatalf("%d ready with a prefetch of 2, want 5", n)
	}
	if n := itUnacked(t, ts, q.Name); n != 2 {
		t.Fatalf("%d unacked, want 2", n)
	}
	// Each consumer of the channel has its own window of 2.
	mb := itConsume(t, ch, q.Name, "b", false)
	db := itRecvN(t, mb, 2)
	itSame(t, "second consumer", itBodies(db), []string{"q3", "q4"})
	if n := itMessages(t, ch, q.Name); n != 3 {
		t.Fatalf("%d ready with two consumers, want 3", n)
	}
	// Acking one frees one slot.
	if err := da[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	if d := itRecv(t, ma); string(d.Body) != "q5" {
		t.Fatalf("after ack got %q, want q5", d.Body)
	}
	if n := itMessages(t, ch, q.Name); n != 2 {
		t.Fatalf("%d ready after one ack, want 2", n)
	}
	if n := itUnacked(t, ts, q.Name); n != 4 {
		t.Fatalf("%d unacked, want 4", n)
	}
	// A qos set later applies to consumers made later, not to a and b.
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	for _, d := range db { // b: q3, q4
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	db2 := itRecvN(t, mb, 2)
	itSame(t, "b's next window", itBodies(db2), []string{"q6", "q7"})
	if n := itMessages(t, ch, q.Name); n != 0 {
		t.Fatalf("%d ready, want 0", n)
	}
}

func TestBasicQosGlobal(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	q1, q2 := itDeclare(t, ch, "g1"), itDeclare(t, ch, "g2")
	if err := ch.Qos(3, 0, true); err != nil {
		t.Fatal(err)
	}
	ma := itConsume(t, ch, q1.Name, "a", false)
	mb := itConsume(t, ch, q2.Name, "b", false)
	pch, _ := c.Channel()
	for i := range 5 {
		itPub(t, pch, "", q1.Name, fmt.Sprintf("a%d", i))
		itPub(t, pch, "", q2.Name, fmt.Sprintf("b%d", i))
	}
	// 3 deliveries in all, shared by the two consumers.
	ready := func() int { return itMessages(t, pch, q1.Name) + itMessages(t, pch, q2.Name) }
	if n := ready(); n != 7 {
		t.Fatalf("%d ready with a channel prefetch of 3, want 7", n)
	}
	if n := itUnacked(t, ts, q1.Name) + itUnacked(t, ts, q2.Name); n != 3 {
		t.Fatalf("%d unacked, want 3", n)
	}
	var held []amqp091.Delivery
	for len(held) < 3 {
		select {
		case d := <-ma:
			held = append(held, d)
		case d := <-mb:
			held = append(held, d)
		case <-time.After(itWait):
			t.Fatalf("only %d deliveries", len(held))
		}
	}
	// Acking one lets one more through, to either consumer.
	if err := held[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-ma:
		held = append(held, d)
	case d := <-mb:
		held = append(held, d)
	case <-time.After(itWait):
		t.Fatal("no delivery after an ack freed the channel window")
	}
	if n := ready(); n != 6 {
		t.Fatalf("%d ready after one ack, want 6", n)
	}
	if n := itUnacked(t, ts, q1.Name) + itUnacked(t, ts, q2.Name); n != 3 {
		t.Fatalf("%d unacked after one ack, want 3", n)
	}
	// Raising the limit delivers more at once; zero is no limit.
	if err := ch.Qos(5, 0, true); err != nil {
		t.Fatal(err)
	}
	if n := ready(); n != 4 {
		t.Fatalf("%d ready with a window of 5, want 4", n)
	}
	if err := ch.Qos(0, 0, true); err != nil {
		t.Fatal(err)
	}
	if n := ready(); n != 0 {
		t.Fatalf("%d ready with no window, want 0", n)
	}
	if n := itUnacked(t, ts, q1.Name) + itUnacked(t, ts, q2.Name); n != 9 {
		t.Fatalf("%d unacked, want 9", n)
	}
}

func TestBasicRequeueOnChannelClose(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	q := itDeclare(t, ch, "requeue-ch")
	for _, b := range itNames("m", 1, 6) {
		itPub(t, ch, "", q.Name, b)
	}
	cch, _ := c.Channel()
	if err := cch.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs := itConsume(t, cch, q.Name, "c", false)
	ds := itRecvN(t, msgs, 3)
	itSame(t, "delivered", itBodies(ds), []string{"m1", "m2", "m3"})
	// A basic.get on the same channel is requeued too.
	gd, ok, err := cch.Get(q.Name, false)
	if err != nil || !ok || string(gd.Body) != "m4" {
		t.Fatalf("get: %q %v %v", gd.Body, ok, err)
	}
	if err := ds[1].Ack(false); err != nil { // m2 acked: the consumer gets m5
		t.Fatal(err)
	}
	if d := itRecv(t, msgs); string(d.Body) != "m5" {
		t.Fatalf("after ack got %q, want m5", d.Body)
	}
	if err := cch.Close(); err != nil {
		t.Fatal(err)
	}
	// channel.close-ok comes after the requeue: another connection sees
	// the messages at once.
	_, other := ts.channel(t)
	type got struct {
		body        string
		redelivered bool
	}
	var all []got
	for {
		d, ok, err := other.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		all = append(all, got{string(d.Body), d.Redelivered})
	}
	want := []got{{"m1", true}, {"m3", true}, {"m4", true}, {"m5", true}, {"m6", false}}
	if !slices.Equal(all, want) {
		t.Fatalf("after channel close: %v, want %v", all, want)
	}
}

func TestBasicRequeueOnConnectionClose(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "requeue-conn")
	for _, b := range itNames("m", 1, 4) {
		itPub(t, ch, "", q.Name, b)
	}
	c1, ch1 := ts.channel(t)
	msgs := itConsume(t, ch1, q.Name, "c", false)
	ds := itRecvN(t, msgs, 4)
	itSame(t, "delivered", itBodies(ds), itNames("m", 1, 4))
	if err := ds[2].Ack(false); err != nil { // m3
		t.Fatal(err)
	}
	// Make sure the ack is in before the connection goes.
	if _, err := ch1.QueueDeclarePassive(q.Name, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_, ch2 := ts.channel(t)
	m2 := itConsume(t, ch2, q.Name, "c2", false)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	got := itRecvN(t, m2, 3)
	itSame(t, "requeued after connection close", itBodies(got), []string{"m1", "m2", "m4"})
	for _, d := range got {
		if !d.Redelivered {
			t.Fatalf("%q not marked redelivered", d.Body)
		}
	}
	// Also a connection that drops without connection.close.
	_, ch3 := ts.channel(t)
	if err := ch2.Cancel("c2", false); err != nil {
		t.Fatal(err)
	}
	r := itRawDial(t, ts.addr)
	r.send(1, &wire.ChannelOpen{})
	itRawExpect[*wire.ChannelOpenOk](r)
	r.send(1, &wire.BasicGet{Queue: q.Name})
	// All three are still unacked on ch2 (cancelling does not settle), so
	// the queue is empty for the raw client.
	itRawExpect[*wire.BasicGetEmpty](r)
	if err := got[2].Nack(true, true); err != nil {
		t.Fatal(err)
	}
	itMessages(t, ch2, q.Name)
	r.send(1, &wire.BasicGet{Queue: q.Name})
	msg := r.next()
	if _, ok := msg.m.(*wire.BasicGetOk); !ok || string(msg.body) != "m1" {
		t.Fatalf("raw get: %s %q", msg.m.Name(), msg.body)
	}
	r.nc.Close()
	itEventually(t, "message of a dropped connection requeued", func() bool {
		return itMessages(t, ch3, q.Name) == 3
	})
	itSame(t, "after the drop", itDrain(t, ch3, q.Name), []string{"m1", "m2", "m4"})
}

func TestBasicPropertiesRoundTrip(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "props")
	ts0 := time.Unix(1700000000, 0)
	headers := amqp091.Table{
		"string":  "s",
		"bool":    true,
		"int8":    int8(-8),
		"uint8":   uint8(8),
		"int16":   int16(-16),
		"uint16":  uint16(16),
		"int32":   int32(-32),
		"uint32":  uint32(32),
		"int64":   int64(-1 << 40),
		"float32": float32(1.5),
		"float64": 2.25,
		"decimal": amqp091.Decimal{Scale: 2, Value: 12345},
		"bytes":   []byte("raw\x00bytes"),
		"void":    nil,
		"nested": amqp091.Table{
			"inner": "v",
			"deeper": amqp091.Table{
				"n":     int32(1),
				"array": []any{"a", int32(2), amqp091.Table{"k": "v"}, []any{int64(3)}},
			},
		},
		"array": []any{"x", true, int16(5)},
	}
	pub := amqp091.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		Headers:         headers,
		DeliveryMode:    amqp091.Persistent,
		Priority:        7,
		CorrelationId:   "corr-1",
		ReplyTo:         "reply-queue",
		Expiration:      "3600000",
		MessageId:       "msg-1",
		Timestamp:       ts0,
		Type:            "order.created",
		AppId:           "wharf-tests",
		Body:            []byte(`{"hello":"world"}`),
	}
	check := func(how string, d amqp091.Delivery) {
		t.Helper()
		if d.ContentType != pub.ContentType || d.ContentEncoding != pub.ContentEncoding || d.DeliveryMode != pub.DeliveryMode ||
			d.Priority != pub.Priority || d.CorrelationId != pub.CorrelationId || d.ReplyTo != pub.ReplyTo ||
			d.Expiration != pub.Expiration || d.MessageId != pub.MessageId || !d.Timestamp.Equal(ts0) ||
			d.Type != pub.Type || d.AppId != pub.AppId || !bytes.Equal(d.Body, pub.Body) {
			t.Fatalf("%s: properties did not round-trip: %+v", how, d)
		}
		if !reflect.DeepEqual(d.Headers, headers) {
			t.Fatalf("%s: headers\n got %#v\nwant %#v", how, d.Headers, headers)
		}
	}
	itPublish(t, ch, "", q.Name, false, pub)
	d, ok, err := ch.Get(q.Name, true)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	check("basic.get", d)
	msgs := itConsume(t, ch, q.Name, "p", true)
	itPublish(t, ch, "", q.Name, false, pub)
	check("basic.deliver", itRecv(t, msgs))

	// A message with no properties at all, and an empty body.
	itPublish(t, ch, "", q.Name, false, amqp091.Publishing{})
	d = itRecv(t, msgs)
	if len(d.Body) != 0 || d.Headers != nil || d.ContentType != "" || d.DeliveryMode != 0 || !d.Timestamp.IsZero() {
		t.Fatalf("empty message: %+v", d)
	}

	// A body larger than a frame is split and joined again.
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	itPublish(t, ch, "", q.Name, false, amqp091.Publishing{Body: big})
	if d := itRecv(t, msgs); !bytes.Equal(d.Body, big) {
		t.Fatalf("1 MiB body came back with %d bytes", len(d.Body))
	}
}

func TestBasicMaxMessageSize(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{MaxMessageBytes: 1024})
	c, ch := ts.channel(t)
	q := itDeclare(t, ch, "sized")
	pch, _ := c.Channel()
	closed := pch.NotifyClose(make(chan *amqp091.Error, 1))
	itPublish(t, pch, "", q.Name, false, amqp091.Publishing{Body: bytes.Repeat([]byte("x"), 2000)})
	e := waitClose(t, closed)
	if e == nil || e.Code != amqp091.PreconditionFailed || !strings.HasPrefix(e.Reason, "PRECONDITION_FAILED - ") ||
		!strings.Contains(e.Reason, "message size 2000 is larger than the maximum 1024") {
		t.Fatalf("oversized publish closed the channel with %v", e)
	}
	if c.IsClosed() {
		t.Fatal("connection closed by an oversized message")
	}
	itConnUsable(t, c)
	exact := bytes.Repeat([]byte("y"), 1024)
	itPublish(t, ch, "", q.Name, false, amqp091.Publishing{Body: exact})
	d, ok, err := ch.Get(q.Name, true)
	if err != nil || !ok || !bytes.Equal(d.Body, exact) {
		t.Fatalf("1024-byte message: ok=%v err=%v len=%d", ok, err, len(d.Body))
	}
	if n := itMessages(t, ch, q.Name); n != 0 {
		t.Fatalf("the oversized message was queued: %d messages", n)
	}
}

func TestBasicSenderSelectedDistribution(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	for _, n := range []string{"main", "cc-a", "cc-b", "bcc-x", "bystander"} {
		itDeclare(t, ch, n)
	}
	extra := amqp091.Table{"nested": amqp091.Table{"k": []any{"v", int32(1)}}, "u16": uint16(7)}
	headers := amqp091.Table{
		"CC":  []any{"cc-a", "cc-b", "main"},
		"BCC": []any{"bcc-x"},
	}
	for k, v := range extra {
		headers[k] = v
	}
	itPublish(t, ch, "", "main", false, amqp091.Publishing{Headers: headers, MessageId: "ssd", Body: []byte("fan")})
	wantHeaders := amqp091.Table{"CC": []any{"cc-a", "cc-b", "main"}}
	for k, v := range extra {
		wantHeaders[k] = v
	}
	for _, n := range []string{"main", "cc-a", "cc-b", "bcc-x"} {
		d, ok, err := ch.Get(n, true)
		if err != nil || !ok || string(d.Body) != "fan" || d.MessageId != "ssd" || d.RoutingKey != "main" {
			t.Fatalf("%s: ok=%v err=%v body %q message-id %q key %q", n, ok, err, d.Body, d.MessageId, d.RoutingKey)
		}
		if _, has := d.Headers["BCC"]; has {
			t.Fatalf("%s: BCC header delivered: %v", n, d.Headers)
		}
		if !reflect.DeepEqual(d.Headers, wantHeaders) {
			t.Fatalf("%s: headers\n got %#v\nwant %#v", n, d.Headers, wantHeaders)
		}
		// One copy per queue, even when named twice.
		if _, ok, _ := ch.Get(n, true); ok {
			t.Fatalf("%s got the message twice", n)
		}
	}
	itSame(t, "bystander", itDrain(t, ch, "bystander"), nil)

	// Through a direct exchange, CC keys are matched against its bindings.
	itExchange(t, ch, "ssd-x", "direct")
	itBind(t, ch, "cc-a", "key-a", "ssd-x", nil)
	itBind(t, ch, "cc-b", "key-b", "ssd-x", nil)
	itBind(t, ch, "bcc-x", "key-x", "ssd-x", nil)
	itPublish(t, ch, "ssd-x", "key-a", false, amqp091.Publishing{Headers: amqp091.Table{"CC": []any{"key-b"}}, Body: []byte("cc-only")})
	itPublish(t, ch, "ssd-x", "nothing", false, amqp091.Publishing{Headers: amqp091.Table{"BCC": []any{"key-x"}}, Body: []byte("bcc-only")})
	itSame(t, "cc-a", itDrain(t, ch, "cc-a"), []string{"cc-only"})
	itSame(t, "cc-b", itDrain(t, ch, "cc-b"), []string{"cc-only"})
	d, ok, err := ch.Get("bcc-x", true)
	if err != nil || !ok || string(d.Body) != "bcc-only" {
		t.Fatalf("bcc-x: %v %v %q", ok, err, d.Body)
	}
	if _, has := d.Headers["BCC"]; has {
		t.Fatalf("BCC header delivered: %v", d.Headers)
	}
}

// A consumer whose connection falls behind (more than the outbox's high
// mark waiting) is skipped and resumed when the backlog drains. With no
// heartbeats nothing else wakes the queue, so every message must still
// arrive.
func TestBasicLargeBacklogNoHeartbeat(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, pch := ts.channel(t)
	q := itDeclare(t, pch, "backlog")
	r := itRawDial(t, ts.addr) // tune-ok with heartbeat 0
	r.send(1, &wire.ChannelOpen{})
	itRawExpect[*wire.ChannelOpenOk](r)
	r.send(1, &wire.BasicConsume{Queue: q.Name, ConsumerTag: "raw", NoAck: true})
	itRawExpect[*wire.BasicConsumeOk](r)
	const n, size = 48, 256 << 10
	body := func(i int) []byte {
		b := bytes.Repeat([]byte{byte('A' + i%26)}, size)
		copy(b, fmt.Sprintf("%04d", i))
		return b
	}
	// Publish everything before reading anything: the socket buffers fill,
	// the outbox grows past its high mark and the queue keeps the rest.
	for i := range n {
		itPublish(t, pch, "", q.Name, false, amqp091.Publishing{Body: body(i)})
	}
	if ready := itMessages(t, pch, q.Name); ready == 0 {
		t.Logf("the consumer was never throttled")
	}
	for i := range n {
		msg := r.next()
		d, ok := msg.m.(*wire.BasicDeliver)
		if !ok {
			t.Fatalf("got %s, want basic.deliver", msg.m.Name())
		}
		if d.ConsumerTag != "raw" || !bytes.Equal(msg.body, body(i)) {
			t.Fatalf("delivery %d: consumer %q body starts %q (%d bytes)", i, d.ConsumerTag, msg.body[:min(4, len(msg.body))], len(msg.body))
		}
	}
	if ready := itMessages(t, pch, q.Name); ready != 0 {
		t.Fatalf("%d messages left", ready)
	}
}

// TestPublishUserIDMustMatch: RabbitMQ refuses a user-id property that is
// not the authenticated user with 406, and accepts the right one.
func TestPublishUserIDMustMatch(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	q := itDeclare(t, ch, "uid-q")
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{UserId: "guest", Body: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{UserId: "mallory", Body: []byte("no")}); err != nil {
		t.Fatal(err)
	}
	e := waitClose(t, closed)
	if e == nil || e.Code != 406 || !strings.Contains(e.Reason, "user_id property set to 'mallory' but authenticated user was 'guest'") {
		t.Fatalf("close = %v, want 406 naming both users", e)
	}
	ch2, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok, err := ch2.Get(q.Name, true); err != nil || !ok || string(m.Body) != "ok" {
		t.Fatalf("get = %q %v %v, want only the message with the right user-id", m.Body, ok, err)
	}
	if _, ok, _ := ch2.Get(q.Name, true); ok {
		t.Fatal("the refused message was enqueued")
	}
}

// TestConsumerPriorities: messages go to the highest-priority consumer
// (x-priority) that can take them; a lower one gets them only when the
// higher ones are at their prefetch limit or gone.
func TestConsumerPriorities(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	q := itDeclare(t, ch, "prio-q")
	if err := ch.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	high, err := ch.Consume(q.Name, "high", false, false, false, false, amqp091.Table{"x-priority": int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	low, err := ch.Consume(q.Name, "low", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		itPub(t, ch, "", q.Name, fmt.Sprintf("m%d", i))
	}
	// high takes 3 (its prefetch), then low the other 2.
	itSame(t, "high", itBodies(itRecvN(t, high, 3)), []string{"m0", "m1", "m2"})
	itSame(t, "low", itBodies(itRecvN(t, low, 2)), []string{"m3", "m4"})
	if err := ch.Ack(0, true); err != nil {
		t.Fatal(err)
	}
	// With credit back everywhere, high gets the next ones.
	for i := 5; i < 8; i++ {
		itPub(t, ch, "", q.Name, fmt.Sprintf("m%d", i))
	}
	itSame(t, "high again", itBodies(itRecvN(t, high, 3)), []string{"m5", "m6", "m7"})
	select {
	case d := <-low:
		t.Fatalf("low got %q while high had credit", d.Body)
	default:
	}
	// A non-integer priority is refused.
	ch2, err := ts.dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch2.Consume(q.Name, "bad", false, false, false, false, amqp091.Table{"x-priority": "high"})
	itWantErrorPrefix(t, err, 406, "PRECONDITION_FAILED - invalid arg 'x-priority'")
}
