package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfmq/wharf/internal/bench"
)

func newBenchRestartCmd() *cobra.Command {
	var (
		o       bench.RestartOptions
		size    string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "restart",
		Short: "Time restarts of wharf serve on a filled data dir; print one JSON line",
		Long: `Fills a fresh data dir under --work-dir with --size of data, spread over
--topics Kafka topics (one partition each) and --queues durable AMQP queues
of persistent messages, in proportion to their counts. The data goes through
the protocols: "wharf serve" from this binary runs as a child process on
free loopback ports, and franz-go produces (acks=all) while amqp091-go
publishes (confirms) at the same time.

The child is then stopped with SIGTERM and started again --runs times,
each time timed from exec to /readyz answering 200, to a first record
fetched (Kafka, from the start of a topic) and to a first message got
(AMQP basic.get, not acknowledged), the two concurrently once ready; each
clean run also times the SIGTERM that stops it. Then --runs restarts after
SIGKILL (a crash: the active segments are recovered) are timed the same way.
The broker's own figure for opening its logs and what it had to read
come from its log.

One JSON line with every run and the medians goes to stdout; the data dir
is removed at the end. Check the free space of --work-dir first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Bytes, err = bench.ParseBytes(size); err != nil {
				return err
			}
			if o.Exe, err = os.Executable(); err != nil {
				return err
			}
			start := time.Now()
			o.Progress = func(s string) {
				fmt.Fprintf(cmd.ErrOrStderr(), "%6.1fs  %s\n", time.Since(start).Seconds(), s)
			}
			if verbose {
				o.Log = cmd.ErrOrStderr()
			}
			res, err := bench.RunRestart(cmd.Context(), o)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&size, "size", "1GiB", "data to write (KB, MB, GB, KiB, MiB, GiB)")
	f.IntVar(&o.Topics, "topics", 50, "Kafka topics, one partition each")
	f.IntVar(&o.Queues, "queues", 50, "durable AMQP queues")
	f.IntVar(&o.MessageSize, "message-size", 1024, "bytes per record value and message body")
	f.IntVar(&o.Runs, "runs", 3, "timed restarts of each kind (after SIGTERM, after SIGKILL)")
	f.StringVar(&o.WorkDir, "work-dir", os.TempDir(), "where the temporary data dir goes")
	f.StringSliceVar(&o.ServeArgs, "serve-arg", nil, "extra flag for wharf serve (repeatable), e.g. --serve-arg=--fsync=never")
	f.BoolVar(&verbose, "verbose", false, "copy the servers' logs to stderr")
	return cmd
}
