package broker

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// topicConfigKey is one per-topic setting: how to parse it onto a log's
// settings, and how to show the effective value.
type topicConfigKey struct {
	name string
	set  func(v string, c *storage.LogConfig) error
	get  func(c storage.LogConfig) string
}

// ConfigEntry is one effective topic setting.
type ConfigEntry struct {
	Name      string
	Value     string
	IsDefault bool // true when the topic does not set it explicitly
}

func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside [%d, %d]", n, lo, hi)
	}
	return n, nil
}

func msString(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// topicConfigKeys lists every setting a topic accepts, by Kafka's names,
// plus Wharf's durability settings.
func topicConfigKeys() []topicConfigKey {
	const maxInt64 = 1<<63 - 1
	return []topicConfigKey{
		{"cleanup.policy", func(v string, c *storage.LogConfig) error {
			switch v {
			case "delete":
				return nil
			case "compact", "compact,delete", "delete,compact":
				return fmt.Errorf("%q: log compaction is not supported yet; only \"delete\" is", v)
			}
			return fmt.Errorf("%q: want \"delete\"", v)
		}, func(storage.LogConfig) string { return "delete" }},
		{"retention.ms", func(v string, c *storage.LogConfig) error {
			n, err := parseInt(v, -1, maxInt64/int64(time.Millisecond))
			c.RetentionAge = time.Duration(n) * time.Millisecond
			return err
		}, func(c storage.LogConfig) string {
			if c.RetentionAge <= 0 {
				return "-1"
			}
			return msString(c.RetentionAge)
		}},
		{"retention.bytes", func(v string, c *storage.LogConfig) error {
			n, err := parseInt(v, -1, maxInt64)
			c.RetentionBytes = n
			return err
		}, func(c storage.LogConfig) string {
			if c.RetentionBytes <= 0 {
				return "-1"
			}
			return strconv.FormatInt(c.RetentionBytes, 10)
		}},
		{"segment.bytes", func(v string, c *storage.LogConfig) error {
			n, err := parseInt(v, 14, 1<<31-1)
			c.SegmentBytes = n
			return err
		}, func(c storage.LogConfig) string { return strconv.FormatInt(c.SegmentBytes, 10) }},
		{"segment.ms", func(v string, c *storage.LogConfig) error {
			n, err := parseInt(v, 1, maxInt64/int64(time.Millisecond))
			c.SegmentAge = time.Duration(n) * time.Millisecond
			return err
		}, func(c storage.LogConfig) string { return msString(c.SegmentAge) }},
		{"max.message.bytes", func(v string, c *storage.LogConfig) error {
			n, err := parseInt(v, 61, 1<<31-1)
			c.MaxBatchBytes = int(n)
			return err
		}, func(c storage.LogConfig) string { return strconv.Itoa(c.MaxBatchBytes) }},
		{"message.timestamp.type", func(v string, c *storage.LogConfig) error {
			switch v {
			case "CreateTime":
				c.TimestampType = storage.CreateTime
			case "LogAppendTime":
				c.TimestampType = storage.LogAppendTime
			default:
				return fmt.Errorf("%q: want CreateTime or LogAppendTime", v)
			}
			return nil
		}, func(c storage.LogConfig) string {
			if c.TimestampType == storage.LogAppendTime {
				return "LogAppendTime"
			}
			return "CreateTime"
		}},
		{"index.interval.bytes", func(v string, c *storage.LogConfig) error {
			n, err := parseInt(v, 1, 1<<31-1)
			c.IndexIntervalBytes = int(n)
			return err
		}, func(c storage.LogConfig) string { return strconv.Itoa(c.IndexIntervalBytes) }},
		{"wharf.fsync.policy", func(v string, c *storage.LogConfig) error {
			p, err := storage.ParseFsyncPolicy(v)
			c.Fsync = p
			return err
		}, func(c storage.LogConfig) string { return c.Fsync.String() }},
		{"wharf.fsync.interval.ms", func(v string, c *storage.LogConfig) error {
			n, err := parseInt(v, 1, maxInt64/int64(time.Millisecond))
			c.FsyncInterval = time.Duration(n) * time.Millisecond
			return err
		}, func(c storage.LogConfig) string { return msString(c.FsyncInterval) }},
	}
}

// topicLogConfig applies a topic's explicit configs over the defaults and
// validates the result. Errors wrap ErrInvalidConfig and name the key.
func topicLogConfig(defaults storage.LogConfig, configs map[string]string) (storage.LogConfig, error) {
	keys := topicConfigKeys()
	byName := make(map[string]topicConfigKey, len(keys))
	for _, k := range keys {
		byName[k.name] = k
	}
	cfg := defaults
	names := make([]string, 0, len(configs))
	for name := range configs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		k, ok := byName[name]
		if !ok {
			return cfg, fmt.Errorf("%w: unknown config %q", ErrInvalidConfig, name)
		}
		if err := k.set(configs[name], &cfg); err != nil {
			return cfg, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, name, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return cfg, nil
}

// describeTopicConfig lists every setting with its effective value.
func describeTopicConfig(defaults storage.LogConfig, configs map[string]string) []ConfigEntry {
	cfg, err := topicLogConfig(defaults, configs)
	if err != nil {
		cfg = defaults
	}
	keys := topicConfigKeys()
	out := make([]ConfigEntry, 0, len(keys))
	for _, k := range keys {
		v, explicit := configs[k.name]
		if !explicit {
			v = k.get(cfg)
		}
		out = append(out, ConfigEntry{Name: k.name, Value: v, IsDefault: !explicit})
	}
	return out
}
