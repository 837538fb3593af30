package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// WSTarget is a server to measure over WebSocket: its /ws URL and, when
// known, how to read its memory.
type WSTarget struct {
	Name string
	URL  string // ws://host:port/ws
	// PID, when not zero, is the server's process id: its RSS is read from
	// /proc/<pid>/status.
	PID int
	// MetricsURL, when not empty, is the server's Prometheus endpoint
	// (Wharf serves /metrics on the listener that serves /ws): Go heap and
	// stack in use, goroutines, and RSS and CPU when PID is not known.
	MetricsURL string
	Close      func()
}

// StartEmbeddedWharfWS runs a Wharf broker with the gateway's HTTP
// listener (/ws) in this process, on a fresh data directory under dir.
// Every authenticated user may broadcast. Its memory cannot be told apart
// from the bench client's, so it reports none.
func StartEmbeddedWharfWS(dir string, logger *slog.Logger) (WSTarget, error) {
	t, err := startEmbedded(dir, logger, func(b *broker.Broker, ln net.Listener) (string, func(context.Context) error) {
		svc := service.New(b, logger, service.Options{AutoCreateTopics: true, DefaultPartitions: 1})
		ws := gateway.NewWebSocket(svc, auth.NewDefaultStore(), nil, gateway.WSOptions{BroadcastUsers: []string{"*"}}, logger)
		srv := &http.Server{
			Handler:           gateway.NewHandler(gateway.Options{Logger: logger, WebSocket: ws}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				logger.Error("embedded wharf", "err", err)
			}
		}()
		return "ws://" + ln.Addr().String() + "/ws", func(ctx context.Context) error {
			ws.Shutdown(ctx)
			return srv.Shutdown(ctx)
		}
	})
	if err != nil {
		return WSTarget{}, err
	}
	return WSTarget{Name: "wharf-embedded", URL: t.Addr, Close: t.Close}, nil
}

// StartChildWharf runs `exe serve` (exe is a wharf binary, usually this
// process's own) as a child process on a fresh data directory under dir,
// with only the HTTP listener, on a free loopback port, and every user
// allowed to broadcast; extra are further serve flags. The server's own
// memory is then measurable apart from the client's. Its log goes to
// logOut.
func StartChildWharf(exe, dir string, extra []string, logOut io.Writer) (WSTarget, error) {
	data, err := os.MkdirTemp(dir, "wharf-bench-ws-")
	if err != nil {
		return WSTarget{}, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		os.RemoveAll(data)
		return WSTarget{}, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{"serve", "--data-dir", data, "--kafka-listen=", "--amqp-listen=",
		"--http-listen", addr, "--ws-broadcast-users", "*", "--log-level", "warn"}, extra...)
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logOut, logOut
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(data)
		return WSTarget{}, fmt.Errorf("starting %s serve: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(data)
	}
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			os.RemoveAll(data)
			return WSTarget{}, fmt.Errorf("wharf serve exited before it was ready: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return WSTarget{}, errors.New("wharf serve was not ready within 30s")
		}
	}
	return WSTarget{Name: "wharf-child", URL: "ws://" + addr + "/ws", PID: cmd.Process.Pid,
		MetricsURL: base + "/metrics", Close: stop}, nil
}

// freeLoopbackPort asks the kernel for a free port on 127.0.0.1.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// MetricsURLFor returns the /metrics URL on the listener that serves a
// ws:// or wss:// URL.
func MetricsURLFor(wsURL string) (string, error) {
	u, err := neturl.Parse(wsURL)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.User, u.Path, u.RawPath, u.RawQuery, u.Fragment = nil, "/metrics", "", "", ""
	return u.String(), nil
}

// wsServerSample is one reading of a server's memory and CPU; a field is
// negative when it could not be read.
type wsServerSample struct {
	rss, heapInuse, stackInuse, goroutines, cpuSeconds float64
	rssFrom                                            string // "proc" or "metrics"
}

// sampleServer reads what it can of the server's memory and CPU.
func sampleServer(ctx context.Context, pid int, metricsURL string) wsServerSample {
	s := wsServerSample{rss: -1, heapInuse: -1, stackInuse: -1, goroutines: -1, cpuSeconds: -1}
	if metricsURL != "" {
		m, err := scrapeMetrics(ctx, metricsURL, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes",
			"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total")
		if err == nil {
			get := func(name string) float64 {
				if v, ok := m[name]; ok {
					return v
				}
				return -1
			}
			s.heapInuse, s.stackInuse, s.goroutines = get("go_memstats_heap_inuse_bytes"), get("go_memstats_stack_inuse_bytes"), get("go_goroutines")
			s.cpuSeconds = get("process_cpu_seconds_total")
			if s.rss = get("process_resident_memory_bytes"); s.rss >= 0 {
				s.rssFrom = "metrics"
			}
		}
	}
	if pid > 0 {
		if rss, err := processRSS(pid); err == nil {
			s.rss, s.rssFrom = float64(rss), "proc"
		}
	}
	return s
}

// scrapeMetrics reads the named unlabelled samples from a Prometheus text
// endpoint.
func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
