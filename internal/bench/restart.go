package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RestartOptions is one restart measurement: a data directory filled with
// Bytes of data over Topics Kafka topics and Queues durable AMQP queues,
// then `Exe serve` restarted on it Runs times after a clean stop (SIGTERM)
// and Runs times after a crash (SIGKILL).
type RestartOptions struct {
	Exe         string   // the wharf binary
	WorkDir     string   // where the temporary data directory goes
	Bytes       int64    // data to write, split between topics and queues by their counts
	Topics      int      // Kafka topics of one partition
	Queues      int      // durable queues of persistent messages
	MessageSize int      // bytes of each record value and message body
	Runs        int      // restarts of each kind
	ServeArgs   []string // more `serve` flags
	// Log, when not nil, receives the servers' logs.
	Log io.Writer
	// Progress, when not nil, is told what the bench is doing.
	Progress func(string)
}

// RestartRun is one timed start, every figure from the exec of `wharf
// serve`.
type RestartRun struct {
	ReadyMs      float64 `json:"ready_ms"`       // /readyz answered 200
	FirstFetchMs float64 `json:"first_fetch_ms"` // a Kafka fetch returned a record
	FirstGetMs   float64 `json:"first_get_ms"`   // an AMQP basic.get returned a message
	// OpenMs is how long the broker took to open its logs, from its log.
	OpenMs float64 `json:"open_ms"`
	// Recovery is the broker's startup line: "clean start" or "recovered
	// an unclean shutdown"; ScannedBytes what it read batch by batch.
	Recovery     string `json:"recovery"`
	ScannedBytes int64  `json:"scanned_bytes"`
	// StopMs is, for a clean run, how long the SIGTERM that followed took
	// to end the process.
	StopMs float64 `json:"stop_ms,omitempty"`
}

// RestartKind is the runs of one kind and their medians.
type RestartKind struct {
	Runs         []RestartRun `json:"runs"`
	ReadyMs      float64      `json:"ready_ms_median"`
	FirstFetchMs float64      `json:"first_fetch_ms_median"`
	FirstGetMs   float64      `json:"first_get_ms_median"`
	OpenMs       float64      `json:"open_ms_median"`
	StopMs       float64      `json:"stop_ms_median,omitempty"`
}

// RestartResult is what a restart measurement found.
type RestartResult struct {
	Bench       string  `json:"bench"`
	FillVia     string  `json:"fill_via"`
	DataBytes   int64   `json:"data_bytes"` // on disk after the fill
	Topics      int     `json:"topics"`
	Queues      int     `json:"queues"`
	MessageSize int     `json:"message_size"`
	Records     int64   `json:"records"`  // Kafka records written
	Messages    int64   `json:"messages"` // AMQP messages written
	FillSeconds float64 `json:"fill_seconds"`
	FillMBPerS  float64 `json:"fill_mb_per_sec"`
	// Clean: starts after SIGTERM. Unclean: starts after SIGKILL, which
	// recover the active segments.
	Clean   RestartKind `json:"clean"`
	Unclean RestartKind `json:"unclean"`
}

func (o *RestartOptions) defaults() error {
	if o.Exe == "" {
		return errors.New("restart bench: no wharf binary")
	}
	if o.WorkDir == "" {
		o.WorkDir = os.TempDir()
	}
	if o.Topics < 0 || o.Queues < 0 || o.Topics+o.Queues == 0 {
		return errors.New("restart bench: need at least one topic or queue")
	}
	if o.MessageSize <= 0 {
		o.MessageSize = 1024
	}
	if o.Bytes <= 0 {
		o.Bytes = 1 << 30
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	return nil
}

// RunRestart fills a fresh data directory through the Kafka and AMQP
// listeners of a `wharf serve` child, stops it cleanly, and times
// restarts; the data directory is removed at the end.
func RunRestart(ctx context.Context, o RestartOptions) (RestartResult, error) {
	if err := o.defaults(); err != nil {
		return RestartResult{}, err
	}
	data, err := os.MkdirTemp(o.WorkDir, "wharf-bench-restart-")
	if err != nil {
		return RestartResult{}, err
	}
	defer os.RemoveAll(data)
	b := &restartBench{o: o, data: data}
	for _, addr := range []*string{&b.http, &b.kafka, &b.amqp} {
		port, err := freeLoopbackPort()
		if err != nil {
			return RestartResult{}, err
		}
		*addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	res := RestartResult{
		Bench: "restart", Topics: o.Topics, Queues: o.Queues, MessageSize: o.MessageSize,
		FillVia: "Kafka produce (franz-go, acks=all) and AMQP publish (amqp091-go, persistent, confirms) to a wharf serve child over loopback",
	}

	o.Progress("filling " + data)
	s, err := b.start(ctx)
	if err != nil {
		return res, err
	}
	fillStart := time.Now()
	if err := b.fill(ctx, &res); err != nil {
		s.kill()
		return res, fmt.Errorf("filling: %w", err)
	}
	res.FillSeconds = time.Since(fillStart).Seconds()
	if _, err := s.stop(); err != nil {
		return res, err
	}
	if res.DataBytes, err = dirSize(data); err != nil {
		return res, err
	}
	res.FillMBPerS = float64(res.DataBytes) / 1e6 / res.FillSeconds

	for i := range o.Runs {
		o.Progress(fmt.Sprintf("clean restart %d/%d", i+1, o.Runs))
		run, s, err := b.timedStart(ctx, i)
		if err != nil {
			return res, err
		}
		stop, err := s.stop()
		if err != nil {
			return res, err
		}
		run.StopMs = ms(stop)
		res.Clean.Runs = append(res.Clean.Runs, run)
	}
	// A start after a clean stop, killed: the next start recovers.
	s, err = b.start(ctx)
	if err != nil {
		return res, err
	}
	s.kill()
	for i := range o.Runs {
		o.Progress(fmt.Sprintf("restart after SIGKILL %d/%d", i+1, o.Runs))
		run, s, err := b.timedStart(ctx, i)
		if err != nil {
			return res, err
		}
		s.kill()
		res.Unclean.Runs = append(res.Unclean.Runs, run)
	}
	res.Clean.summarise()
	res.Unclean.summarise()
	return res, nil
}

func (k *RestartKind) summarise() {
	med := func(get func(RestartRun) float64) float64 {
		var v []float64
		for _, r := range k.Runs {
			v = append(v, get(r))
		}
		return median(v)
	}
	k.ReadyMs = med(func(r RestartRun) float64 { return r.ReadyMs })
	k.FirstFetchMs = med(func(r RestartRun) float64 { return r.FirstFetchMs })
	k.FirstGetMs = med(func(r RestartRun) float64 { return r.FirstGetMs })
	k.OpenMs = med(func(r RestartRun) float64 { return r.OpenMs })
	k.StopMs = med(func(r RestartRun) float64 { return r.StopMs })
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// restartBench is one restart measurement in progress.
type restartBench struct {
	o                 RestartOptions
	data              string
	http, kafka, amqp string
}

func (b *restartBench) topic(i int) string { return fmt.Sprintf("restart-%d", i) }
func (b *restartBench) queue(i int) string { return fmt.Sprintf("restart-%d", i) }
func (b *restartBench) amqpURL() string    { return "amqp://guest:guest@" + b.amqp + "/" }

// server is a running `wharf serve`.
type server struct {
	cmd     *exec.Cmd
	started time.Time
	log     *lockedBuffer
	exited  chan struct{}
	err     error // Wait's, once exited is closed
}

// start runs `wharf serve` on the data directory and waits until it is
// ready.
func (b *restartBench) start(ctx context.Context) (*server, error) {
	args := append([]string{"serve", "--data-dir", b.data, "--http-listen", b.http, "--kafka-listen", b.kafka,
		"--amqp-listen", b.amqp, "--log-level", "info", "--auto-create-topics=false"}, b.o.ServeArgs...)
	s := &server{cmd: exec.Command(b.o.Exe, args...), log: &lockedBuffer{}, exited: make(chan struct{})}
	var out io.Writer = s.log
	if b.o.Log != nil {
		out = io.MultiWriter(s.log, b.o.Log)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = childSysProcAttr()
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s serve: %w", b.o.Exe, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	if err := b.waitReady(ctx, s); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200.
func (b *restartBench) waitReady(ctx context.Context, s *server) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if resp, err := client.Get("http://" + b.http + "/readyz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("wharf serve exited before it was ready: %v\n%s", s.err, s.log.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wharf serve not ready after 10 minutes:\n%s", s.log.String())
		}
	}
}

// stop sends SIGTERM and waits for a successful exit; it returns how long
// that took.
func (s *server) stop() (time.Duration, error) {
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Minute):
		s.kill()
		return 0, errors.New("wharf serve still running 10 minutes after SIGTERM")
	}
	took := time.Since(start)
	if s.err != nil {
		return took, fmt.Errorf("wharf serve after SIGTERM: %v\n%s", s.err, s.log.String())
	}
	return took, nil
}

// kill sends SIGKILL and waits until the process is gone.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

var (
	recoveryLine = regexp.MustCompile(`msg="(clean start|recovered an unclean shutdown)".*scanned_bytes=(\d+).*took=(\S+)`)
)

// timedStart starts the server and times it to ready, to a first fetched
// record and to a first got message (the two concurrently).
func (b *restartBench) timedStart(ctx context.Context, i int) (RestartRun, *server, error) {
	var run RestartRun
	s, err := b.start(ctx)
	if err != nil {
		return run, nil, err
	}
	run.ReadyMs = ms(time.Since(s.started))
	var wg sync.WaitGroup
	var fetchErr, getErr error
	if b.o.Topics > 0 {
		wg.Go(func() {
			fetchErr = b.firstFetch(ctx, b.topic(i%b.o.Topics))
			run.FirstFetchMs = ms(time.Since(s.started))
		})
	}
	if b.o.Queues > 0 {
		wg.Go(func() {
			getErr = b.firstGet(b.queue(i % b.o.Queues))
			run.FirstGetMs = ms(time.Since(s.started))
		})
	}
	wg.Wait()
	if err := errors.Join(fetchErr, getErr); err != nil {
		s.kill()
		return run, nil, err
	}
	m := recoveryLine.FindStringSubmatch(s.log.String())
	if m == nil {
		s.kill()
		return run, nil, fmt.Errorf("no recovery line in the server's log:\n%s", s.log.String())
	}
	run.Recovery = m[1]
	run.ScannedBytes, _ = strconv.ParseInt(m[2], 10, 64)
	if d, err := time.ParseDuration(m[3]); err == nil {
		run.OpenMs = ms(d)
	}
	return run, s, nil
}

// firstFetch fetches topic's partition 0 from the start until a record
// comes back.
func (b *restartBench) firstFetch(ctx context.Context, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.kafka),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		fs := cl.PollRecords(ctx, 1)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("fetching %s: %w", topic, err)
		}
		if fs.NumRecords() > 0 {
			return nil
		}
	}
}

// firstGet gets a message from queue without acknowledging it (it goes
// back to the queue when the connection closes).
func (b *restartBench) firstGet(queue string) error {
	c, err := amqp.Dial(b.amqpURL())
	if err != nil {
		return err
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, ok, err := ch.Get(queue, false)
		if err != nil {
			return fmt.Errorf("basic.get from %s: %w", queue, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue %s empty for 5 minutes", queue)
		}
		time.Sleep(time.Millisecond)
	}
}

// fill writes the data: Kafka and AMQP at the same time.
func (b *restartBench) fill(ctx context.Context, res *RestartResult) error {
	total := b.o.Topics + b.o.Queues
	kafkaBytes := b.o.Bytes * int64(b.o.Topics) / int64(total)
	amqpBytes := b.o.Bytes - kafkaBytes
	value := make([]byte, b.o.MessageSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	var wg sync.WaitGroup
	var kerr, aerr error
	if b.o.Topics > 0 {
		perTopic := max(1, kafkaBytes/int64(b.o.Topics)/int64(b.o.MessageSize))
		res.Records = perTopic * int64(b.o.Topics)
		wg.Go(func() { kerr = b.fillKafka(ctx, perTopic, value) })
	}
	if b.o.Queues > 0 {
		perQueue := max(1, amqpBytes/int64(b.o.Queues)/int64(b.o.MessageSize))
		res.Messages = perQueue * int64(b.o.Queues)
		wg.Go(func() { aerr = b.fillAMQP(ctx, perQueue, value) })
	}
	wg.Wait()
	return errors.Join(kerr, aerr)
}

func (b *restartBench) fillKafka(ctx context.Context, perTopic int64, value []byte) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.kafka), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(1<<16), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // stored as written: the data size is what was sent
	if err != nil {
		return err
	}
	defer cl.Close()
	topics := make([]string, b.o.Topics)
	for i := range topics {
		topics[i] = b.topic(i)
	}
	created, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, topics...)
	if err != nil {
		return err
	}
	if err := created.Error(); err != nil {
		return err
	}
	var mu sync.Mutex
	var firstErr error
	for n := range perTopic {
		for _, t := range topics {
			cl.Produce(ctx, &kgo.Record{Topic: t, Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
				}
			})
		}
		if n%1024 == 0 {
			mu.Lock()
			err := firstErr
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("produce: %w", err)
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return fmt.Errorf("produce: %w", firstErr)
	}
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// fillAMQP publishes perQueue persistent messages to each durable queue,
// over a few connections (each a confirm-mode channel with a window of
// unconfirmed publishes).
func (b *restartBench) fillAMQP(ctx context.Context, perQueue int64, body []byte) error {
	const window = 512
	workers := min(b.o.Queues, 4)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			errs[w] = func() error {
				c, err := amqp.Dial(b.amqpURL())
				if err != nil {
					return err
				}
				defer c.Close()
				ch, err := c.Channel()
				if err != nil {
					return err
				}
				var queues []string
				for q := w; q < b.o.Queues; q += workers {
					name := b.queue(q)
					if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
						return err
					}
					queues = append(queues, name)
				}
				if err := ch.Confirm(false); err != nil {
					return err
				}
				var pending []*amqp.DeferredConfirmation
				wait := func(dc *amqp.DeferredConfirmation) error {
					ok, err := dc.WaitContext(ctx)
					if err == nil && !ok {
						err = errors.New("publish nacked")
					}
					return err
				}
				for range perQueue {
					for _, q := range queues {
						dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false,
							amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
						if err != nil {
							return err
						}
						pending = append(pending, dc)
						if len(pending) >= window {
							if err := wait(pending[0]); err != nil {
								return err
							}
							pending = pending[1:]
						}
					}
				}
				for _, dc := range pending {
					if err := wait(dc); err != nil {
						return err
					}
				}
				return nil
			}()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dirSize adds up the sizes of the files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
