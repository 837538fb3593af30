package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/wharfmq/wharf/internal/certs"
	"github.com/wharfmq/wharf/internal/config"
)

// tlsServer is a server with TLS listeners beside the plain ones.
type tlsServer struct {
	addrs map[string]string // listener name → address
	files certs.DevFiles
}

// devCerts writes development certificates for 127.0.0.1 into dir.
func devCerts(t *testing.T, dir string) certs.DevFiles {
	t.Helper()
	f, err := certs.WriteDev(certs.DevOptions{Dir: dir, Hosts: []string{"127.0.0.1", "localhost"}, ClientName: "guest",
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// startTLSServer runs a server with every plain and TLS listener on a free
// port, client certificates checked as clientAuth says.
func startTLSServer(t *testing.T, clientAuth string, reload <-chan struct{}) *tlsServer {
	t.Helper()
	f := devCerts(t, t.TempDir())
	cfg := testConfig(t)
	cfg.KafkaTLSListen, cfg.AMQPSListen, cfg.HTTPSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TLS = config.TLSConfig{CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: f.CACert, ClientAuth: clientAuth}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWithOptions(ctx, cfg, slog.New(rec), Options{Reload: reload}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	s := &tlsServer{addrs: map[string]string{}, files: f}
	for _, e := range rec.waitFor(t, "wharf ready") {
		if e.msg == "listening" {
			s.addrs[e.attrs["listener"]] = e.attrs["addr"]
		}
	}
	go func() {
		for range rec.ch {
		}
	}()
	for _, name := range []string{"kafka", "kafka-tls", "amqp", "amqps", "http", "https"} {
		if s.addrs[name] == "" {
			t.Fatalf("no %s listener in %v", name, s.addrs)
		}
	}
	return s
}

// clientTLS trusts the server's CA and, with withCert, presents the client
// certificate.
func (s *tlsServer) clientTLS(t *testing.T, withCert bool) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(s.files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if withCert {
		c, err := tls.LoadX509KeyPair(s.files.ClientCert, s.files.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// kafkaRoundTrip produces a record to a new topic over addr and reads it
// back; it returns the first error.
func kafkaRoundTrip(ctx context.Context, addr, topic string, tlsCfg *tls.Config) error {
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RequestRetries(1)}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("over " + topic)}).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("consume: %w", errs[0].Err)
		}
		var got string
		fs.EachRecord(func(r *kgo.Record) { got = string(r.Value) })
		if got != "" {
			if got != "over "+topic {
				return fmt.Errorf("read %q", got)
			}
			return nil
		}
	}
}

// amqpRoundTrip publishes a message to a new queue over conn and gets it
// back.
func amqpRoundTrip(conn *amqp091.Connection, queue string) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		return err
	}
	if err := ch.Publish("", queue, false, false, amqp091.Publishing{Body: []byte("hello " + queue)}); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			return err
		}
		if ok {
			if string(d.Body) != "hello "+queue {
				return fmt.Errorf("got %q", d.Body)
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("nothing arrived in %s", queue)
}

func TestTLSListenersBesidePlainOnes(t *testing.T) {
	s := startTLSServer(t, "optional", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsCfg := s.clientTLS(t, false)

	// Kafka: the TLS listener advertises itself, so the client's second
	// connection (to the advertised broker) is TLS too.
	if err := kafkaRoundTrip(ctx, s.addrs["kafka-tls"], "over-tls", tlsCfg); err != nil {
		t.Fatalf("kafka over TLS: %v", err)
	}
	if err := kafkaRoundTrip(ctx, s.addrs["kafka"], "over-plain", nil); err != nil {
		t.Fatalf("kafka plain beside TLS: %v", err)
	}

	// AMQPS and plain AMQP on one server.
	conn, err := amqp091.DialTLS("amqps://guest:guest@"+s.addrs["amqps"]+"/", tlsCfg)
	if err != nil {
		t.Fatalf("amqps: %v", err)
	}
	defer conn.Close()
	if st := conn.ConnectionState(); !st.HandshakeComplete || st.Version < tls.VersionTLS12 {
		t.Fatalf("amqps connection state %+v", st)
	}
	if err := amqpRoundTrip(conn, "tls-q"); err != nil {
		t.Fatalf("amqps round trip: %v", err)
	}
	plain, err := amqp091.Dial("amqp://guest:guest@" + s.addrs["amqp"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := amqpRoundTrip(plain, "plain-q"); err != nil {
		t.Fatalf("amqp beside amqps: %v", err)
	}

	// HTTPS with HTTP/2 by ALPN, and WSS.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}}
	resp, err := hc.Get("https://" + s.addrs["https"] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("https /healthz: %d over %s", resp.StatusCode, resp.Proto)
	}
	wsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	h := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("guest:guest"))}}
	c, wsResp, err := websocket.Dial(ctx, "wss://"+s.addrs["https"]+"/ws", &websocket.DialOptions{HTTPClient: wsClient, HTTPHeader: h})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer c.CloseNow()
	if wsResp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("wss handshake status %d", wsResp.StatusCode)
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var welcome map[string]any
	if err := json.Unmarshal(data, &welcome); err != nil || welcome["type"] != "welcome" {
		t.Fatalf("wss first frame %s (%v)", data, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// A plain client on a TLS port gets no service.
	if _, err := amqp091.Dial("amqp://guest:guest@" + s.addrs["amqps"] + "/"); err == nil {
		t.Fatal("plain AMQP accepted on the AMQPS listener")
	}
}

func TestTLSClientCertificateRequired(t *testing.T) {
	s := startTLSServer(t, "required", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := amqp091.DialTLS("amqps://guest:guest@"+s.addrs["amqps"]+"/", s.clientTLS(t, false)); err == nil {
		t.Fatal("amqps without a client certificate accepted")
	}
	conn, err := amqp091.DialTLS("amqps://guest:guest@"+s.addrs["amqps"]+"/", s.clientTLS(t, true))
	if err != nil {
		t.Fatalf("amqps with a client certificate: %v", err)
	}
	defer conn.Close()
	if err := amqpRoundTrip(conn, "mtls-q"); err != nil {
		t.Fatal(err)
	}

	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if err := kafkaRoundTrip(short, s.addrs["kafka-tls"], "no-cert", s.clientTLS(t, false)); err == nil {
		t.Fatal("kafka over TLS without a client certificate worked")
	}
	if err := kafkaRoundTrip(ctx, s.addrs["kafka-tls"], "with-cert", s.clientTLS(t, true)); err != nil {
		t.Fatalf("kafka over TLS with a client certificate: %v", err)
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: s.clientTLS(t, false)}}
	if resp, err := hc.Get("https://" + s.addrs["https"] + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("https without a client certificate answered")
	}
	hc = &http.Client{Transport: &http.Transport{TLSClientConfig: s.clientTLS(t, true)}}
	resp, err := hc.Get("https://" + s.addrs["https"] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("https with a client certificate: %d", resp.StatusCode)
	}
}

func TestTLSCertificateReload(t *testing.T) {
	reload := make(chan struct{})
	s := startTLSServer(t, "none", reload)
	served := func(cfg *tls.Config) (*x509.Certificate, error) {
		c, err := tls.Dial("tcp", s.addrs["amqps"], cfg)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0], nil
	}
	oldCfg := s.clientTLS(t, false)
	before, err := served(oldCfg)
	if err != nil {
		t.Fatal(err)
	}
	// An unreadable key: the reload fails and the old certificate stays.
	if err := os.WriteFile(s.files.ServerKey, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	conn, err := amqp091.DialTLS("amqps://guest:guest@"+s.addrs["amqps"]+"/", oldCfg)
	if err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	conn.Close()

	// New files: the next connection gets the new certificate, and the
	// connection opened before keeps working.
	kept, err := amqp091.DialTLS("amqps://guest:guest@"+s.addrs["amqps"]+"/", oldCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	devCerts(t, t.TempDir()) // unrelated files must not matter
	devCerts(t, filepath.Dir(s.files.ServerCert))
	reload <- struct{}{}
	newCfg := s.clientTLS(t, false) // trusts the new CA
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, err := served(newCfg)
		if err == nil && !after.Equal(before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate not reloaded: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := served(oldCfg); err == nil {
		t.Fatal("the old CA still verifies the served certificate")
	}
	if err := amqpRoundTrip(kept, "kept-q"); err != nil {
		t.Fatalf("connection from before the reload: %v", err)
	}
}

// issueClient signs a client certificate named name with the dev CA in
// files and returns it.
func issueClient(t *testing.T, files certs.DevFiles, name string) tls.Certificate {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(files.CACert, files.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Leaf, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestAMQPExternalAuth(t *testing.T) {
	s := startTLSServer(t, "optional", nil)
	url := "amqps://" + s.addrs["amqps"] + "/"
	external := []amqp091.Authentication{&amqp091.ExternalAuth{}}

	// The dev client certificate names guest: EXTERNAL logs in as guest.
	conn, err := amqp091.DialConfig(url, amqp091.Config{SASL: external, TLSClientConfig: s.clientTLS(t, true)})
	if err != nil {
		t.Fatalf("EXTERNAL with guest's certificate: %v", err)
	}
	defer conn.Close()
	if err := amqpRoundTrip(conn, "external-q"); err != nil {
		t.Fatal(err)
	}

	// Without a certificate EXTERNAL is not offered.
	if _, err := amqp091.DialConfig(url, amqp091.Config{SASL: external, TLSClientConfig: s.clientTLS(t, false)}); err == nil {
		t.Fatal("EXTERNAL without a client certificate logged in")
	}

	// A certificate of the right CA naming no user is refused with 403.
	cfg := s.clientTLS(t, false)
	cfg.Certificates = []tls.Certificate{issueClient(t, s.files, "ghost")}
	_, err = amqp091.DialConfig(url, amqp091.Config{SASL: external, TLSClientConfig: cfg})
	var e *amqp091.Error
	if !errors.As(err, &e) || e.Code != amqp091.AccessRefused {
		t.Fatalf("EXTERNAL as an unknown user: %v, want 403", err)
	}
	// PLAIN still works on the same connection type.
	plain, err := amqp091.DialTLS("amqps://guest:guest@"+s.addrs["amqps"]+"/", cfg)
	if err != nil {
		t.Fatalf("PLAIN beside EXTERNAL: %v", err)
	}
	plain.Close()
}

// TestKafkaSCRAMOverTLS: franz-go logs in with SCRAM-SHA-512 over the TLS
// listener of a server that requires authentication; the same client
// without SASL, or with a wrong password, gets nothing done.
func TestKafkaSCRAMOverTLS(t *testing.T) {
	f := devCerts(t, t.TempDir())
	cfg := testConfig(t)
	cfg.KafkaTLSListen = "127.0.0.1:0"
	cfg.RequireAuth = true
	cfg.TLS = config.TLSConfig{CertFile: f.ServerCert, KeyFile: f.ServerKey, ClientAuth: "none"}
	s := startTestServer(t, cfg, Options{})
	tlsAddr := ""
	for _, e := range s.startupLog() {
		if e.msg == "listening" && e.attrs["listener"] == "kafka-tls" {
			tlsAddr = e.attrs["addr"]
		}
	}
	if tlsAddr == "" {
		t.Fatal("no kafka-tls listener")
	}
	pem, err := os.ReadFile(f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tlsAddr), kgo.DialTLSConfig(tlsCfg), kgo.RequestRetries(0),
			kgo.RecordRetries(0), kgo.AllowAutoTopicCreation()}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	good := client(kgo.SASL(scram.Auth{User: "guest", Pass: "guest"}.AsSha512Mechanism()))
	if err := good.ProduceSync(ctx, &kgo.Record{Topic: "scram-tls", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("SCRAM over TLS: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if err := client().ProduceSync(short, &kgo.Record{Topic: "no-sasl", Value: []byte("v")}).FirstErr(); err == nil {
		t.Error("a client without SASL produced")
	}
	if err := client(kgo.SASL(scram.Auth{User: "guest", Pass: "wrong"}.AsSha512Mechanism())).
		ProduceSync(ctx, &kgo.Record{Topic: "bad-pass", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("wrong password: %v", err)
	}
}
