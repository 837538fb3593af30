package server

import (
	"context"
	"encoding/json"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/config"
)

// entry is one log record, flattened.
type entry struct {
	msg   string
	attrs map[string]string
}

// recorder is a slog.Handler that sends every record to a channel, so a test
// can wait for a log line instead of sleeping.
type recorder struct {
	ch    chan entry
	attrs []slog.Attr
}

func newRecorder() *recorder { return &recorder{ch: make(chan entry, 1024)} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	e := entry{msg: rec.Message, attrs: map[string]string{}}
	for _, a := range r.attrs {
		e.attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		e.attrs[a.Key] = a.Value.String()
		return true
	})
	r.ch <- e
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{ch: r.ch, attrs: append(append([]slog.Attr(nil), r.attrs...), as...)}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// waitFor reads log entries until one has message msg, returning every entry
// read so far.
func (r *recorder) waitFor(t *testing.T, msg string) []entry {
	t.Helper()
	var seen []entry
	for e := range r.ch {
		seen = append(seen, e)
		if e.msg == msg {
			return seen
		}
	}
	t.Fatalf("log closed before %q", msg)
	return nil
}

// listenAddrs returns the addresses the listeners logged they bound.
func listenAddrs(log []entry) (httpAddr, kafkaAddr, amqpAddr string) {
	for _, e := range log {
		if e.msg != "listening" {
			continue
		}
		switch e.attrs["listener"] {
		case "http":
			httpAddr = e.attrs["addr"]
		case "kafka":
			kafkaAddr = e.attrs["addr"]
		case "amqp":
			amqpAddr = e.attrs["addr"]
		}
	}
	return httpAddr, kafkaAddr, amqpAddr
}

func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.KafkaListen = "127.0.0.1:0"
	cfg.AMQPListen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	return cfg
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestRunServesAndShutsDown(t *testing.T) {
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, testConfig(t), slog.New(rec)) }()

	startup := rec.waitFor(t, "wharf ready")
	addr, kafkaAddr, amqpAddr := listenAddrs(startup)
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("no bound http address logged (got %q) in %+v", addr, startup)
	}
	if amqpAddr == "" || strings.HasSuffix(amqpAddr, ":0") {
		t.Fatalf("no bound amqp address logged (got %q)", amqpAddr)
	}
	// The AMQP listener answers a real client.
	ac, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/")
	if err != nil {
		t.Fatalf("amqp dial: %v", err)
	}
	ach, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ach.QueueDeclare("smoke", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ach.PublishWithContext(ctx, "", "smoke", false, false, amqp091.Publishing{Body: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := ach.Get("smoke", true); err != nil || !ok || string(m.Body) != "v" {
		t.Errorf("amqp get = %q %v %v, want \"v\"", m.Body, ok, err)
	}
	ac.Close()
	if kafkaAddr == "" || strings.HasSuffix(kafkaAddr, ":0") {
		t.Fatalf("no bound kafka address logged (got %q)", kafkaAddr)
	}
	// The Kafka listener answers a real client.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "smoke", Value: []byte("v")}).FirstErr(); err != nil {
		t.Errorf("produce to the kafka listener: %v", err)
	}
	pcancel()
	cl.Close()

	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/healthz", 200, `{"status":"ok"}`},
		{"/readyz", 200, `{"status":"ready"}`},
		{"/metrics", 200, "go_goroutines"},
		{"/metrics", 200, "process_start_time_seconds"},
		{"/nope", 404, `"code":"not_found"`},
	}
	for _, tt := range tests {
		status, body := get(t, "http://"+addr+tt.path)
		if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s = %d %.200q, want %d containing %q", tt.path, status, body, tt.wantStatus, tt.wantBody)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	shutdown := rec.waitFor(t, "broker closed")
	var stopped bool
	for _, e := range shutdown {
		stopped = stopped || (e.msg == "listener stopped" && e.attrs["listener"] == "http")
	}
	if !stopped {
		t.Errorf("http listener stop not logged before the broker closed: %+v", shutdown)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Errorf("http listener still answers after Run returned")
	}
}

func TestRunWithEveryListenerDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.KafkaListen, cfg.AMQPListen, cfg.HTTPListen = "", "", ""
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(rec)) }()
	for _, e := range rec.waitFor(t, "wharf ready") {
		if e.msg == "listening" || e.msg == "listener not available yet" {
			t.Errorf("disabled listener logged: %+v", e)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestRunStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"port in use", func(c *config.Config) { c.HTTPListen = taken.Addr().String() }, "http listener on " + taken.Addr().String()},
		{"invalid config", func(c *config.Config) { c.Storage.Fsync = "sometimes" }, "storage.fsync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.mutate(&cfg)
			// The context is never cancelled: Run must fail on its own.
			err := Run(context.Background(), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		level, format string
		wantErr       bool
		wantDebug     bool
		wantJSON      bool
	}{
		{"debug", "text", false, true, false},
		{"info", "json", false, false, true},
		{"warn", "text", false, false, false},
		{"error", "json", false, false, true},
		{"loud", "text", true, false, false},
		{"info", "xml", true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			var b strings.Builder
			l, err := NewLogger(&b, tt.level, tt.format)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewLogger error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := l.Enabled(context.Background(), slog.LevelDebug); got != tt.wantDebug {
				t.Errorf("debug enabled = %v, want %v", got, tt.wantDebug)
			}
			l.Error("hello", "k", "v")
			if got := json.Valid([]byte(b.String())); got != tt.wantJSON {
				t.Errorf("output %q: JSON = %v, want %v", b.String(), got, tt.wantJSON)
			}
		})
	}
}
