package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfmq/wharf/internal/bench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a broker with Wharf's own load generators",
	}
	cmd.AddCommand(newBenchKafkaCmd(), newBenchAMQPCmd(), newBenchWSCmd(), newBenchRestartCmd())
	return cmd
}

func newBenchAMQPCmd() *cobra.Command {
	var (
		o       bench.AMQPOptions
		url     string
		against string
	)
	cmd := &cobra.Command{
		Use:   "amqp",
		Short: "Publish and consume over AMQP 0-9-1; print one JSON line per broker",
		Long: `Runs amqp091-go publishers and consumers in this process against an
AMQP 0-9-1 broker, through the default exchange to one queue, and prints one
JSON line: msgs/s, MB/s, p50/p99/max end-to-end latency (each message
carries its send time), and lost and duplicate counts. Payloads are
incompressible.

--against lists broker URLs to measure in turn, in one run (for instance
Wharf and RabbitMQ on different ports); with more than one, a last line
gives each one's ratios to the first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			urls := strings.Split(against, ",")
			if url != "" {
				urls = []string{url}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			var results []bench.AMQPResult
			for i, u := range urls {
				run := o
				run.URL = u
				if run.Queue == "" {
					run.Queue = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
				}
				res, err := bench.RunAMQP(cmd.Context(), redactURL(u), run)
				if err != nil {
					return fmt.Errorf("%s: %w", redactURL(u), err)
				}
				if err := enc.Encode(res); err != nil {
					return err
				}
				results = append(results, res)
			}
			for _, r := range results[1:] {
				base := results[0]
				if err := enc.Encode(map[string]any{
					"compare":          base.Target + " / " + r.Target,
					"throughput_ratio": base.MsgsPerSec / r.MsgsPerSec,
					"p99_ratio":        base.P99Ms / r.P99Ms,
				}); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "URL of the broker to measure, amqp://user:pass@host:port/vhost (overrides --against)")
	f.StringVar(&against, "against", "amqp://guest:guest@127.0.0.1:5672/", "comma-separated broker URLs to measure in turn")
	f.StringVar(&o.Queue, "queue", "", "queue to use (default: a fresh one per broker)")
	f.IntVar(&o.MessageSize, "message-size", 1024, "bytes per message body (at least 16)")
	f.Int64Var(&o.Count, "count", 100000, "messages to publish (0: run for --duration)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to publish when --count is 0")
	f.BoolVar(&o.Persistent, "persistent", true, "persistent messages (delivery_mode 2) to a durable queue")
	f.BoolVar(&o.Confirms, "confirms", true, "publisher confirms")
	f.IntVar(&o.ConfirmWindow, "confirm-window", 256, "unconfirmed messages a publisher may have outstanding")
	f.BoolVar(&o.ManualAck, "manual-ack", true, "consumers ack each message (false: auto-ack)")
	f.IntVar(&o.Prefetch, "prefetch", 256, "basic.qos prefetch count per consumer, with manual acks")
	f.IntVar(&o.Rate, "rate", 0, "messages per second over all publishers (0: as fast as possible)")
	f.IntVar(&o.Producers, "producers", 1, "publisher connections")
	f.IntVar(&o.Consumers, "consumers", 1, "consumer connections")
	f.DurationVar(&o.Drain, "drain", 30*time.Second, "how long to wait for consumers after publishing")
	return cmd
}

// redactURL drops the password from a broker URL for reports.
func redactURL(u string) string {
	if parsed, err := neturl.Parse(u); err == nil {
		return parsed.Redacted()
	}
	return u
}

func newBenchKafkaCmd() *cobra.Command {
	var (
		o       bench.KafkaOptions
		brokers string
		against string
		workDir string
		sec     kafkaSecurity
	)
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Produce and consume over the Kafka protocol; print one JSON line per broker",
		Long: `Runs franz-go producers and a consumer in this process against a
Kafka-compatible broker and prints one JSON line: msgs/s, MB/s, p50/p99/max
end-to-end latency (each record carries its send time), and lost and
duplicate counts. Payloads are incompressible.

--against lists the brokers to measure in turn, in one run:
  an address (host:port), "wharf" (a Wharf broker started in this process
  on a temporary data dir, acknowledging after fsync), or "kfake"
  (franz-go's kfake on disk with synced writes, as a peer). An address may
  name its security protocol as librdkafka does: ssl://host:port,
  sasl_plaintext://host:port or sasl_ssl://host:port (with --tls-ca-file and
  --sasl-*), so the plain and TLS listeners of one broker compare in one run.
With more than one, a last line gives each one's ratios to the first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets := strings.Split(against, ",")
			if brokers != "" {
				targets = []string{brokers}
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			enc := json.NewEncoder(cmd.OutOrStdout())
			var results []bench.KafkaResult
			for i, name := range targets {
				var t bench.Target
				var err error
				switch name {
				case "wharf":
					t, err = bench.StartEmbeddedWharf(workDir, logger)
				case "kfake":
					t, err = bench.StartKfake(workDir)
				default:
					t = bench.Target{Name: name, Addr: name, Close: func() {}}
				}
				if err != nil {
					return err
				}
				run := o
				addr, secOpts, err := sec.target(t.Addr)
				if err != nil {
					t.Close()
					return err
				}
				run.Brokers, run.Security = []string{addr}, secOpts
				if run.Topic == "" {
					run.Topic = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
				}
				res, err := bench.RunKafka(cmd.Context(), t.Name, run)
				t.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", t.Name, err)
				}
				if err := enc.Encode(res); err != nil {
					return err
				}
				results = append(results, res)
			}
			if len(results) > 1 {
				base := results[0]
				for _, r := range results[1:] {
					ratio := map[string]any{
						"compare":          base.Target + "/" + r.Target,
						"throughput_ratio": base.MsgsPerSec / r.MsgsPerSec,
						"p99_ratio":        base.P99Ms / r.P99Ms,
					}
					if err := enc.Encode(ratio); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&brokers, "brokers", "", "bootstrap address of the broker to measure (overrides --against)")
	f.StringVar(&against, "against", "wharf", `comma-separated brokers to measure in turn: host:port, "wharf" or "kfake"`)
	f.StringVar(&workDir, "work-dir", os.TempDir(), "where embedded brokers keep their temporary data")
	f.StringVar(&o.Topic, "topic", "", "topic to use (default: a fresh one per broker)")
	f.Int32Var(&o.Partitions, "partitions", 6, "partitions of the topic")
	f.IntVar(&o.RecordSize, "record-size", 1024, "bytes per record value")
	f.Int64Var(&o.Count, "count", 200000, "records to produce (0: run for --duration)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to produce when --count is 0")
	f.StringVar(&o.Acks, "acks", "all", "all, leader or none")
	f.StringVar(&o.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	f.IntVar(&o.Producers, "producers", 1, "producer clients")
	f.IntVar(&o.Rate, "rate", 0, "records per second over all producers (0: as fast as possible)")
	f.DurationVar(&o.Drain, "drain", 30*time.Second, "how long to wait for the consumer after producing")
	f.DurationVar(&o.Linger, "linger", 0, "producer linger (franz-go's default is 10ms; 0 measures the broker, not the client's batching delay)")
	f.StringVar(&sec.caFile, "tls-ca-file", "", "CA file trusted by ssl:// and sasl_ssl:// targets (default: the system's)")
	f.StringVar(&sec.mechanism, "sasl-mechanism", "SCRAM-SHA-512", "SASL mechanism of sasl_* targets: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	f.StringVar(&sec.user, "sasl-user", "guest", "SASL user of sasl_* targets")
	f.StringVar(&sec.password, "sasl-password", "guest", "SASL password of sasl_* targets")
	return cmd
}

func newBenchWSCmd() *cobra.Command {
	var (
		o           bench.WSOptions
		url         string
		against     string
		workDir     string
		cpuProfile  string
		heapProfile string
	)
	cmd := &cobra.Command{
		Use:   "ws",
		Short: "Fan messages out over WebSocket to many connections; print one JSON line per server",
		Long: `Opens --connections WebSocket connections (github.com/coder/websocket, one
reader goroutine each) and one publisher connection, all logged in with
--user and --password (Basic), and prints one JSON line: messages sent,
deliveries expected and received (lost after --drain), delivered msgs/s,
p50/p99/max fan-out latency (each message carries its send time; every
receiver measures its own delivery), and the server's memory before
connecting, once the connections are idle, and per connection.

--mode:
  group      receivers join --groups groups (receiver i joins group i mod G);
             the publisher sends {"type":"send","group":...} to them in turn
  broadcast  the publisher broadcasts; its user needs the permission
             (websocket.broadcast_users)
  topic      receivers subscribe to a fresh topic from latest; the
             publisher produces to it (acknowledged after fsync)
  idle       connect, read the server's memory, disconnect

--against lists the servers to measure in turn:
  "child"     "wharf serve" from this binary as a child process, with only
              its HTTP listener on a free loopback port, a temporary data dir
              and --ws-broadcast-users '*': its memory is its own, read from
              /proc/<pid>/status (RSS) and its /metrics (Go heap and stacks)
  "embedded"  a Wharf in this process (no memory figures: they would include
              the client's)
  a ws:// URL  an external server; memory from the /metrics of the same
              listener, RSS from /proc with --server-pid

The bench raises its open-file limit (children inherit it). Connections
beyond 25,000 to a loopback server use source addresses 127.0.0.2 and on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets := strings.Split(against, ",")
			if url != "" {
				targets = []string{url}
			}
			// Each connection is a descriptor in the bench and one in the
			// server; an embedded server is both in this process.
			want := uint64(o.Connections + 64)
			if slices.ContainsFunc(targets, func(t string) bool { return t == "embedded" || t == "wharf" }) {
				want += uint64(o.Connections)
			}
			if got, err := bench.RaiseFileLimit(want); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: raising the open-file limit: %v\n", err)
			} else if got < want {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the open-file limit is %d, below the %d wanted, and the hard limit "+
					"cannot be raised without CAP_SYS_RESOURCE: connections past it fail with \"too many open files\"\n", got, want)
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			enc := json.NewEncoder(cmd.OutOrStdout())
			for i, name := range targets {
				var t bench.WSTarget
				var err error
				switch name {
				case "child":
					exe, eerr := os.Executable()
					if eerr != nil {
						return eerr
					}
					t, err = bench.StartChildWharf(exe, workDir, nil, cmd.ErrOrStderr())
				case "embedded", "wharf":
					t, err = bench.StartEmbeddedWharfWS(workDir, logger)
				default:
					t = bench.WSTarget{Name: redactURL(name), URL: name, PID: o.ServerPID, Close: func() {}}
					t.MetricsURL, err = bench.MetricsURLFor(name)
				}
				if err != nil {
					return err
				}
				run := o
				run.URL, run.ServerPID, run.MetricsURL = t.URL, t.PID, t.MetricsURL
				suffix := ""
				if len(targets) > 1 {
					suffix = fmt.Sprintf(".%d", i)
				}
				stopCPU := func() {}
				run.OnPhase = func(phase string) {
					switch phase {
					case "connected":
						if heapProfile != "" {
							if err := writeHeapProfile(heapProfile + suffix); err != nil {
								logger.Warn("heap profile", "err", err)
							}
						}
						if cpuProfile != "" {
							f, err := os.Create(cpuProfile + suffix)
							if err == nil {
								err = pprof.StartCPUProfile(f)
							}
							if err != nil {
								logger.Warn("cpu profile", "err", err)
								return
							}
							stopCPU = func() { pprof.StopCPUProfile(); f.Close(); stopCPU = func() {} }
						}
					case "done":
						stopCPU()
					}
				}
				res, err := bench.RunWS(cmd.Context(), t.Name, run)
				stopCPU()
				t.Close()
				if err != nil {
					enc.Encode(res)
					return fmt.Errorf("%s: %w", t.Name, err)
				}
				if err := enc.Encode(res); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "ws://host:port/ws of the server to measure (overrides --against)")
	f.StringVar(&against, "against", "child", `comma-separated servers to measure in turn: "child", "embedded" or a ws:// URL`)
	f.StringVar(&workDir, "work-dir", os.TempDir(), "where child and embedded servers keep their temporary data")
	f.StringVar(&o.User, "user", "guest", "user the connections log in as (Basic)")
	f.StringVar(&o.Password, "password", "guest", "its password")
	f.StringVar(&o.Mode, "mode", bench.WSModeGroup, "group, broadcast, topic or idle")
	f.IntVar(&o.Connections, "connections", 1000, "receiving connections")
	f.IntVar(&o.Groups, "groups", 1, "group mode: groups the receivers are spread over; messages go to each in turn")
	f.StringVar(&o.Topic, "topic", "", "topic mode: topic to use (default: a fresh one)")
	f.IntVar(&o.Rate, "rate", 10, "messages per second (0: as fast as --window allows)")
	f.Int64Var(&o.Count, "count", 0, "messages to send (0: send for --duration)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send when --count is 0")
	f.IntVar(&o.Window, "window", 256, "requests the publisher may have unanswered")
	f.DurationVar(&o.Drain, "drain", 15*time.Second, "how long to wait for replies and deliveries after the last send")
	f.DurationVar(&o.Settle, "settle", 3*time.Second, "how long the connections stay idle before the server's memory is read")
	f.IntVar(&o.DialConcurrency, "dial-concurrency", 200, "connections set up at once")
	f.IntVar(&o.ServerPID, "server-pid", 0, "with --url: the server's process id, to read its RSS from /proc")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process over the sending phase (with --against embedded it includes the server)")
	f.StringVar(&heapProfile, "heapprofile", "", "write a heap profile of this process once the connections are idle")
	return cmd
}

// writeHeapProfile collects garbage and writes the live heap to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
