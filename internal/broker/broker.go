package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfmq/wharf/internal/alarm"
	"github.com/wharfmq/wharf/internal/limits"
	"github.com/wharfmq/wharf/internal/storage"
)

// Options configures a Broker.
type Options struct {
	// DataDir holds the metadata log and every partition log.
	DataDir string
	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem under every log; nil means the real one.
	FS storage.FS
	// LogDefaults are the settings of a new topic's partition logs before
	// its own configs are applied.
	LogDefaults storage.LogConfig
	// RetentionCheckInterval is how often retention and segment age are
	// enforced; zero means five minutes.
	RetentionCheckInterval time.Duration
	// Groups configures consumer groups and committed offsets.
	Groups GroupOptions
	// QueueMemoryBytes is how many bytes of ready persistent messages a
	// durable queue keeps in memory; beyond it, messages stay in the
	// queue's log until delivered. Zero means 64 MiB, negative no limit.
	QueueMemoryBytes int64
	// ObserveSync, when not nil, is told the duration of every fsync of a
	// log segment (topics, queues and the broker's own logs).
	ObserveSync func(time.Duration)
	// Alarms configures the resource alarms (see Alarms); Dir defaults to
	// DataDir and Logger to the broker's.
	Alarms alarm.Options
	// MaxTopics and MaxQueuesPerVhost bound the topics and the queues of
	// each vhost (limits.go); zero means no limit.
	MaxTopics         int
	MaxQueuesPerVhost int
}

// Broker is the protocol-neutral core: it owns the metadata state machine
// and the partition logs. Lock order: mu (metadata changes) before
// topicsMu (the materialised registry).
type Broker struct {
	opts   Options
	logger *slog.Logger
	lock   *dirLock
	cmds   commandLog
	id     string // cluster id

	mu     sync.Mutex // serialises metadata changes and guards state
	state  *State
	closed bool

	topicsMu sync.RWMutex
	topics   map[string]*Topic
	byID     map[TopicID]string // topic ids to names, for requests that name topics by id

	groups *groupCoordinator // consumer groups and committed offsets
	txns   *txnCoordinator   // Kafka transactions; see txn.go
	alarms *alarm.Monitor    // resource alarms; see alarms.go

	pids producerIDs // Kafka producer ids; see producerids.go

	recovery recoveryTotals // what opening the logs took; see recovery.go

	amqp        amqpRuntime   // the AMQP model's read lock and routing scratch; see amqp_broker.go
	queues      queueRuntimes // queue delivery state, guarded by amqp.mu; see queue_registry.go
	publishPool sync.Pool     // *publishScratch

	dedupX dedupExchanges // deduplicating exchanges' windows, guarded by amqp.mu; see dedup_store.go

	refusals *limits.LogSampler // one log line per kind of limit refusal per interval

	stop chan struct{}
	wg   sync.WaitGroup
}

// Topic is a materialised topic: its identity and open partitions.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions []*Partition
}

// TopicInfo describes a topic for callers.
type TopicInfo struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    []ConfigEntry
}

// Open opens or creates the broker state in opts.DataDir: it takes the data
// directory's lock, replays the metadata log and opens every partition log,
// recovering each.
func Open(opts Options) (*Broker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FS == nil {
		opts.FS = storage.OSFS{}
	}
	if opts.RetentionCheckInterval <= 0 {
		opts.RetentionCheckInterval = 5 * time.Minute
	}
	if opts.QueueMemoryBytes == 0 {
		opts.QueueMemoryBytes = 64 << 20
	}
	if opts.LogDefaults == (storage.LogConfig{}) {
		opts.LogDefaults = storage.DefaultLogConfig()
	}
	if err := opts.LogDefaults.Validate(); err != nil {
		return nil, fmt.Errorf("log defaults: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(opts.DataDir, "topics"), 0o755); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	lock, err := lockDir(opts.DataDir)
	if err != nil {
		return nil, err
	}
	opened := time.Now()
	b := &Broker{opts: opts, logger: opts.Logger, lock: lock, state: NewState(), topics: map[string]*Topic{}, byID: map[TopicID]string{}, stop: make(chan struct{}),
		refusals: limits.NewLogSampler(opts.Logger, 0, opts.Now)}
	if b.id, err = loadClusterID(opts.DataDir); err != nil {
		b.closeAll(false)
		return nil, err
	}
	if err := b.load(); err != nil {
		b.closeAll(false)
		return nil, err
	}
	if err := b.openGroups(); err != nil {
		b.closeAll(false)
		return nil, err
	}
	if err := b.openTxns(); err != nil {
		b.closeAll(false)
		return nil, err
	}
	if err := b.openQueues(); err != nil {
		b.closeAll(false)
		return nil, err
	}
	if err := b.openDedup(); err != nil {
		b.closeAll(false)
		return nil, err
	}
	if err := b.reconcileStreams(context.Background()); err != nil {
		b.closeAll(false)
		return nil, err
	}
	b.openAlarms()
	b.alarms.Start()
	b.logRecovery(time.Since(opened))
	b.wg.Add(3)
	go b.janitor()
	go b.sweepTxns()
	go b.queueFlusher(time.Second)
	return b, nil
}

func (b *Broker) storageOptions() storage.Options {
	return storage.Options{FS: b.opts.FS, Now: b.opts.Now, Logger: b.logger, ObserveSync: b.opts.ObserveSync, OnOpen: b.recovery.add}
}

func (b *Broker) load() error {
	cmds, err := openLocalCommandLog(filepath.Join(b.opts.DataDir, "meta"), b.storageOptions())
	if err != nil {
		return err
	}
	b.cmds = cmds
	var n int
	if err := cmds.Replay(func(c Command) {
		n++
		if err := b.state.Apply(c); err != nil {
			b.logger.Debug("replayed command was a no-op", "command", c.kind(), "err", err)
		}
	}); err != nil {
		return err
	}
	for _, ts := range b.state.Topics() {
		if err := b.materialise(ts); err != nil {
			return err
		}
	}
	b.removeStrayPartitions()
	b.logger.Info("broker state loaded", "data_dir", b.opts.DataDir, "commands", n, "topics", len(b.topics))
	return nil
}

// removeStrayPartitions deletes partition directories that belong to no
// topic: what remains when a deletion was interrupted.
func (b *Broker) removeStrayPartitions() {
	dir := filepath.Join(b.opts.DataDir, "topics")
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.logger.Warn("listing partitions", "err", err)
		return
	}
	b.topicsMu.RLock()
	known := map[string]bool{}
	for _, t := range b.topics {
		for _, p := range t.Partitions {
			known[filepath.Base(p.log.Dir())] = true
		}
	}
	b.topicsMu.RUnlock()
	for _, e := range entries {
		if !known[e.Name()] {
			b.logger.Warn("removing the data of a deleted topic", "dir", e.Name())
			if err := b.opts.FS.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				b.logger.Warn("removing stray partition", "dir", e.Name(), "err", err)
			}
		}
	}
}

func (b *Broker) partitionDir(topic string, index int32) string {
	return filepath.Join(b.opts.DataDir, "topics", topic+"-"+strconv.Itoa(int(index)))
}

// materialise opens the partition logs a topic's state calls for and that
// are not open yet. Callers hold b.mu or own the broker exclusively.
func (b *Broker) materialise(ts TopicState) error {
	cfg, err := topicLogConfig(b.opts.LogDefaults, ts.Configs)
	if err != nil {
		b.logger.Warn("topic has an invalid stored config; using defaults", "topic", ts.Name, "err", err)
		cfg = b.opts.LogDefaults
	}
	b.topicsMu.RLock()
	t := b.topics[ts.Name]
	b.topicsMu.RUnlock()
	var parts []*Partition
	if t != nil {
		parts = t.Partitions
	}
	for i := int32(len(parts)); i < ts.Partitions; i++ {
		dir := b.partitionDir(ts.Name, i)
		if err := claimPartitionDir(b.opts.FS, dir, ts.ID); err != nil {
			return err
		}
		l, err := storage.Open(dir, cfg, b.storageOptions())
		if err != nil {
			return fmt.Errorf("opening partition %s-%d: %w", ts.Name, i, err)
		}
		part := &Partition{Topic: ts.Name, TopicID: ts.ID, Index: i, log: l}
		if err := part.rebuildProducers(); err != nil {
			l.Close()
			return fmt.Errorf("recovering producer state of %s-%d: %w", ts.Name, i, err)
		}
		parts = append(parts, part)
		// Publish each partition as soon as it is open so a failure part
		// way leaves the opened ones closable.
		b.topicsMu.Lock()
		b.topics[ts.Name] = &Topic{Name: ts.Name, ID: ts.ID, Partitions: parts[:len(parts):len(parts)]}
		b.byID[ts.ID] = ts.Name
		b.topicsMu.Unlock()
	}
	return nil
}

// claimPartitionDir makes dir belong to topic id, removing the data of an
// earlier topic of the same name if a deletion left it behind.
func claimPartitionDir(fs storage.FS, dir string, id TopicID) error {
	marker := filepath.Join(dir, "partition.metadata")
	want := "topic_id: " + id.String() + "\n"
	if got, err := fs.ReadFile(marker); err == nil {
		if string(got) == want {
			return nil
		}
		if err := fs.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing stale partition data in %s: %w", dir, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", marker, err)
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := fs.OpenFile(marker, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", marker, err)
	}
	_, werr := f.WriteAt([]byte(want), 0)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("writing %s: %w", marker, werr)
	}
	return fs.SyncDir(filepath.Dir(dir))
}

// commit makes a command durable and applies it. Callers hold b.mu and have
// validated c against the state.
func (b *Broker) commit(ctx context.Context, c Command) error {
	if b.closed {
		return ErrClosed
	}
	if err := b.cmds.Append(ctx, c); err != nil {
		return err
	}
	if err := b.state.Apply(c); err != nil {
		return fmt.Errorf("applying %s: %w", c.kind(), err)
	}
	b.logger.Info("metadata changed", "command", c.kind())
	return nil
}

// ValidateTopicName checks Kafka's rules: 1 to 249 characters of
// [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("%w: %q must be 1 to 249 characters and not \".\" or \"..\"", ErrInvalidTopic, name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("%w: %q has %q; only ASCII letters, digits, '.', '_' and '-' are allowed", ErrInvalidTopic, name, name[i])
	}
	return nil
}

// ValidateTopic checks what CreateTopic would check, without creating
// anything (Kafka's validate-only creation).
func (b *Broker) ValidateTopic(name string, partitions int32, configs map[string]string) error {
	if err := ValidateTopicName(name); err != nil {
		return err
	}
	if partitions < 1 || partitions > 1<<20 {
		return fmt.Errorf("%w: %d (want 1 to %d)", ErrInvalidPartitions, partitions, 1<<20)
	}
	if _, err := topicLogConfig(b.opts.LogDefaults, configs); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.state.Topic(name); ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	return b.checkTopicLimit(name)
}

// DescribeConfigs lists a topic's effective configs for the given explicit
// ones, without a topic (what a creation with them would get).
func (b *Broker) DescribeConfigs(configs map[string]string) []ConfigEntry {
	return describeTopicConfig(b.opts.LogDefaults, configs)
}

// CreateTopic creates a topic with the given partition count and explicit
// configs, durably, and opens its partitions.
func (b *Broker) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string) (TopicInfo, error) {
	if err := b.ValidateTopic(name, partitions, configs); err != nil {
		return TopicInfo{}, err
	}
	var id TopicID
	if _, err := rand.Read(id[:]); err != nil {
		return TopicInfo{}, fmt.Errorf("making a topic id: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.state.Topic(name); ok {
		return TopicInfo{}, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	if err := b.checkTopicLimit(name); err != nil {
		return TopicInfo{}, err
	}
	if err := b.commit(ctx, Command{CreateTopic: &CreateTopic{Name: name, ID: id, Partitions: partitions, Configs: configs}}); err != nil {
		return TopicInfo{}, err
	}
	ts, _ := b.state.Topic(name)
	if err := b.materialise(ts); err != nil {
		return TopicInfo{}, err
	}
	return b.info(ts), nil
}

// DeleteTopic deletes a topic and all of its data, and the stream queue
// whose log it is, if any (stream.go).
func (b *Broker) DeleteTopic(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if hiddenTopic(name) {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if err := b.deleteTopicLocked(ctx, name); err != nil {
		return err
	}
	return b.streamTopicDeleted(ctx, name)
}

// deleteTopicLocked deletes a topic and its data. Callers hold b.mu.
func (b *Broker) deleteTopicLocked(ctx context.Context, name string) error {
	ts, ok := b.state.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if err := b.commit(ctx, Command{DeleteTopic: &DeleteTopic{Name: name, ID: ts.ID}}); err != nil {
		return err
	}
	b.topicsMu.Lock()
	t := b.topics[name]
	delete(b.topics, name)
	delete(b.byID, ts.ID)
	b.topicsMu.Unlock()
	b.groups.topicDeleted(name)
	var errs []error
	if t != nil {
		for _, p := range t.Partitions {
			if err := p.log.Delete(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SetTopicConfig replaces a topic's explicit configs (Kafka's AlterConfigs);
// callers that change single keys use UpdateTopicConfig.
func (b *Broker) SetTopicConfig(ctx context.Context, name string, configs map[string]string) error {
	return b.UpdateTopicConfig(ctx, name, false, func(map[string]string) (map[string]string, error) { return configs, nil })
}

// CreatePartitions grows a topic to total partitions.
func (b *Broker) CreatePartitions(ctx context.Context, name string, total int32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts, ok := b.state.Topic(name)
	if !ok || hiddenTopic(name) {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if total <= ts.Partitions || total > 1<<20 {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger and at most %d, not %d",
			ErrInvalidPartitions, name, ts.Partitions, 1<<20, total)
	}
	if err := b.commit(ctx, Command{CreatePartitions: &CreatePartitions{Name: name, Total: total}}); err != nil {
		return err
	}
	ts, _ = b.state.Topic(name)
	return b.materialise(ts)
}

func (b *Broker) info(ts TopicState) TopicInfo {
	return TopicInfo{Name: ts.Name, ID: ts.ID, Partitions: ts.Partitions, Configs: describeTopicConfig(b.opts.LogDefaults, ts.Configs)}
}

// ClusterID is the data directory's stable cluster id.
func (b *Broker) ClusterID() string { return b.id }

// TopicByID returns the name of the topic with the given id.
func (b *Broker) TopicByID(id TopicID) (string, bool) {
	b.topicsMu.RLock()
	defer b.topicsMu.RUnlock()
	name, ok := b.byID[id]
	return name, ok && !hiddenTopic(name)
}

// Topic describes one topic.
func (b *Broker) Topic(name string) (TopicInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts, ok := b.state.Topic(name)
	if !ok || hiddenTopic(name) {
		return TopicInfo{}, false
	}
	return b.info(ts), true
}

// Topics describes every topic, sorted by name. The hidden logs of stream
// queues (stream.go) are not topics to callers.
func (b *Broker) Topics() []TopicInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.state.Topics()
	out := make([]TopicInfo, 0, len(all))
	for _, ts := range all {
		if !hiddenTopic(ts.Name) {
			out = append(out, b.info(ts))
		}
	}
	return out
}

// Partition returns an open partition.
func (b *Broker) Partition(topic string, index int32) (*Partition, error) {
	b.topicsMu.RLock()
	defer b.topicsMu.RUnlock()
	t, ok := b.topics[topic]
	if !ok || hiddenTopic(topic) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, topic)
	}
	if index < 0 || int(index) >= len(t.Partitions) {
		return nil, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, index)
	}
	return t.Partitions[index], nil
}

// janitor enforces retention and segment age on every partition.
func (b *Broker) janitor() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.ApplyRetention()
		}
	}
}

// ApplyRetention runs one retention pass over every partition now. The
// janitor calls it periodically.
func (b *Broker) ApplyRetention() {
	now := b.opts.Now()
	b.topicsMu.RLock()
	var parts []*Partition
	for _, t := range b.topics {
		parts = append(parts, t.Partitions...)
	}
	b.topicsMu.RUnlock()
	for _, p := range parts {
		n, err := p.log.ApplyRetention(now)
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			b.logger.Warn("retention", "topic", p.Topic, "partition", p.Index, "err", err)
		}
		if n > 0 {
			b.logger.Debug("retention deleted segments", "topic", p.Topic, "partition", p.Index, "segments", n)
		}
	}
}

// Close stops background work, then fsyncs and closes every log. It is safe
// to call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	b.alarms.Close()
	b.wg.Wait()
	return b.closeAll(true)
}

// closeAll closes everything that is open. With clean (a Close, not an
// Open that failed part way), it leaves the clean-shutdown mark if every
// queue was closed without error.
func (b *Broker) closeAll(clean bool) error {
	var errs []error
	b.closeDedup()
	if err := b.closeQueues(); err != nil {
		errs = append(errs, err)
	} else if clean {
		if err := writeCleanMark(b.opts.FS, b.opts.DataDir); err != nil {
			errs = append(errs, err)
		}
	}
	if b.txns != nil {
		if err := b.txns.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the transaction log: %w", err))
		}
	}
	if b.groups != nil {
		if err := b.groups.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the offsets log: %w", err))
		}
	}
	b.topicsMu.Lock()
	for _, t := range b.topics {
		for _, p := range t.Partitions {
			if err := p.log.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing %s-%d: %w", p.Topic, p.Index, err))
			}
		}
	}
	b.topics = map[string]*Topic{}
	b.byID = map[TopicID]string{}
	b.topicsMu.Unlock()
	if b.cmds != nil {
		if err := b.cmds.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if b.lock != nil {
		if err := b.lock.release(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
