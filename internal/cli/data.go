package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// progress reports a running count on standard error once a second when
// it is on.
type progress struct {
	on    bool
	w     io.Writer
	verb  string
	n     int
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, verb string, force bool) *progress {
	on := force
	if f, ok := w.(*os.File); ok && !force {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	now := time.Now()
	return &progress{on: on, w: w, verb: verb, start: now, last: now}
}

func (p *progress) add(n int) {
	p.n += n
	if !p.on {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= time.Second {
		p.last = now
		fmt.Fprintf(p.w, "\r%s %d (%.0f/s)   ", p.verb, p.n, float64(p.n)/now.Sub(p.start).Seconds())
	}
}

func (p *progress) done() {
	if p.on {
		el := time.Since(p.start)
		fmt.Fprintf(p.w, "\r%s %d in %.1fs (%.0f/s)   \n", p.verb, p.n, el.Seconds(), float64(p.n)/max(el.Seconds(), 1e-9))
	}
}

// splitKey splits a line at the first sep; no sep (or an empty sep) means
// no key.
func splitKey(line, sep string) (key *string, value string) {
	if sep == "" {
		return nil, line
	}
	k, v, ok := strings.Cut(line, sep)
	if !ok {
		return nil, line
	}
	return &k, v
}

func produceCmd(c *conn) *cobra.Command {
	var (
		exchange, routingKey, vhost, keySep string
		partition                           int32
		headers                             []string
		batch                               int
		transient, showProgress             bool
	)
	cmd := &cobra.Command{
		Use:   "produce [TOPIC]",
		Short: "Send standard input, one record or message per line, to a topic or an exchange",
		Long: `Reads standard input line by line. With a TOPIC, each line is a record
(with -K SEP, the text before the first SEP is its key), produced in batches
through the REST API and acknowledged once durable. With --exchange, each
line is an AMQP message published with --routing-key over WebSocket
(persistent unless --transient), acknowledged once durable.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hs, err := keyValues(headers)
			if err != nil {
				return err
			}
			prog := newProgress(c.errOut, "sent", showProgress)
			defer prog.done()
			switch {
			case len(args) == 1 && !cmd.Flags().Changed("exchange"):
				return c.produceTopic(cmd.Context(), args[0], partition, keySep, hs, batch, prog)
			case len(args) == 0 && cmd.Flags().Changed("exchange"):
				return c.publish(cmd.Context(), vhost, exchange, routingKey, hs, !transient, prog)
			}
			return errors.New("give a TOPIC, or --exchange (and --routing-key)")
		},
	}
	f := cmd.Flags()
	f.StringVarP(&keySep, "key-separator", "K", "", "split each line into key and value at the first SEP")
	f.Int32VarP(&partition, "partition", "p", -1, "partition (default: by key hash, round-robin without a key)")
	f.StringArrayVarP(&headers, "header", "H", nil, "header key=value on every record or message (repeatable)")
	f.IntVar(&batch, "batch", 500, "records per produce request")
	f.StringVarP(&exchange, "exchange", "e", "", `publish to this exchange ("" is the default exchange)`)
	f.StringVarP(&routingKey, "routing-key", "r", "", "routing key of the published messages")
	f.StringVar(&vhost, "vhost", "/", "virtual host of the exchange")
	f.BoolVar(&transient, "transient", false, "publish transient messages (delivery mode 1)")
	f.BoolVar(&showProgress, "progress", false, "report progress on standard error even when it is not a terminal")
	return cmd
}

func (c *conn) produceTopic(ctx context.Context, topic string, partition int32, keySep string, hs map[string]string, batch int, prog *progress) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var headers []map[string]string
	for k, v := range hs {
		headers = append(headers, map[string]string{"key": k, "value": v})
	}
	var recs []map[string]any
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		if err := cl.Do(ctx, http.MethodPost, path("topics", topic, "records"), nil, map[string]any{"records": recs}, nil); err != nil {
			return err
		}
		prog.add(len(recs))
		recs = recs[:0]
		return nil
	}
	sc := bufio.NewScanner(c.in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		key, value := splitKey(sc.Text(), keySep)
		r := map[string]any{"value": value}
		if key != nil {
			r["key"] = *key
		}
		if partition >= 0 {
			r["partition"] = partition
		}
		if headers != nil {
			r["headers"] = headers
		}
		recs = append(recs, r)
		if len(recs) >= max(batch, 1) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading standard input: %w", err)
	}
	return flush()
}

// publishWindow bounds the publishes waiting for their acknowledgement.
const publishWindow = 256

func (c *conn) publish(ctx context.Context, vhost, exchange, key string, hs map[string]string, persistent bool, prog *progress) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	w, err := cl.dialWS(ctx)
	if err != nil {
		return err
	}
	defer w.close()
	props := map[string]any{"delivery_mode": 1}
	if persistent {
		props["delivery_mode"] = 2
	}
	if len(hs) > 0 {
		props["headers"] = hs
	}
	var inflight []<-chan map[string]any
	settle := func(n int) error {
		for len(inflight) > n {
			select {
			case m := <-inflight[0]:
				if err := replyErr(m); err != nil {
					return err
				}
			case <-w.done:
				return w.err
			}
			inflight = inflight[1:]
			prog.add(1)
		}
		return nil
	}
	sc := bufio.NewScanner(c.in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		ch, err := w.send(ctx, map[string]any{"type": "publish", "vhost": vhost, "exchange": exchange, "routing_key": key, "properties": props, "body": sc.Text()})
		if err != nil {
			return err
		}
		inflight = append(inflight, ch)
		if err := settle(publishWindow); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading standard input: %w", err)
	}
	return settle(0)
}

func consumeCmd(c *conn) *cobra.Command {
	var (
		queue, vhost, from, format, keySep string
		offset                             int64
		partitions                         []int32
		count, prefetch                    int
		idle                               time.Duration
		atEnd, showProgress                bool
	)
	cmd := &cobra.Command{
		Use:   "consume [TOPIC]",
		Short: "Write records of a topic, or messages of a queue, to standard output, one per line",
		Long: `Subscribes over WebSocket and writes each record's or message's value (with
-K SEP, key SEP value; with --format json, the whole frame as JSON) on its own
line. A queue's messages are acknowledged once written. Stops after -n
messages, after --idle with nothing new, with --exit-at-end once a topic's
records up to its end at start are written, or on Ctrl-C.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (queue != "") {
				return errors.New("give a TOPIC or --queue")
			}
			if format != "value" && format != "json" {
				return fmt.Errorf("--format %q: give value or json", format)
			}
			ctx := cmd.Context()
			cl, err := c.client()
			if err != nil {
				return err
			}
			var ends map[int32]int64
			if atEnd {
				if queue != "" {
					return errors.New("--exit-at-end is for topics; use --idle for queues")
				}
				if ends, err = c.topicEnds(ctx, cl, args[0]); err != nil {
					return err
				}
			}
			w, err := cl.dialWS(ctx)
			if err != nil {
				return err
			}
			defer w.close()
			sub := map[string]any{"type": "subscribe"}
			if queue != "" {
				sub["queue"], sub["vhost"], sub["prefetch"] = queue, vhost, prefetch
			} else {
				sub["topic"], sub["from"] = args[0], from
				if from == "offset" {
					sub["offset"] = offset
				}
				if len(partitions) > 0 {
					sub["partitions"] = partitions
				}
			}
			if _, err := w.call(ctx, sub); err != nil {
				return err
			}
			prog := newProgress(c.errOut, "received", showProgress)
			defer prog.done()
			return c.consumeLoop(ctx, w, count, idle, ends, format, keySep, prog)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&queue, "queue", "q", "", "consume this queue instead of a topic")
	f.StringVar(&vhost, "vhost", "/", "virtual host of the queue")
	f.IntVar(&prefetch, "prefetch", 100, "unacknowledged queue messages at a time")
	f.StringVar(&from, "from", "earliest", "where a topic starts: earliest, latest or offset (with --offset)")
	f.Int64Var(&offset, "offset", 0, "start offset with --from offset")
	f.Int32SliceVarP(&partitions, "partition", "p", nil, "partitions to read (default all)")
	f.IntVarP(&count, "count", "n", 0, "stop after this many (0: no limit)")
	f.DurationVar(&idle, "idle", 0, "stop after this long with nothing new (0: wait forever)")
	f.BoolVarP(&atEnd, "exit-at-end", "E", false, "stop once the topic's records up to its end at start are written")
	f.StringVar(&format, "format", "value", "value or json")
	f.StringVarP(&keySep, "key-separator", "K", "", "write key SEP value")
	f.BoolVar(&showProgress, "progress", false, "report progress on standard error even when it is not a terminal")
	return cmd
}

// topicEnds returns each partition's high watermark, minus those already
// empty.
func (c *conn) topicEnds(ctx context.Context, cl *Client, topic string) (map[int32]int64, error) {
	var t struct {
		Partitions []struct {
			Partition      int32 `json:"partition"`
			LogStartOffset int64 `json:"log_start_offset"`
			HighWatermark  int64 `json:"high_watermark"`
		} `json:"partitions"`
	}
	if err := cl.Do(ctx, http.MethodGet, path("topics", topic), nil, nil, &t); err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	for _, p := range t.Partitions {
		if p.HighWatermark > p.LogStartOffset {
			ends[p.Partition] = p.HighWatermark
		}
	}
	return ends, nil
}

func (c *conn) consumeLoop(ctx context.Context, w *wsClient, count int, idle time.Duration, ends map[int32]int64, format, keySep string, prog *progress) error {
	out := bufio.NewWriter(c.out)
	defer out.Flush()
	var timer <-chan time.Time
	n := 0
	for {
		if ends != nil && len(ends) == 0 {
			return nil
		}
		if idle > 0 {
			timer = time.After(idle)
		}
		var m map[string]any
		var ok bool
		select {
		case m, ok = <-w.events:
			if !ok {
				return w.err
			}
		case <-timer:
			return nil
		case <-ctx.Done():
			return nil
		}
		switch m["type"] {
		case "record", "delivery":
		case "cancelled":
			return fmt.Errorf("the subscription ended: %v", m["reason"])
		case "error":
			return replyErr(m)
		default:
			continue
		}
		if err := writeEvent(out, m, format, keySep); err != nil {
			return err
		}
		if m["type"] == "delivery" {
			if err := out.Flush(); err != nil {
				return err
			}
			if err := w.notify(ctx, map[string]any{"type": "ack", "sub": m["sub"], "tag": m["tag"]}); err != nil {
				return err
			}
		}
		if ends != nil {
			p := int32(m["partition"].(float64))
			if end, ok := ends[p]; ok && int64(m["offset"].(float64)) >= end-1 {
				delete(ends, p)
			}
		}
		prog.add(1)
		n++
		if count > 0 && n >= count {
			return nil
		}
	}
}

// writeEvent writes a record or delivery as a line.
func writeEvent(out *bufio.Writer, m map[string]any, format, keySep string) error {
	if format == "json" {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		out.Write(b)
		return out.WriteByte('\n')
	}
	text := func(field string) string {
		if s, ok := m[field].(string); ok {
			return s
		}
		if s, ok := m[field+"_b64"].(string); ok {
			b, err := base64.StdEncoding.DecodeString(s)
			if err == nil {
				return string(b)
			}
		}
		return ""
	}
	if keySep != "" {
		key := text("key")
		if m["type"] == "delivery" {
			key, _ = m["routing_key"].(string)
		}
		out.WriteString(key)
		out.WriteString(keySep)
	}
	if m["type"] == "delivery" {
		out.WriteString(text("body"))
	} else {
		out.WriteString(text("value"))
	}
	return out.WriteByte('\n')
}
