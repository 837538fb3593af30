package amqp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/limits"
	"github.com/wharfmq/wharf/internal/logbuf"
)

// dialRefused dials url with amqp091-go and returns the connection.close
// that refused it.
func dialRefused(t *testing.T, url string) *amqp091.Error {
	t.Helper()
	c, err := amqp091.Dial(url)
	if err == nil {
		c.Close()
		t.Fatal("the connection was opened, want a refusal")
	}
	var ae *amqp091.Error
	if !errors.As(err, &ae) {
		t.Fatalf("dial: %v, want a connection.close", err)
	}
	return ae
}

// dialEventually dials until the server admits the connection: a slot is
// freed once the server has finished with a closed connection.
func dialEventually(t *testing.T, url string) *amqp091.Connection {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := amqp091.Dial(url)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection admitted after a slot was freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// works declares a queue, publishes to it and gets the message back on c.
func works(t *testing.T, c *amqp091.Connection) {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("an admitted connection cannot open a channel: %v", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(rawTimeout)
	for {
		_, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("message never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConnMaxConnections: connection.open beyond the listener's limit is
// refused with 530 NOT_ALLOWED naming the limit, as RabbitMQ's
// connection_max; the open connections go on; closing one admits a new
// one; the refusals write one log line within the interval.
func TestConnMaxConnections(t *testing.T) {
	t.Parallel()
	logs := &logbuf.Buffer{}
	ts := startServer(t, Options{MaxConnections: 2, Logger: logs.Logger()})
	c1, c2 := ts.dial(t), ts.dial(t)
	for range 4 {
		e := dialRefused(t, ts.url)
		if e.Code != amqp091.NotAllowed || !strings.Contains(e.Reason, "connection refused: listener connection limit (2) is reached") {
			t.Fatalf("third connection: %d %q, want 530 naming the limit", e.Code, e.Reason)
		}
	}
	works(t, c1)
	works(t, c2)
	if n := logs.Count("refused: limit reached", "limits.amqp_max_connections"); n != 1 {
		t.Fatalf("%d log lines for 4 refusals within the interval, want 1", n)
	}
	if n := logs.Count("handshake refused"); n != 0 {
		t.Fatalf("a refusal also wrote %d generic handshake lines", n)
	}
	c1.Close()
	works(t, dialEventually(t, ts.url))
	works(t, c2)
}

// TestConnMaxConnectionsPerUser: connection.open beyond a user's limit is
// refused with RabbitMQ's 530 and text; other users are not affected; a
// closed connection frees its user's slot.
func TestConnMaxConnectionsPerUser(t *testing.T) {
	t.Parallel()
	users := auth.NewDefaultStore()
	if err := users.Put("alice", "wonder", false); err != nil {
		t.Fatal(err)
	}
	grantAll(t, users, "alice")
	logs := &logbuf.Buffer{}
	ts := startServer(t, Options{Users: users, UserLimits: limits.NewUsers(2), Logger: logs.Logger()})
	g1, _ := ts.dial(t), ts.dial(t)
	e := dialRefused(t, ts.url)
	if e.Code != amqp091.NotAllowed || !strings.Contains(e.Reason, "connection refused for user 'guest': user connection limit (2) is reached") {
		t.Fatalf("guest's third connection: %d %q, want RabbitMQ's 530", e.Code, e.Reason)
	}
	alice := "amqp://alice:wonder@" + ts.addr + "/"
	a1, err := amqp091.Dial(alice)
	if err != nil {
		t.Fatalf("alice refused because of guest's connections: %v", err)
	}
	defer a1.Close()
	works(t, a1)
	works(t, g1)
	if n := logs.Count("refused: limit reached", "limits.max_connections_per_user"); n != 1 {
		t.Fatalf("%d log lines for the refusal, want 1", n)
	}
	g1.Close()
	works(t, dialEventually(t, ts.url))
}

// TestConnChannelMaxRefusal: a channel above the negotiated channel_max
// closes the connection with 530 NOT_ALLOWED (RabbitMQ's answer), one log
// line for repeated refusals; other connections go on.
func TestConnChannelMaxRefusal(t *testing.T) {
	t.Parallel()
	logs := &logbuf.Buffer{}
	ts := startServer(t, Options{ChannelMax: 3, Logger: logs.Logger()})
	bystander := ts.dial(t)
	c := ts.dial(t)
	if c.Config.ChannelMax != 3 {
		t.Fatalf("negotiated channel_max %d, want the server's 3", c.Config.ChannelMax)
	}
	for i := range 3 {
		if _, err := c.Channel(); err != nil {
			t.Fatalf("channel %d of 3: %v", i+1, err)
		}
	}
	if _, err := c.Channel(); !errors.Is(err, amqp091.ErrChannelMax) {
		t.Fatalf("fourth channel: %v, want amqp091's ErrChannelMax", err)
	}
	for range 3 {
		r := dialRaw(t, ts.addr)
		tune := r.login()
		r.open(&wire.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax}, "/")
		for id := uint16(1); id <= 3; id++ {
			r.openChannel(id)
		}
		r.sendMethod(4, &wire.ChannelOpen{})
		r.expectClose(wire.ReplyNotAllowed, "channel 4", "negotiated channel_max (3)")
		r.closeOk()
	}
	works(t, bystander)
	if n := logs.Count("refused: limit reached", "limits.amqp_channel_max"); n != 1 {
		t.Fatalf("%d log lines for 3 refusals within the interval, want 1", n)
	}
}

// TestConnMessageAndFrameSizeRefusalsLogOnce: oversized messages (406) and
// frames (501) each write one log line however often they are refused.
func TestConnMessageAndFrameSizeRefusalsLogOnce(t *testing.T) {
	t.Parallel()
	logs := &logbuf.Buffer{}
	ts := startServer(t, Options{MaxMessageBytes: 1000, Logger: logs.Logger()})
	c := ts.dial(t)
	for range 3 {
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		notify := ch.NotifyClose(make(chan *amqp091.Error, 1))
		if err := ch.PublishWithContext(context.Background(), "", "nowhere", false, false, amqp091.Publishing{Body: make([]byte, 1001)}); err != nil {
			t.Fatal(err)
		}
		if e := waitClose(t, notify); e == nil || e.Code != amqp091.PreconditionFailed {
			t.Fatalf("oversized message: %v, want 406", e)
		}
	}
	for range 3 {
		r := dialRaw(t, ts.addr)
		r.handshake()
		r.openChannel(1)
		r.write(frameBytes(wire.FrameBody, 1, make([]byte, 131073)))
		r.expectClose(wire.ReplyFrameError, "frame-max")
		r.closeOk()
	}
	works(t, c)
	if n := logs.Count("refused: limit reached", "amqp_max_message_bytes"); n != 1 {
		t.Fatalf("%d log lines for 3 oversized messages, want 1", n)
	}
	if n := logs.Count("refused: limit reached", "limits.amqp_frame_max"); n != 1 {
		t.Fatalf("%d log lines for 3 oversized frames, want 1", n)
	}
}
