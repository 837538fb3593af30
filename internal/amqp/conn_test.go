package amqp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/auth"
)

// Connection-level integration tests: a real server on a loopback port,
// driven by amqp091-go where a well-behaved client can express the case,
// and by rawClient, a hand-driven client on a plain socket, where the
// client has to misbehave on purpose.

// rawTimeout bounds every wait of the raw client. It is generous: the
// tests assert what happens, never how fast.
const rawTimeout = 10 * time.Second

// rawClient is an AMQP client that sends exactly the bytes a test builds.
type rawClient struct {
	tb testing.TB
	nc net.Conn
	fr *wire.FrameReader
}

// dialRaw connects a raw client; the socket is closed at test end.
func dialRaw(tb testing.TB, addr string) *rawClient {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { nc.Close() })
	// The server never sends more than its frame_max; the client reader
	// accepts anything up to 16 MiB so that a server bug shows up as a
	// wrong frame, not as a client-side refusal.
	return &rawClient{tb: tb, nc: nc, fr: wire.NewFrameReader(nc, 16<<20)}
}

// write sends b, failing the test if the write fails.
func (r *rawClient) write(b []byte) {
	r.tb.Helper()
	if err := r.tryWrite(b); err != nil {
		r.tb.Fatalf("write: %v", err)
	}
}

// tryWrite sends b and returns the error, for writes that may race with
// the server closing the socket.
func (r *rawClient) tryWrite(b []byte) error {
	r.nc.SetWriteDeadline(time.Now().Add(rawTimeout))
	_, err := r.nc.Write(b)
	return err
}

// methodFrame encodes m as a method frame on channel.
func methodFrame(tb testing.TB, channel uint16, m wire.Method) []byte {
	tb.Helper()
	b, err := wire.AppendMethodFrame(nil, channel, m, 1<<20)
	if err != nil {
		tb.Fatalf("encode %s: %v", m.Name(), err)
	}
	return b
}

// messageFrames encodes a content method with its header and body frames.
func messageFrames(tb testing.TB, channel uint16, m wire.Method, body []byte, frameMax uint32) []byte {
	tb.Helper()
	b, err := wire.AppendMessage(nil, channel, m, &wire.Properties{}, body, frameMax)
	if err != nil {
		tb.Fatalf("encode %s: %v", m.Name(), err)
	}
	return b
}

// frameBytes encodes one frame with arbitrary type, channel and payload.
func frameBytes(typ uint8, channel uint16, payload []byte) []byte {
	return wire.AppendFrame(nil, wire.Frame{Type: typ, Channel: channel, Payload: payload})
}

func (r *rawClient) sendMethod(channel uint16, m wire.Method) {
	r.tb.Helper()
	r.write(methodFrame(r.tb, channel, m))
}

// readFrame reads the next frame (a copy) within rawTimeout.
func (r *rawClient) readFrame() (wire.Frame, error) {
	r.nc.SetReadDeadline(time.Now().Add(rawTimeout))
	f, err := r.fr.ReadFrame()
	if err != nil {
		return wire.Frame{}, err
	}
	f.Payload = bytes.Clone(f.Payload)
	return f, nil
}

// readMethod reads the next method frame, skipping heartbeats, and decodes
// it; anything else fails the test.
func (r *rawClient) readMethod() (uint16, wire.Method) {
	r.tb.Helper()
	for {
		f, err := r.readFrame()
		if err != nil {
			r.tb.Fatalf("reading a method: %v", err)
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type != wire.FrameMethod {
			r.tb.Fatalf("got frame type %d on channel %d, want a method", f.Type, f.Channel)
		}
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			r.tb.Fatalf("server sent an undecodable method: %v", err)
		}
		return f.Channel, m
	}
}

// rawExpect reads the next method and fails unless it is an M on channel.
func rawExpect[M wire.Method](r *rawClient, channel uint16) M {
	r.tb.Helper()
	ch, m := r.readMethod()
	got, ok := m.(M)
	if !ok || ch != channel {
		if cl, isClose := m.(*wire.ConnectionClose); isClose {
			r.tb.Fatalf("got connection.close %d %q on channel %d, want %T on channel %d", cl.ReplyCode, cl.ReplyText, ch, got, channel)
		}
		r.tb.Fatalf("got %s on channel %d, want %T on channel %d", m.Name(), ch, got, channel)
	}
	return got
}

// expectClose reads a connection.close with code whose reply text holds
// every one of texts.
func (r *rawClient) expectClose(code uint16, texts ...string) *wire.ConnectionClose {
	r.tb.Helper()
	cl := rawExpect[*wire.ConnectionClose](r, 0)
	if cl.ReplyCode != code {
		r.tb.Fatalf("connection.close code %d %q, want %d %s", cl.ReplyCode, cl.ReplyText, code, wire.ReplyName(code))
	}
	if want := wire.ReplyName(code) + " - "; !strings.HasPrefix(cl.ReplyText, want) {
		r.tb.Errorf("reply text %q does not start with %q", cl.ReplyText, want)
	}
	for _, s := range texts {
		if !strings.Contains(cl.ReplyText, s) {
			r.tb.Errorf("reply text %q does not mention %q", cl.ReplyText, s)
		}
	}
	return cl
}

// expectSocketClosed reads until the server closes the socket: only
// heartbeats may come first. A read timeout fails the test.
func (r *rawClient) expectSocketClosed() {
	r.tb.Helper()
	for {
		f, err := r.readFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.tb.Fatalf("socket still open after %v", rawTimeout)
			}
			return // EOF, or a reset: closed either way
		}
		if f.Type != wire.FrameHeartbeat {
			r.tb.Fatalf("got frame type %d on channel %d while waiting for the socket to close", f.Type, f.Channel)
		}
	}
}

// closeOk answers the server's connection.close and waits for the socket
// to close.
func (r *rawClient) closeOk() {
	r.tb.Helper()
	r.tryWrite(methodFrame(r.tb, 0, &wire.ConnectionCloseOk{})) // the server may be gone already
	r.expectSocketClosed()
}

// start sends the protocol header and reads connection.start.
func (r *rawClient) start() *wire.ConnectionStart {
	r.tb.Helper()
	r.write([]byte(wire.ProtocolHeader))
	return rawExpect[*wire.ConnectionStart](r, 0)
}

// plainResponse is a SASL PLAIN response.
func plainResponse(user, pass string) string { return "\x00" + user + "\x00" + pass }

// amqplain is an AMQPLAIN response: a field table without its length.
func amqplain(tb testing.TB, user, pass string) string {
	tb.Helper()
	b, err := (&wire.ConnectionStartOk{ClientProperties: wire.Table{"LOGIN": user, "PASSWORD": pass}}).AppendTo(nil)
	if err != nil {
		tb.Fatal(err)
	}
	// class, method, then the table with its 4-byte length.
	n := binary.BigEndian.Uint32(b[4:8])
	return string(b[8 : 8+n])
}

// startOk sends connection.start-ok with a mechanism and response; caps
// are the client's capabilities.
func (r *rawClient) startOk(mechanism, response string, caps wire.Table) {
	r.tb.Helper()
	props := wire.Table{"product": "wharf raw test client"}
	if caps != nil {
		props["capabilities"] = caps
	}
	r.sendMethod(0, &wire.ConnectionStartOk{ClientProperties: props, Mechanism: mechanism, Response: response, Locale: "en_US"})
}

// login runs start and start-ok as guest and reads connection.tune.
func (r *rawClient) login() *wire.ConnectionTune {
	r.tb.Helper()
	r.start()
	r.startOk("PLAIN", plainResponse("guest", "guest"), nil)
	return rawExpect[*wire.ConnectionTune](r, 0)
}

// open sends tune-ok and connection.open, and reads open-ok.
func (r *rawClient) open(tuneOk *wire.ConnectionTuneOk, vhost string) {
	r.tb.Helper()
	r.sendMethod(0, tuneOk)
	r.sendMethod(0, &wire.ConnectionOpen{VirtualHost: vhost})
	rawExpect[*wire.ConnectionOpenOk](r, 0)
}

// handshake runs the whole handshake as guest on "/", with no heartbeats
// and the server's limits.
func (r *rawClient) handshake() {
	r.tb.Helper()
	t := r.login()
	r.open(&wire.ConnectionTuneOk{ChannelMax: t.ChannelMax, FrameMax: t.FrameMax}, "/")
}

// openChannel opens channel id.
func (r *rawClient) openChannel(id uint16) {
	r.tb.Helper()
	r.sendMethod(id, &wire.ChannelOpen{})
	rawExpect[*wire.ChannelOpenOk](r, id)
}

// assertHealthy checks that the server still serves a new amqp091 client
// fully: handshake, declare, publish, get.
func assertHealthy(tb testing.TB, url string) {
	tb.Helper()
	c, err := amqp091.Dial(url)
	if err != nil {
		tb.Fatalf("server no longer accepts connections: %v", err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		tb.Fatalf("server no longer opens channels: %v", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		tb.Fatalf("server no longer declares queues: %v", err)
	}
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: []byte("ping")}); err != nil {
		tb.Fatalf("publish: %v", err)
	}
	deadline := time.Now().Add(rawTimeout)
	for {
		m, ok, err := ch.Get(q.Name, true)
		if err != nil {
			tb.Fatalf("get: %v", err)
		}
		if ok {
			if string(m.Body) != "ping" {
				tb.Fatalf("got %q back, want \"ping\"", m.Body)
			}
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("the message published never reached its queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- 1. Protocol header ----

func TestConnProtocolHeaderRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	for _, h := range []string{
		"AMQP\x00\x00\x09\x00", // 0-9
		"AMQP\x01\x01\x00\x0a", // 0-10
		"AMQP\x00\x00\x08\x00", // 0-8
		"AMQP\x03\x01\x00\x00", // 1.0 TLS-style header
		"HTTP/1.1",
		"GET / HT",
		"\x00\x00\x00\x00\x00\x00\x00\x00",
	} {
		t.Run(strings.ToValidUTF8(h, "?"), func(t *testing.T) {
			t.Parallel()
			r := dialRaw(t, ts.addr)
			r.write([]byte(h))
			r.nc.SetReadDeadline(time.Now().Add(rawTimeout))
			got, err := io.ReadAll(r.nc)
			if err != nil {
				t.Fatalf("reading the answer: %v (got %q)", err, got)
			}
			if string(got) != wire.ProtocolHeader {
				t.Fatalf("answer %q, want exactly %q then close", got, wire.ProtocolHeader)
			}
		})
	}
	t.Run("short header then EOF", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, ts.addr)
		r.write([]byte("AMQP"))
		r.nc.(*net.TCPConn).CloseWrite()
		r.nc.SetReadDeadline(time.Now().Add(rawTimeout))
		got, err := io.ReadAll(r.nc)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %q, %v; want the socket closed without a word", got, err)
		}
	})
	t.Run("silent client hits the handshake timeout", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, Options{HandshakeTimeout: 200 * time.Millisecond})
		r := dialRaw(t, ts.addr)
		r.nc.SetReadDeadline(time.Now().Add(rawTimeout))
		got, err := io.ReadAll(r.nc)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %q, %v; want the socket closed without a word", got, err)
		}
	})
	assertHealthy(t, ts.url)
}

// ---- 2. connection.start ----

func TestConnServerProperties(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{Version: "9.8.7-test"})
	c := ts.dial(t)
	p := c.Properties
	if p["product"] != "Wharf" {
		t.Errorf("product %v, want Wharf", p["product"])
	}
	if p["version"] != "9.8.7-test" {
		t.Errorf("version %v, want the Options.Version 9.8.7-test", p["version"])
	}
	if s, _ := p["platform"].(string); !strings.HasPrefix(s, "Go ") {
		t.Errorf("platform %v, want \"Go ...\"", p["platform"])
	}
	caps, ok := p["capabilities"].(amqp091.Table)
	if !ok {
		t.Fatalf("capabilities %T %v, want a table", p["capabilities"], p["capabilities"])
	}
	for _, k := range []string{
		"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
		"consumer_cancel_notify", "consumer_priorities",
		"authentication_failure_close", "per_consumer_qos",
	} {
		if caps[k] != true {
			t.Errorf("capability %s = %v, want true", k, caps[k])
		}
	}
	if c.Major != 0 || c.Minor != 9 {
		t.Errorf("version %d-%d, want 0-9", c.Major, c.Minor)
	}

	// The mechanisms are not exposed by amqp091: read connection.start raw.
	r := dialRaw(t, ts.addr)
	st := r.start()
	mechs := strings.Fields(st.Mechanisms)
	for _, want := range []string{"PLAIN", "AMQPLAIN"} {
		if !slices.Contains(mechs, want) {
			t.Errorf("mechanisms %q lack %s", st.Mechanisms, want)
		}
	}
	if !slices.Contains(strings.Fields(st.Locales), "en_US") {
		t.Errorf("locales %q lack en_US", st.Locales)
	}
	if st.VersionMajor != 0 || st.VersionMinor != 9 {
		t.Errorf("connection.start version %d-%d, want 0-9", st.VersionMajor, st.VersionMinor)
	}
	if caps, ok := st.ServerProperties["capabilities"].(wire.Table); !ok || caps["per_consumer_qos"] != true {
		t.Errorf("raw capabilities %v", st.ServerProperties["capabilities"])
	}
}

// ---- 3. Authentication ----

func TestConnAuthPlainAndAMQPlain(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	t.Run("PLAIN", func(t *testing.T) {
		t.Parallel()
		assertHealthy(t, ts.url) // amqp091's default mechanism is PLAIN
	})
	t.Run("AMQPLAIN", func(t *testing.T) {
		t.Parallel()
		c, err := amqp091.DialConfig(ts.url, amqp091.Config{SASL: []amqp091.Authentication{&amqp091.AMQPlainAuth{Username: "guest", Password: "guest"}}})
		if err != nil {
			t.Fatalf("AMQPLAIN login: %v", err)
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AMQPLAIN raw", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, ts.addr)
		r.start()
		r.startOk("AMQPLAIN", amqplain(t, "guest", "guest"), nil)
		tune := rawExpect[*wire.ConnectionTune](r, 0)
		r.open(&wire.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax}, "/")
		r.openChannel(1)
	})
	t.Run("wrong password amqp091", func(t *testing.T) {
		t.Parallel()
		for _, sasl := range []amqp091.Authentication{
			&amqp091.PlainAuth{Username: "guest", Password: "wrong"},
			&amqp091.AMQPlainAuth{Username: "guest", Password: "wrong"},
			&amqp091.PlainAuth{Username: "nobody", Password: "guest"},
		} {
			c, err := amqp091.DialConfig("amqp://"+ts.addr+"/", amqp091.Config{SASL: []amqp091.Authentication{sasl}})
			if err == nil {
				c.Close()
				t.Fatalf("%s: login accepted", sasl.Mechanism())
			}
			if code := amqpErrorCode(err); code != amqp091.AccessRefused {
				t.Errorf("%s: error %v (code %d), want 403", sasl.Mechanism(), err, code)
			}
		}
	})
	t.Run("wrong password with authentication_failure_close", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ mech, resp string }{
			{"PLAIN", plainResponse("guest", "wrong")},
			{"AMQPLAIN", amqplain(t, "guest", "wrong")},
			{"PLAIN", plainResponse("nobody", "x")},
		} {
			r := dialRaw(t, ts.addr)
			r.start()
			r.startOk(tc.mech, tc.resp, wire.Table{"authentication_failure_close": true})
			cl := r.expectClose(wire.ReplyAccessRefused, "Login was refused", tc.mech)
			if cl.FailingClassID != wire.ClassConnection || cl.FailingMethodID != 11 {
				t.Errorf("failing method %d.%d, want connection.start-ok 10.11", cl.FailingClassID, cl.FailingMethodID)
			}
			if strings.Contains(cl.ReplyText, "wrong") {
				t.Errorf("reply text %q leaks the password", cl.ReplyText)
			}
			r.closeOk()
		}
	})
	t.Run("wrong password without authentication_failure_close", func(t *testing.T) {
		t.Parallel()
		for _, caps := range []wire.Table{nil, {"authentication_failure_close": false}} {
			r := dialRaw(t, ts.addr)
			r.start()
			r.startOk("PLAIN", plainResponse("guest", "wrong"), caps)
			f, err := r.readFrame()
			if err == nil {
				t.Fatalf("got frame type %d on channel %d, want the socket closed without a word", f.Type, f.Channel)
			}
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read: %v, want EOF", err)
			}
		}
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, ts.addr)
		r.start()
		r.startOk("EXTERNAL", "", nil)
		r.expectClose(wire.ReplyCommandInvalid, "EXTERNAL", "mechanism")
		r.closeOk()
	})
	t.Run("malformed PLAIN response", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, ts.addr)
		r.start()
		r.startOk("PLAIN", "guestguest", nil)
		r.expectClose(wire.ReplySyntaxError, "PLAIN")
		r.closeOk()
	})
	t.Run("malformed AMQPLAIN response", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, ts.addr)
		r.start()
		r.startOk("AMQPLAIN", "\x05LOGINZ", nil)
		r.expectClose(wire.ReplySyntaxError, "AMQPLAIN")
		r.closeOk()
	})
	t.Run("method other than start-ok", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, ts.addr)
		r.start()
		r.sendMethod(0, &wire.ConnectionTuneOk{})
		r.expectClose(wire.ReplyCommandInvalid, "expected connection.start-ok", "connection.tune-ok")
		r.closeOk()
	})
	t.Run("channel frame during the handshake", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, ts.addr)
		r.start()
		r.sendMethod(1, &wire.ChannelOpen{})
		r.expectClose(wire.ReplyCommandInvalid, "handshake")
		r.closeOk()
	})
	assertHealthy(t, ts.url)
}

// The loopback-only restriction on guest is covered by the unit tests of
// internal/auth (these tests can only connect from loopback); here, a
// store of the server's own: a user allowed from anywhere logs in, guest
// (absent from that store) does not.
func TestConnAuthCustomStore(t *testing.T) {
	t.Parallel()
	store := auth.NewStore()
	if err := store.Put("alice", "s3cret", false); err != nil {
		t.Fatal(err)
	}
	if err := store.Put("bob", "pw", true); err != nil {
		t.Fatal(err)
	}
	grantAll(t, store, "alice", "bob")
	ts := startServer(t, Options{Users: store})
	assertHealthy(t, "amqp://alice:s3cret@"+ts.addr+"/")
	assertHealthy(t, "amqp://bob:pw@"+ts.addr+"/") // loopback-only, and we are on loopback
	for _, url := range []string{ts.url, "amqp://alice:wrong@" + ts.addr + "/"} {
		c, err := amqp091.Dial(url)
		if err == nil {
			c.Close()
			t.Fatalf("%s: login accepted", url)
		}
		if amqpErrorCode(err) != amqp091.AccessRefused {
			t.Errorf("%s: %v, want 403", url, err)
		}
	}
	store.Delete("alice")
	if c, err := amqp091.Dial("amqp://alice:s3cret@" + ts.addr + "/"); err == nil {
		c.Close()
		t.Fatal("a deleted user logged in")
	}
}

// ---- 4. Virtual hosts ----

func TestConnVhostMissing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, err := amqp091.DialConfig(ts.url, amqp091.Config{Vhost: "/nope"})
	if err == nil {
		c.Close()
		t.Fatal("connected to a vhost that does not exist")
	}
	if amqpErrorCode(err) != amqp091.NotAllowed {
		t.Fatalf("error %v, want 530 NOT_ALLOWED", err)
	}
	if !strings.Contains(err.Error(), "/nope") {
		t.Errorf("error %q does not name the vhost", err)
	}

	r := dialRaw(t, ts.addr)
	tune := r.login()
	r.sendMethod(0, &wire.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax})
	r.sendMethod(0, &wire.ConnectionOpen{VirtualHost: "/nope"})
	cl := r.expectClose(wire.ReplyNotAllowed, "vhost '/nope' not found")
	if cl.FailingClassID != wire.ClassConnection || cl.FailingMethodID != 40 {
		t.Errorf("failing method %d.%d, want connection.open 10.40", cl.FailingClassID, cl.FailingMethodID)
	}
	r.closeOk()
	assertHealthy(t, ts.url)
}

func TestConnVhostIsolation(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	if err := ts.b.CreateVhost(context.Background(), "v2"); err != nil {
		t.Fatal(err)
	}
	grantVhost(t, ts, "guest", "v2")
	urlV2 := "amqp://guest:guest@" + ts.addr + "/v2"
	ctx := context.Background()

	_, root := ts.channel(t)
	if _, err := root.QueueDeclare("q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := root.ExchangeDeclare("only-root", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}

	v2conn, err := amqp091.Dial(urlV2)
	if err != nil {
		t.Fatalf("dial v2: %v", err)
	}
	defer v2conn.Close()
	v2, err := v2conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// "q" of "/" is not in v2.
	_, err = v2.QueueDeclarePassive("q", false, false, false, false, nil)
	if amqpErrorCode(err) != amqp091.NotFound {
		t.Fatalf("passive declare of / 's queue in v2: %v, want 404", err)
	}
	if !strings.Contains(err.Error(), "v2") {
		t.Errorf("error %q does not name vhost v2", err)
	}
	if v2conn.IsClosed() {
		t.Fatal("a 404 closed the connection; it must close the channel only")
	}
	if v2, err = v2conn.Channel(); err != nil {
		t.Fatal(err)
	}
	// Neither is the exchange.
	err = v2.ExchangeDeclarePassive("only-root", "fanout", false, false, false, false, nil)
	if amqpErrorCode(err) != amqp091.NotFound {
		t.Fatalf("passive declare of / 's exchange in v2: %v, want 404", err)
	}
	if v2, err = v2conn.Channel(); err != nil {
		t.Fatal(err)
	}
	// v2 gets its own "q".
	if _, err := v2.QueueDeclare("q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := root.PublishWithContext(ctx, "", "q", false, false, amqp091.Publishing{Body: []byte("in-root")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := v2.PublishWithContext(ctx, "", "q", false, false, amqp091.Publishing{Body: []byte("in-v2")}); err != nil {
		t.Fatal(err)
	}
	waitCount := func(ch *amqp091.Channel, want int) {
		t.Helper()
		deadline := time.Now().Add(rawTimeout)
		for {
			q, err := ch.QueueDeclarePassive("q", false, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if q.Messages == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue q holds %d messages, want %d", q.Messages, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCount(root, 2)
	waitCount(v2, 1)
	for _, tc := range []struct {
		ch   *amqp091.Channel
		want []string
	}{{root, []string{"in-root", "in-root"}}, {v2, []string{"in-v2"}}} {
		for _, want := range tc.want {
			m, ok, err := tc.ch.Get("q", true)
			if err != nil || !ok || string(m.Body) != want {
				t.Fatalf("get: %q %v %v, want %q", m.Body, ok, err, want)
			}
		}
		if m, ok, err := tc.ch.Get("q", true); err != nil || ok {
			t.Fatalf("get: %q %v %v, want empty", m.Body, ok, err)
		}
	}
	// Publishing to the exchange of the other vhost is a 404.
	notify := v2.NotifyClose(make(chan *amqp091.Error, 1))
	if err := v2.PublishWithContext(ctx, "only-root", "", false, false, amqp091.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if e := waitClose(t, notify); e == nil || e.Code != amqp091.NotFound || !strings.Contains(e.Reason, "only-root") {
		t.Fatalf("publish to / 's exchange from v2: %v, want 404 naming it", e)
	}
	assertHealthy(t, urlV2)
	assertHealthy(t, ts.url)
}

// ---- 5. Tune ----

func TestConnTuneOffered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts Options
		want wire.ConnectionTune
	}{
		{Options{}, wire.ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 60}},
		{Options{FrameMax: 8192, ChannelMax: 5, Heartbeat: 7 * time.Second}, wire.ConnectionTune{ChannelMax: 5, FrameMax: 8192, Heartbeat: 7}},
		{Options{Heartbeat: -1}, wire.ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 0}},
	} {
		ts := startServer(t, tc.opts)
		r := dialRaw(t, ts.addr)
		if got := r.login(); *got != tc.want {
			t.Errorf("Options %+v: tune %+v, want %+v", tc.opts, *got, tc.want)
		}
	}
}

func TestConnFrameMaxHonoured(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, err := amqp091.DialConfig(ts.url, amqp091.Config{FrameSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Config.FrameSize != 4096 {
		t.Fatalf("negotiated frame size %d, want 4096", c.Config.FrameSize)
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 100<<10)
	rand.Read(body)
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: body}); err != nil {
		t.Fatal(err)
	}
	// The client's reader refuses frames above the negotiated size, so
	// getting the message back proves the server split it at 4096 too.
	deadline := time.Now().Add(rawTimeout)
	for {
		m, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if !bytes.Equal(m.Body, body) {
				t.Fatalf("got %d bytes back, not the %d published", len(m.Body), len(body))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("message never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And by consumption.
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: body}); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if !bytes.Equal(m.Body, body) {
			t.Fatalf("delivered %d bytes, not the %d published", len(m.Body), len(body))
		}
	case <-time.After(rawTimeout):
		t.Fatal("no delivery")
	}

	// The server refuses a frame over the negotiated frame_max.
	r := dialRaw(t, ts.addr)
	r.login()
	r.open(&wire.ConnectionTuneOk{ChannelMax: 10, FrameMax: 4096}, "/")
	r.openChannel(1)
	// The reader tolerates a payload of frame_max bytes (frame_max+8 with
	// the framing), as RabbitMQ does, for clients that forget the framing;
	// one byte more is refused.
	pub := methodFrame(t, 1, &wire.BasicPublish{RoutingKey: q.Name})
	big := frameBytes(wire.FrameBody, 1, make([]byte, 4097))
	hdr, err := wire.AppendContent(nil, 1, nil, make([]byte, 4097), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	hdr = hdr[:len(hdr)-len(big)] // just the header frame
	r.write(append(append(pub, hdr...), big...))
	r.expectClose(wire.ReplyFrameError, "frame-max", "4097", "4096")
	r.closeOk()
	assertHealthy(t, ts.url)
}

func TestConnTuneOkRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{FrameMax: 131072, ChannelMax: 10})
	for _, tc := range []struct {
		name string
		ok   wire.ConnectionTuneOk
		text string
	}{
		{"frame_max above the server's", wire.ConnectionTuneOk{FrameMax: 1 << 20}, "frame_max=1048576 > 131072"},
		{"frame_max below the minimum", wire.ConnectionTuneOk{FrameMax: 1000}, "frame_max=1000 < 4096"},
		{"channel_max above the server's", wire.ConnectionTuneOk{ChannelMax: 11, FrameMax: 4096}, "channel_max=11 > 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := dialRaw(t, ts.addr)
			r.login()
			r.sendMethod(0, &tc.ok)
			cl := r.expectClose(wire.ReplyNotAllowed, tc.text)
			if cl.FailingClassID != wire.ClassConnection || cl.FailingMethodID != 31 {
				t.Errorf("failing method %d.%d, want connection.tune-ok 10.31", cl.FailingClassID, cl.FailingMethodID)
			}
			r.closeOk()
		})
	}
	t.Run("zero means the server's limits", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, ts.addr)
		r.login()
		r.open(&wire.ConnectionTuneOk{}, "/")
		r.openChannel(10)
		r.sendMethod(11, &wire.ChannelOpen{})
		r.expectClose(wire.ReplyNotAllowed, "channel 11", "channel_max (10)")
		r.closeOk()
	})
	assertHealthy(t, ts.url)
}

func TestConnChannelMax(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, err := amqp091.DialConfig(ts.url, amqp091.Config{ChannelMax: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 2; i++ {
		if _, err := c.Channel(); err != nil {
			t.Fatalf("channel %d: %v", i+1, err)
		}
	}
	// amqp091 refuses a third channel itself...
	if _, err := c.Channel(); !errors.Is(err, amqp091.ErrChannelMax) {
		t.Fatalf("third channel: %v, want ErrChannelMax", err)
	}
	// ...so a raw client asks for it.
	r := dialRaw(t, ts.addr)
	tune := r.login()
	r.open(&wire.ConnectionTuneOk{ChannelMax: 2, FrameMax: tune.FrameMax}, "/")
	r.openChannel(1)
	r.openChannel(2)
	r.sendMethod(3, &wire.ChannelOpen{})
	r.expectClose(wire.ReplyNotAllowed, "channel 3", "channel_max (2)")
	r.closeOk()
	assertHealthy(t, ts.url)
}

func TestConnMaxMessageBytes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{MaxMessageBytes: 1000})
	c, ch := ts.channel(t)
	q, err := ch.QueueDeclare("", false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	notify := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: make([]byte, 1001)}); err != nil {
		t.Fatal(err)
	}
	e := waitClose(t, notify)
	if e == nil || e.Code != amqp091.PreconditionFailed || !strings.Contains(e.Reason, "1001") {
		t.Fatalf("oversized message: %v, want a 406 channel close naming its size", e)
	}
	if c.IsClosed() {
		t.Fatal("an oversized message closed the connection; it must close the channel only")
	}
	ch2, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch2.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: make([]byte, 1000)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.QueueDeclarePassive(q.Name, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
}

// ---- 6. Heartbeats ----

// heartbeatClient handshakes with heartbeat 1s.
func heartbeatClient(t *testing.T, ts *testServer) *rawClient {
	r := dialRaw(t, ts.addr)
	tune := r.login()
	r.open(&wire.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax, Heartbeat: 1}, "/")
	return r
}

func TestConnHeartbeatsSent(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := heartbeatClient(t, ts)
	// The client keeps its side alive...
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if r.tryWrite(wire.AppendHeartbeat(nil)) != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	// ...and sees the server's heartbeats, and nothing else, for 3s.
	heartbeats := 0
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		r.nc.SetReadDeadline(end)
		f, err := r.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			t.Fatalf("connection lost while both sides send heartbeats: %v", err)
		}
		if f.Type != wire.FrameHeartbeat || f.Channel != 0 || len(f.Payload) != 0 {
			t.Fatalf("got frame type %d on channel %d, want heartbeats", f.Type, f.Channel)
		}
		heartbeats++
	}
	if heartbeats == 0 {
		t.Fatal("no heartbeat from the server in 3s with a 1s interval")
	}
	// Still usable.
	r.openChannel(1)
}

func TestConnHeartbeatSilentClientDropped(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := heartbeatClient(t, ts)
	heartbeats := 0
	for {
		f, err := r.readFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("a silent client was not dropped within %v", rawTimeout)
			}
			break
		}
		if f.Type != wire.FrameHeartbeat {
			t.Fatalf("got frame type %d, want heartbeats then close", f.Type)
		}
		heartbeats++
	}
	if heartbeats == 0 {
		t.Error("the server sent no heartbeat before dropping the client")
	}
	assertHealthy(t, ts.url)
}

func TestConnHeartbeatNone(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := dialRaw(t, ts.addr)
	tune := r.login()
	r.open(&wire.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax, Heartbeat: 0}, "/")
	r.nc.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	f, err := r.fr.ReadFrame()
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("with heartbeats off: frame %+v, %v; want silence", f, err)
	}
	r.openChannel(1)
}

func TestConnHeartbeatAMQP091(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, err := amqp091.DialConfig(ts.url, amqp091.Config{Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Config.Heartbeat != time.Second {
		t.Fatalf("negotiated heartbeat %v, want 1s", c.Config.Heartbeat)
	}
	notify := c.NotifyClose(make(chan *amqp091.Error, 1))
	select {
	case e := <-notify:
		t.Fatalf("connection closed while idle with heartbeats: %v", e)
	case <-time.After(3 * time.Second):
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
}

// ---- 7. Connection errors after the handshake ----

// badTableQueueDeclare is queue.declare on channel 1 whose arguments hold
// a field with the undefined type tag 'Z'.
func badTableQueueDeclare(tb testing.TB) []byte {
	tb.Helper()
	p, err := (&wire.QueueDeclare{Queue: "q-bad-table", Arguments: wire.Table{"x-bad": int32(7)}}).AppendTo(nil)
	if err != nil {
		tb.Fatal(err)
	}
	i := bytes.Index(p, []byte("\x05x-badI"))
	if i < 0 {
		tb.Fatalf("encoding changed: %q", p)
	}
	p[i+6] = 'Z'
	return frameBytes(wire.FrameMethod, 1, p)
}

// rawPayload is a method frame payload: class, method, then args.
func rawPayload(class, method uint16, args ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, class)
	b = binary.BigEndian.AppendUint16(b, method)
	return append(b, args...)
}

func TestConnErrorsAfterHandshake(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	badEnd := methodFrame(t, 1, &wire.QueueDeclare{Queue: "x"})
	badEnd[len(badEnd)-1] = 0x00
	emptyHeader, err := wire.AppendContent(nil, 1, nil, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	headerOf3, err := wire.AppendContent(nil, 1, nil, []byte("abc"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	headerOf3 = headerOf3[:len(headerOf3)-len(frameBytes(wire.FrameBody, 1, []byte("abc")))]
	wrongClassHeader := bytes.Clone(emptyHeader)
	binary.BigEndian.PutUint16(wrongClassHeader[7:], wire.ClassQueue)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

	for _, tc := range []struct {
		name        string
		send        func(t *testing.T) []byte
		code        uint16
		texts       []string
		class, meth uint16 // failing method, when the server names one
	}{
		{"unknown frame type", func(t *testing.T) []byte { return frameBytes(9, 0, nil) },
			wire.ReplyFrameError, []string{"unknown frame type", "type 9"}, 0, 0},
		{"bad frame-end octet", func(t *testing.T) []byte { return badEnd },
			wire.ReplyFrameError, []string{"frame-end", "0x00"}, 0, 0},
		{"heartbeat on a channel", func(t *testing.T) []byte { return frameBytes(wire.FrameHeartbeat, 1, nil) },
			wire.ReplyFrameError, []string{"heartbeat", "channel 1"}, 0, 0},
		{"frame over frame_max", func(t *testing.T) []byte {
			// The reader tolerates a payload of frame_max bytes, as RabbitMQ
			// does; one more is refused before it is read.
			return frameBytes(wire.FrameBody, 1, make([]byte, 131073))
		}, wire.ReplyFrameError, []string{"frame-max", "131073", "131072"}, 0, 0},
		{"method on a channel not open", func(t *testing.T) []byte { return methodFrame(t, 5, &wire.QueueDeclare{Queue: "x"}) },
			wire.ReplyChannelError, []string{"channel.open", "channel 5", "queue.declare"}, wire.ClassQueue, 10},
		{"content on a channel not open", func(t *testing.T) []byte { return frameBytes(wire.FrameBody, 6, []byte("x")) },
			wire.ReplyChannelError, []string{"channel.open", "channel 6"}, 0, 0},
		{"second channel.open", func(t *testing.T) []byte { return methodFrame(t, 1, &wire.ChannelOpen{}) },
			wire.ReplyChannelError, []string{"second 'channel.open'", "channel 1"}, wire.ClassChannel, 10},
		{"channel beyond channel_max", func(t *testing.T) []byte { return methodFrame(t, 3000, &wire.ChannelOpen{}) },
			wire.ReplyNotAllowed, []string{"channel 3000", "channel_max (2047)"}, 0, 0},
		{"channel.close-ok on an open channel", func(t *testing.T) []byte { return methodFrame(t, 1, &wire.ChannelCloseOk{}) },
			wire.ReplyChannelError, []string{"close-ok", "not closing"}, wire.ClassChannel, 41},
		{"content header without a method", func(t *testing.T) []byte { return emptyHeader },
			wire.ReplyUnexpectedFrame, []string{"content header", "no content method"}, 0, 0},
		{"body without a method", func(t *testing.T) []byte { return frameBytes(wire.FrameBody, 1, []byte("x")) },
			wire.ReplyUnexpectedFrame, []string{"content body", "no content method"}, 0, 0},
		{"method while a header is due", func(t *testing.T) []byte {
			return cat(methodFrame(t, 1, &wire.BasicPublish{RoutingKey: "x"}), methodFrame(t, 1, &wire.QueueDeclare{Queue: "x"}))
		}, wire.ReplyUnexpectedFrame, []string{"method frame while expecting a content header", "basic.publish"}, wire.ClassBasic, 40},
		{"header while a body is due", func(t *testing.T) []byte {
			return cat(methodFrame(t, 1, &wire.BasicPublish{RoutingKey: "x"}), headerOf3, headerOf3)
		}, wire.ReplyUnexpectedFrame, []string{"content header frame while expecting a content body"}, wire.ClassBasic, 40},
		{"body beyond body-size", func(t *testing.T) []byte {
			return cat(methodFrame(t, 1, &wire.BasicPublish{RoutingKey: "x"}), headerOf3, frameBytes(wire.FrameBody, 1, []byte("abcd")))
		}, wire.ReplyFrameError, []string{"body size", "4 bytes"}, wire.ClassBasic, 40},
		{"content header of another class", func(t *testing.T) []byte {
			return cat(methodFrame(t, 1, &wire.BasicPublish{RoutingKey: "x"}), wrongClassHeader)
		}, wire.ReplyUnexpectedFrame, []string{"class 50"}, wire.ClassBasic, 40},
		{"content frame on channel 0", func(t *testing.T) []byte { return frameBytes(wire.FrameBody, 0, []byte("x")) },
			wire.ReplyUnexpectedFrame, []string{"channel 0"}, 0, 0},
		{"unknown class", func(t *testing.T) []byte { return frameBytes(wire.FrameMethod, 1, rawPayload(99, 1)) },
			wire.ReplyNotImplemented, []string{"unknown class", "99"}, 0, 0},
		{"unknown method", func(t *testing.T) []byte { return frameBytes(wire.FrameMethod, 1, rawPayload(wire.ClassBasic, 999)) },
			wire.ReplyNotImplemented, []string{"unknown method", "999", "basic"}, wire.ClassBasic, 999},
		{"unknown method on channel 0", func(t *testing.T) []byte {
			return frameBytes(wire.FrameMethod, 0, rawPayload(wire.ClassConnection, 77))
		},
			wire.ReplyNotImplemented, []string{"unknown method", "77"}, wire.ClassConnection, 77},
		{"truncated arguments", func(t *testing.T) []byte {
			return frameBytes(wire.FrameMethod, 1, rawPayload(wire.ClassQueue, 10, 0, 0, 9, 'a'))
		},
			wire.ReplyFrameError, []string{"past the end", "queue.declare"}, wire.ClassQueue, 10},
		{"trailing bytes", func(t *testing.T) []byte {
			return frameBytes(wire.FrameMethod, 1, append(rawPayload(wire.ClassBasic, 10), 0, 0, 0, 0, 0, 1, 0, 0xff))
		}, wire.ReplyFrameError, []string{"bytes left", "basic.qos"}, wire.ClassBasic, 10},
		{"unknown field-table tag", func(t *testing.T) []byte { return badTableQueueDeclare(t) },
			wire.ReplySyntaxError, []string{"type tag", "queue.declare"}, wire.ClassQueue, 10},
		{"basic.publish immediate", func(t *testing.T) []byte {
			return cat(methodFrame(t, 1, &wire.BasicPublish{RoutingKey: "x", Immediate: true}), emptyHeader)
		}, wire.ReplyNotImplemented, []string{"immediate=true"}, wire.ClassBasic, 40},
		{"basic.qos prefetch_size", func(t *testing.T) []byte {
			return methodFrame(t, 1, &wire.BasicQos{PrefetchSize: 1024, PrefetchCount: 1})
		},
			wire.ReplyNotImplemented, []string{"prefetch_size", "1024"}, wire.ClassBasic, 10},
		{"basic.recover requeue=false", func(t *testing.T) []byte { return methodFrame(t, 1, &wire.BasicRecover{Requeue: false}) },
			wire.ReplyNotImplemented, []string{"requeue=false"}, wire.ClassBasic, 110},
		{"exchange type foo", func(t *testing.T) []byte {
			return methodFrame(t, 1, &wire.ExchangeDeclare{Exchange: "e-foo", Type: "foo"})
		},
			wire.ReplyCommandInvalid, []string{"invalid exchange type 'foo'"}, wire.ClassExchange, 10},
		{"connection method after the handshake", func(t *testing.T) []byte { return methodFrame(t, 0, &wire.ConnectionTuneOk{}) },
			wire.ReplyCommandInvalid, []string{"connection.tune-ok", "after the handshake"}, wire.ClassConnection, 31},
		{"update-secret", func(t *testing.T) []byte { return methodFrame(t, 0, &wire.ConnectionUpdateSecret{NewSecret: "x"}) },
			wire.ReplyNotImplemented, []string{"update-secret"}, wire.ClassConnection, 70},
		{"channel method on channel 0", func(t *testing.T) []byte { return methodFrame(t, 0, &wire.BasicQos{PrefetchCount: 1}) },
			wire.ReplyCommandInvalid, []string{"basic.qos", "channel 0"}, wire.ClassBasic, 10},
		{"connection method on a channel", func(t *testing.T) []byte { return methodFrame(t, 1, &wire.ConnectionOpen{VirtualHost: "/"}) },
			wire.ReplyCommandInvalid, []string{"connection.open", "channel 1"}, wire.ClassConnection, 40},
		{"server method from the client", func(t *testing.T) []byte { return methodFrame(t, 1, &wire.QueueDeclareOk{Queue: "x"}) },
			wire.ReplyCommandInvalid, []string{"queue.declare-ok", "not a method a client sends"}, wire.ClassQueue, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := dialRaw(t, ts.addr)
			r.handshake()
			r.openChannel(1)
			r.tryWrite(tc.send(t)) // the server may hang up before reading it all
			cl := r.expectClose(tc.code, tc.texts...)
			if cl.FailingClassID != tc.class || cl.FailingMethodID != tc.meth {
				t.Errorf("failing method %d.%d, want %d.%d", cl.FailingClassID, cl.FailingMethodID, tc.class, tc.meth)
			}
			r.closeOk()
			assertHealthy(t, ts.url)
		})
	}
}

// A connection closing on an error stops handling what follows: frames
// after the bad one are dropped, and channel.close-ok is not needed.
func TestConnErrorDropsFollowingFrames(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := dialRaw(t, ts.addr)
	r.handshake()
	r.openChannel(1)
	r.write(bytes.Join([][]byte{
		methodFrame(t, 1, &wire.BasicQos{PrefetchSize: 1}),
		methodFrame(t, 1, &wire.QueueDeclare{Queue: "declared-after-the-error"}),
		methodFrame(t, 2, &wire.ChannelOpen{}),
	}, nil))
	r.expectClose(wire.ReplyNotImplemented, "prefetch_size")
	r.closeOk()
	_, ch := ts.channel(t)
	if _, err := ch.QueueDeclarePassive("declared-after-the-error", false, false, false, false, nil); amqpErrorCode(err) != amqp091.NotFound {
		t.Fatalf("a queue.declare sent after the error was handled: %v", err)
	}
}

// A client that closes the connection itself gets close-ok, and its
// exclusive queues go.
func TestConnClientClose(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := dialRaw(t, ts.addr)
	r.handshake()
	r.openChannel(1)
	r.sendMethod(1, &wire.QueueDeclare{Queue: "excl", Exclusive: true})
	rawExpect[*wire.QueueDeclareOk](r, 1)
	r.sendMethod(0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "bye"})
	rawExpect[*wire.ConnectionCloseOk](r, 0)
	r.expectSocketClosed()
	_, ch := ts.channel(t)
	deadline := time.Now().Add(rawTimeout)
	for {
		_, err := ch.QueueDeclarePassive("excl", false, false, true, false, nil)
		if amqpErrorCode(err) == amqp091.NotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exclusive queue outlived its connection: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- 8. Shutdown ----

func TestConnShutdownForcesClose(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	c, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	notify := c.NotifyClose(make(chan *amqp091.Error, 1))

	r := dialRaw(t, ts.addr)
	r.handshake()
	r.openChannel(1)

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
		defer cancel()
		shutdown <- ts.srv.Shutdown(ctx)
	}()

	cl := r.expectClose(wire.ReplyConnectionForced, "shutdown")
	if cl.FailingClassID != 0 || cl.FailingMethodID != 0 {
		t.Errorf("failing method %d.%d, want 0.0", cl.FailingClassID, cl.FailingMethodID)
	}
	r.closeOk()

	e := waitClose(t, notify)
	if e == nil || e.Code != amqp091.ConnectionForced || !e.Server || !strings.Contains(e.Reason, "shutdown") {
		t.Fatalf("close notification %+v, want 320 CONNECTION_FORCED from the server", e)
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(rawTimeout):
		t.Fatal("Shutdown did not return")
	}
	if c, err := amqp091.Dial(ts.url); err == nil {
		c.Close()
		t.Fatal("the server accepted a connection after Shutdown")
	}
	ts.stop()
}

// Shutdown does not wait forever for a client that never answers.
func TestConnShutdownSilentClients(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	silent := dialRaw(t, ts.addr)
	silent.handshake() // then never reads nor answers
	mid := dialRaw(t, ts.addr)
	mid.login() // in the handshake, awaiting tune-ok
	quiet := dialRaw(t, ts.addr)
	_ = quiet // connected, no protocol header yet
	time.Sleep(50 * time.Millisecond)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with silent clients: %v after %v", err, time.Since(start))
	}
	for _, r := range []*rawClient{silent, mid, quiet} {
		for {
			f, err := r.readFrame()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("socket still open after Shutdown returned")
				}
				break
			}
			_ = f // a connection.close 320 may come first
		}
	}
	ts.stop()
}

// Shutdown's connection.close may cross a handshake in progress. After
// sending it the server must not carry on with the handshake (no tune, no
// open-ok: only close-ok counts), and it must still hang up on a client
// that never answers, so Shutdown returns without waiting for its context.
func TestConnShutdownMidHandshake(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := dialRaw(t, ts.addr)
	r.start()
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
		defer cancel()
		shutdown <- ts.srv.Shutdown(ctx)
	}()
	r.expectClose(wire.ReplyConnectionForced, "shutdown")
	// A client that had pipelined the rest of its handshake, and never
	// answers the close.
	r.tryWrite(bytes.Join([][]byte{
		methodFrame(t, 0, &wire.ConnectionStartOk{Mechanism: "PLAIN", Response: plainResponse("guest", "guest"), Locale: "en_US"}),
		methodFrame(t, 0, &wire.ConnectionTuneOk{FrameMax: 131072}),
		methodFrame(t, 0, &wire.ConnectionOpen{VirtualHost: "/"}),
	}, nil))
	r.expectSocketClosed()
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v; the server kept waiting for close-ok", err)
	}
	ts.stop()
}

// A client that sends requests and never reads the replies must meet
// backpressure: the server stops reading it once its replies pile up,
// rather than buffering them without bound. Each basic.get below is ~20
// bytes from the client and a 1 MiB get-ok from the server
// (basic.recover puts the message back for the next get).
// The reader stops reading while the outbox is full (waitOutbox), so the
// client is slowed by TCP instead of growing the server's memory.
func TestConnBackpressureNonReadingClient(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	r := dialRaw(t, ts.addr)
	r.handshake()
	r.openChannel(1)
	r.sendMethod(1, &wire.QueueDeclare{Queue: "big"})
	rawExpect[*wire.QueueDeclareOk](r, 1)
	r.sendMethod(1, &wire.ConfirmSelect{})
	rawExpect[*wire.ConfirmSelectOk](r, 1)
	r.write(messageFrames(t, 1, &wire.BasicPublish{RoutingKey: "big"}, make([]byte, 1<<20), 131072))
	rawExpect[*wire.BasicAck](r, 1)
	var req []byte
	for i := 0; i < 300; i++ {
		req = append(req, methodFrame(t, 1, &wire.BasicGet{Queue: "big"})...)
		req = append(req, methodFrame(t, 1, &wire.BasicRecover{Requeue: true})...)
	}
	r.write(req)
	const limit = 32 << 20
	var worst int64
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		ts.srv.mu.Lock()
		for c := range ts.srv.conns {
			worst = max(worst, c.out.pending.Load())
		}
		ts.srv.mu.Unlock()
	}
	if worst > limit {
		t.Fatalf("%d bytes of requests left %d MiB of replies queued for a client that does not read; want at most %d MiB", len(req), worst>>20, limit>>20)
	}
}
