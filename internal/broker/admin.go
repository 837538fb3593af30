package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// maxPartitions bounds a topic's partition count.
const maxPartitions = 1 << 20

// ValidateCreatePartitions checks what CreatePartitions would check, without
// changing anything.
func (b *Broker) ValidateCreatePartitions(name string, total int32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts, ok := b.state.Topic(name)
	if !ok || hiddenTopic(name) {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if total <= ts.Partitions || total > maxPartitions {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger and at most %d, not %d",
			ErrInvalidPartitions, name, ts.Partitions, maxPartitions, total)
	}
	return nil
}

// BuiltinTopicConfigs lists the topic configs with the values they have
// when neither the topic nor the broker's log settings change them: Kafka's
// defaults, plus Wharf's own settings at theirs.
func BuiltinTopicConfigs() []ConfigEntry {
	return describeTopicConfig(storage.DefaultLogConfig(), nil)
}

// RetentionCheckInterval is how often retention and segment age are
// enforced.
func (b *Broker) RetentionCheckInterval() time.Duration { return b.opts.RetentionCheckInterval }

// UpdateTopicConfig changes a topic's explicit configs atomically with
// respect to other metadata changes: update gets a copy of the current ones
// and returns the new set, which is validated and, unless validateOnly, made
// durable and applied to the topic's partitions.
func (b *Broker) UpdateTopicConfig(ctx context.Context, name string, validateOnly bool, update func(map[string]string) (map[string]string, error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts, ok := b.state.Topic(name)
	if !ok || hiddenTopic(name) {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if ts.Configs == nil {
		ts.Configs = map[string]string{}
	}
	configs, err := update(ts.Configs)
	if err != nil {
		return err
	}
	cfg, err := topicLogConfig(b.opts.LogDefaults, configs)
	if err != nil || validateOnly {
		return err
	}
	if err := b.commit(ctx, Command{SetTopicConfig: &SetTopicConfig{Name: name, Configs: configs}}); err != nil {
		return err
	}
	b.topicsMu.RLock()
	t := b.topics[name]
	b.topicsMu.RUnlock()
	for _, p := range t.Partitions {
		if err := p.log.SetConfig(cfg); err != nil {
			return err
		}
	}
	return nil
}
