package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/wharfmq/wharf/internal/auth"
)

// saslServer requires SASL and knows guest (loopback only) and alice.
func saslServer(t *testing.T) *testServer {
	t.Helper()
	users := auth.NewDefaultStore()
	if err := users.Put("alice", "al1ce", false); err != nil {
		t.Fatal(err)
	}
	if err := users.SetPermission("alice", "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	return startServer(t, func(o *Options) { o.Users, o.RequireSASL = users, true })
}

// roundTrip produces one record and reads it back with a client using m.
func roundTrip(t *testing.T, ts *testServer, topic string, m sasl.Mechanism) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := ts.client(kgo.SASL(m), kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RequestRetries(0), kgo.RecordRetries(0))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v-" + topic)}).FirstErr(); err != nil {
		return err
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return errs[0].Err
		}
		got := ""
		fs.EachRecord(func(r *kgo.Record) { got = string(r.Value) })
		if got != "" {
			if got != "v-"+topic {
				t.Fatalf("read %q", got)
			}
			return nil
		}
	}
}

func TestSASLMechanisms(t *testing.T) {
	ts := saslServer(t)
	cases := map[string]sasl.Mechanism{
		"plain":         plain.Auth{User: "alice", Pass: "al1ce"}.AsMechanism(),
		"plain-authzid": plain.Auth{Zid: "alice", User: "alice", Pass: "al1ce"}.AsMechanism(),
		"scram-256":     scram.Auth{User: "alice", Pass: "al1ce"}.AsSha256Mechanism(),
		"scram-512":     scram.Auth{User: "alice", Pass: "al1ce"}.AsSha512Mechanism(),
		"guest-local":   scram.Auth{User: "guest", Pass: "guest"}.AsSha512Mechanism(),
	}
	for name, m := range cases {
		if err := roundTrip(t, ts, "sasl-"+name, m); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSASLRefusals(t *testing.T) {
	ts := saslServer(t)
	cases := map[string]sasl.Mechanism{
		"plain wrong password": plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(),
		"plain unknown user":   plain.Auth{User: "mallory", Pass: "x"}.AsMechanism(),
		"plain other authzid":  plain.Auth{Zid: "guest", User: "alice", Pass: "al1ce"}.AsMechanism(),
		"scram wrong password": scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism(),
		"scram unknown user":   scram.Auth{User: "mallory", Pass: "x"}.AsSha512Mechanism(),
	}
	for name, m := range cases {
		err := roundTrip(t, ts, "refused", m)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}
	// Nothing was created by the refused clients.
	if _, ok := ts.b.Topic("refused"); ok {
		t.Error("a refused client created a topic")
	}
}

// rawRequest writes one request on c and reads its response into resp.
func rawRequest(t *testing.T, c net.Conn, corr int32, req kmsg.Request, resp kmsg.Response) error {
	t.Helper()
	body := binary.BigEndian.AppendUint16(make([]byte, 4, 64), uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, uint16(req.GetVersion()))
	body = binary.BigEndian.AppendUint32(body, uint32(corr))
	body = binary.BigEndian.AppendUint16(body, 0xffff) // null client id
	if req.IsFlexible() {
		body = append(body, 0)
	}
	body = req.AppendTo(body)
	binary.BigEndian.PutUint32(body, uint32(len(body)-4))
	if _, err := c.Write(body); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	resp.SetVersion(req.GetVersion())
	skip := 4 // correlation id
	if resp.IsFlexible() && req.Key() != 18 {
		skip++ // empty tag section
	}
	return resp.ReadFrom(buf[skip:])
}

func TestSASLRequiredBeforeOtherRequests(t *testing.T) {
	ts := saslServer(t)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// ApiVersions is allowed before authentication.
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	avResp := kmsg.NewPtrApiVersionsResponse()
	if err := rawRequest(t, c, 1, av, avResp); err != nil || avResp.ErrorCode != 0 {
		t.Fatalf("ApiVersions before SASL: %v, code %d", err, avResp.ErrorCode)
	}
	var hs, auths bool
	for _, k := range avResp.ApiKeys {
		switch k.ApiKey {
		case 17:
			hs = k.MinVersion == 0 && k.MaxVersion == 1
		case 36:
			auths = k.MinVersion == 0 && k.MaxVersion == 2
		}
	}
	if !hs || !auths {
		t.Errorf("SaslHandshake advertised %v, SaslAuthenticate %v", hs, auths)
	}
	// An unknown mechanism is refused with the list of known ones.
	h := kmsg.NewPtrSASLHandshakeRequest()
	h.SetVersion(1)
	h.Mechanism = "GSSAPI"
	hResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := rawRequest(t, c, 2, h, hResp); err != nil {
		t.Fatal(err)
	}
	if hResp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(hResp.SupportedMechanisms) != 3 {
		t.Errorf("GSSAPI handshake: code %d, mechanisms %v", hResp.ErrorCode, hResp.SupportedMechanisms)
	}
	// A v0 handshake (raw SASL frames after it) is refused.
	h0 := kmsg.NewPtrSASLHandshakeRequest()
	h0.SetVersion(0)
	h0.Mechanism = "PLAIN"
	h0Resp := kmsg.NewPtrSASLHandshakeResponse()
	if err := rawRequest(t, c, 4, h0, h0Resp); err != nil {
		t.Fatal(err)
	}
	if h0Resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("v0 handshake: code %d, want UNSUPPORTED_VERSION", h0Resp.ErrorCode)
	}
	// Metadata before authenticating closes the connection.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	if err := rawRequest(t, c, 3, md, kmsg.NewPtrMetadataResponse()); err == nil {
		t.Fatal("Metadata answered before SASL authentication")
	}

	// Without SASL configured on the client, franz-go gets nowhere.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := ts.client(kgo.RequestRetries(0))
	if err := cl.Ping(ctx); err == nil {
		t.Error("a client without SASL reached the broker")
	}
}

func TestSASLNotRequired(t *testing.T) {
	users := auth.NewDefaultStore()
	ts := startServer(t, func(o *Options) { o.Users = users })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := ts.client(kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "open", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("anonymous client on a listener without required SASL: %v", err)
	}
	if err := roundTrip(t, ts, "optional-sasl", scram.Auth{User: "guest", Pass: "guest"}.AsSha256Mechanism()); err != nil {
		t.Fatalf("SASL where it is optional: %v", err)
	}
}

// FuzzPlainCredentials feeds arbitrary PLAIN messages to the parser: it
// never panics, and what it accepts has a user and the password it was
// given.
func FuzzPlainCredentials(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret"))
	f.Add([]byte("alice\x00alice\x00secret"))
	f.Add([]byte("bob\x00alice\x00x"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		user, pass, err := plainCredentials(msg)
		if err != nil {
			return
		}
		if user == "" {
			t.Fatal("accepted a PLAIN message without a user")
		}
		if want := "\x00" + user + "\x00" + pass; !strings.HasSuffix(string(msg), want) {
			t.Fatalf("user %q and password %q are not what %q carries", user, pass, msg)
		}
	})
}
