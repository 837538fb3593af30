package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// BridgeConfig is one bridge rule: every record of a Kafka topic (all its
// partitions) is published into an AMQP exchange. Rules are given only in
// the YAML file, as a list under bridges:.
type BridgeConfig struct {
	// Name identifies the rule; its position in each partition is kept
	// under this name, so renaming a rule starts it afresh.
	Name string `yaml:"name"`
	// Topic is the Kafka topic read.
	Topic string `yaml:"topic"`
	// Vhost is the exchange's vhost; empty means "/".
	Vhost string `yaml:"vhost"`
	// Exchange is the exchange records are published to; it must not be
	// the default exchange ("").
	Exchange string `yaml:"exchange"`
	// RoutingKey, when set, is the routing key of every record; otherwise
	// a record's key is its routing key.
	RoutingKey string `yaml:"routing_key"`
	// Start is where a new rule begins in each partition: earliest (the
	// log start) or latest (records produced from then on). Empty means
	// latest. A rule that has a stored position resumes from it, and
	// partitions added after the rule began are read from their start.
	Start string `yaml:"start"`
}

// Bridge start positions.
const (
	BridgeStartEarliest = "earliest"
	BridgeStartLatest   = "latest"
)

// validateBridges checks every bridge rule: a unique non-empty name, a
// topic, an exchange other than the default one, names AMQP and Kafka can
// carry and a known start.
func (c Config) validateBridges() error {
	seen := map[string]bool{}
	for i, r := range c.Bridges {
		key := fmt.Sprintf("bridges[%d]", i)
		if err := checkBridge(r); err != nil {
			return &FieldError{Key: key, Err: err}
		}
		if seen[r.Name] {
			return &FieldError{Key: key, Err: fmt.Errorf("name %q: used by an earlier rule", r.Name)}
		}
		seen[r.Name] = true
	}
	return nil
}

// checkBridge checks one rule alone.
func checkBridge(r BridgeConfig) error {
	switch {
	case r.Name == "":
		return errors.New("name: must not be empty")
	case len(r.Name) > 200 || strings.ContainsFunc(r.Name, func(c rune) bool { return c < 0x20 || c == 0x7f }):
		return fmt.Errorf("name %q: at most 200 bytes, no control characters", r.Name)
	case r.Topic == "":
		return fmt.Errorf("rule %q: topic: must not be empty", r.Name)
	case len(r.Topic) > 249:
		return fmt.Errorf("rule %q: topic: longer than 249 bytes", r.Name)
	case r.Exchange == "":
		return fmt.Errorf("rule %q: exchange: must not be empty (the default exchange cannot be bridged to)", r.Name)
	}
	for _, s := range []struct{ key, v string }{{"vhost", r.Vhost}, {"exchange", r.Exchange}, {"routing_key", r.RoutingKey}} {
		if len(s.v) > 255 || !utf8.ValidString(s.v) {
			return fmt.Errorf("rule %q: %s %q: must be UTF-8 of at most 255 bytes", r.Name, s.key, s.v)
		}
	}
	if r.Start != "" {
		if err := oneOf(r.Start, []string{BridgeStartEarliest, BridgeStartLatest}); err != nil {
			return fmt.Errorf("rule %q: start: %w", r.Name, err)
		}
	}
	return nil
}
