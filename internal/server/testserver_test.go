package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/config"
)

// testServer is a server run in this process by RunWithOptions.
type testServer struct {
	httpAddr, kafkaAddr, amqpAddr string
	log                           *recorder
	stopOnce                      sync.Once
	cancel                        context.CancelFunc
	done                          chan error
	t                             *testing.T

	logMu   sync.Mutex
	entries []entry // logged after startup
	startup []entry // logged up to "wharf ready"
}

// startupLog is what the server logged up to "wharf ready".
func (s *testServer) startupLog() []entry { return s.startup }

// startTestServer runs a server on cfg and opts until stop or the end of
// the test, and returns once it is ready. What it logs after "wharf ready"
// is kept for waitLog.
func startTestServer(t *testing.T, cfg config.Config, opts Options) *testServer {
	t.Helper()
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{log: rec, cancel: cancel, done: make(chan error, 1), t: t}
	go func() { s.done <- RunWithOptions(ctx, cfg, slog.New(rec), opts) }()
	t.Cleanup(s.stop)
	var startup []entry
	for {
		select {
		case e := <-rec.ch:
			startup = append(startup, e)
			if e.msg != "wharf ready" {
				continue
			}
			s.httpAddr, s.kafkaAddr, s.amqpAddr = listenAddrs(startup)
			s.startup = startup
			go s.keepLogs()
			return s
		case err := <-s.done:
			t.Fatalf("server stopped during startup: %v", err)
		}
	}
}

// keepLogs collects log entries until the server stops.
func (s *testServer) keepLogs() {
	for {
		select {
		case e := <-s.log.ch:
			s.logMu.Lock()
			s.entries = append(s.entries, e)
			s.logMu.Unlock()
		case err := <-s.done:
			s.done <- err // for stop
			for {
				select {
				case e := <-s.log.ch:
					s.logMu.Lock()
					s.entries = append(s.entries, e)
					s.logMu.Unlock()
				default:
					return
				}
			}
		}
	}
}

// waitLog waits until the server has logged msg with the given attributes
// (key, value pairs) since the last waitLog that found msg.
func (s *testServer) waitLog(t *testing.T, msg string, attrs ...string) entry {
	t.Helper()
	var found entry
	waitUntil(t, fmt.Sprintf("the server logs %q %v", msg, attrs), func() bool {
		s.logMu.Lock()
		defer s.logMu.Unlock()
	next:
		for i, e := range s.entries {
			if e.msg != msg {
				continue
			}
			for j := 0; j+1 < len(attrs); j += 2 {
				if e.attrs[attrs[j]] != attrs[j+1] {
					continue next
				}
			}
			found = e
			s.entries = s.entries[i+1:]
			return true
		}
		return false
	})
	return found
}

// stop shuts the server down and waits for Run to return; a failed
// shutdown fails the test. It may be called more than once.
func (s *testServer) stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				s.t.Errorf("server shutdown: %v", err)
			}
		case <-time.After(2 * time.Minute):
			s.t.Errorf("server did not stop within two minutes")
		}
	})
}

// faultConfig is a configuration on dir with every listener on a free
// loopback port and the default fsync policy (always).
func faultConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.KafkaListen, cfg.AMQPListen, cfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

// kafkaClient returns a client of the server's Kafka listener, closed at the
// end of the test.
func kafkaClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readTopic reads a topic's partition 0 from the start up to its current
// end and returns each value by offset.
func readTopic(t *testing.T, ctx context.Context, addr, topic string) map[int64]string {
	t.Helper()
	cl := kafkaClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	end := endOffset(t, ctx, cl, topic)
	got := map[int64]string{}
	for int64(len(got)) < end {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading %s back: %v (have %d of %d records)", topic, err, len(got), end)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if prev, dup := got[r.Offset]; dup {
				t.Fatalf("offset %d served twice: %q and %q", r.Offset, prev, r.Value)
			}
			got[r.Offset] = string(r.Value)
		})
	}
	return got
}

// endOffset is partition 0's high watermark.
func endOffset(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) int64 {
	t.Helper()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offset of %s: %v", topic, err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s: %+v", topic, o)
	}
	return o.Offset
}

// restCall sends a JSON request as guest and decodes the JSON answer.
func restCall(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("guest:guest")))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode, out
}

var errNoResult = errors.New("no result")

// promised collects the outcome of an asynchronous produce.
type promised struct {
	ch chan struct {
		r   *kgo.Record
		err error
	}
}

func newPromised() *promised {
	return &promised{ch: make(chan struct {
		r   *kgo.Record
		err error
	}, 1)}
}

func (p *promised) done(r *kgo.Record, err error) {
	p.ch <- struct {
		r   *kgo.Record
		err error
	}{r, err}
}

func (p *promised) wait(t *testing.T, ctx context.Context) (*kgo.Record, error) {
	t.Helper()
	select {
	case res := <-p.ch:
		return res.r, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errNoResult, ctx.Err())
	}
}
