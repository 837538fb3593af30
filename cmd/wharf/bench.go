package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
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
	cmd.AddCommand(newBenchKafkaCmd(), newBenchAMQPCmd())
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
  (franz-go's kfake on disk with synced writes, as a peer).
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
				run.Brokers = []string{t.Addr}
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
	return cmd
}
