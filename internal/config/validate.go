package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError reports a setting whose value cannot work.
type FieldError struct {
	// Key is the setting's YAML key, such as "storage.fsync". It is
	// "storage" for a combination of storage settings that is invalid as a
	// whole.
	Key string
	// Flag is the setting's flag without dashes, or empty.
	Flag string
	// Err says why.
	Err error
}

func (e *FieldError) Error() string {
	if e.Flag == "" {
		return fmt.Sprintf("%s: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("%s (--%s): %v", e.Key, e.Flag, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// fieldError wraps err in a FieldError for the setting with yamlKey.
func fieldError(yamlKey string, err error) *FieldError {
	s, _ := lookup(yamlKey)
	return &FieldError{Key: yamlKey, Flag: s.Flag, Err: err}
}

// Validate reports the first setting that cannot work, as a *FieldError.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fieldError("data_dir", errors.New("must not be empty"))
	}
	for _, l := range []struct{ key, addr string }{
		{"kafka_listen", c.KafkaListen},
		{"amqp_listen", c.AMQPListen},
		{"http_listen", c.HTTPListen},
		{"kafka_tls_listen", c.KafkaTLSListen},
		{"amqps_listen", c.AMQPSListen},
		{"https_listen", c.HTTPSListen},
	} {
		if err := checkListen(l.addr); err != nil {
			return fieldError(l.key, err)
		}
	}
	if c.KafkaAdvertise != "" {
		if err := checkListen(c.KafkaAdvertise); err != nil {
			return fieldError("kafka_advertise", err)
		}
	}
	if c.KafkaTLSAdvertise != "" {
		if err := checkListen(c.KafkaTLSAdvertise); err != nil {
			return fieldError("kafka_tls_advertise", err)
		}
	}
	if c.Limits.MaxLoginFailures < 0 {
		return fieldError("limits.max_login_failures", fmt.Errorf("%d: must be 0 (no limit) or positive", c.Limits.MaxLoginFailures))
	}
	if c.Limits.MaxLoginFailures > 0 && c.Limits.LoginFailureWindow <= 0 {
		return fieldError("limits.login_failure_window", fmt.Errorf("%v: must be positive", c.Limits.LoginFailureWindow))
	}
	if c.KafkaVhost == "" {
		return fieldError("kafka_vhost", errors.New("must not be empty"))
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if c.KafkaMaxRequestBytes < 1024 || c.KafkaMaxRequestBytes > 1<<30 {
		return fieldError("kafka_max_request_bytes", fmt.Errorf("%d: must be between 1024 and %d", c.KafkaMaxRequestBytes, 1<<30))
	}
	if c.KafkaFetchMaxBytes < 1024 || c.KafkaFetchMaxBytes > 1<<30 {
		return fieldError("kafka_fetch_max_bytes", fmt.Errorf("%d: must be between 1024 and %d", c.KafkaFetchMaxBytes, 1<<30))
	}
	if c.KafkaConnectionsMaxIdle < 0 {
		return fieldError("kafka_connections_max_idle", fmt.Errorf("%v: must not be negative", c.KafkaConnectionsMaxIdle))
	}
	if c.TCPKeepAlive < 0 || c.TCPKeepAlive%time.Second != 0 {
		return fieldError("tcp_keepalive", fmt.Errorf("%v: must be whole seconds, or 0 to disable keepalive", c.TCPKeepAlive))
	}
	if c.DefaultPartitions < 1 || c.DefaultPartitions > 1<<20 {
		return fieldError("default_partitions", fmt.Errorf("%d: must be between 1 and %d", c.DefaultPartitions, 1<<20))
	}
	if err := oneOf(c.LogLevel, []string{"debug", "info", "warn", "error"}); err != nil {
		return fieldError("log_level", err)
	}
	if err := oneOf(c.LogFormat, []string{"text", "json"}); err != nil {
		return fieldError("log_format", err)
	}
	if c.AMQPMaxMessageBytes < 1 || c.AMQPMaxMessageBytes > 512<<20 {
		return fieldError("amqp_max_message_bytes", fmt.Errorf("%d: must be between 1 and %d (RabbitMQ's limit)", c.AMQPMaxMessageBytes, 512<<20))
	}
	if c.AMQPHeartbeat < 0 || c.AMQPHeartbeat > 65535*time.Second || c.AMQPHeartbeat%time.Second != 0 {
		return fieldError("amqp_heartbeat", fmt.Errorf("%v: must be whole seconds between 0 and 65535s", c.AMQPHeartbeat))
	}
	if c.AMQPConsumerTimeout < 0 || c.AMQPConsumerTimeout%time.Millisecond != 0 {
		return fieldError("amqp_consumer_timeout", fmt.Errorf("%v: must be whole milliseconds, 0 or more", c.AMQPConsumerTimeout))
	}
	if c.AMQPQueueMemoryBytes == 0 || c.AMQPQueueMemoryBytes < -1 {
		return fieldError("amqp_queue_memory_bytes", fmt.Errorf("%d: must be positive, or -1 for no limit", c.AMQPQueueMemoryBytes))
	}
	if c.WebSocket.PingInterval < time.Second {
		return fieldError("websocket.ping_interval", fmt.Errorf("%v: must be at least 1s", c.WebSocket.PingInterval))
	}
	if c.WebSocket.MaxMessageBytes < 1024 || c.WebSocket.MaxMessageBytes > 64<<20 {
		return fieldError("websocket.max_message_bytes", fmt.Errorf("%d: must be between 1024 and %d", c.WebSocket.MaxMessageBytes, 64<<20))
	}
	if c.WebSocket.OutboxBytes < c.WebSocket.MaxMessageBytes {
		return fieldError("websocket.outbox_bytes", fmt.Errorf("%d: must be at least websocket.max_message_bytes (%d)", c.WebSocket.OutboxBytes, c.WebSocket.MaxMessageBytes))
	}
	if err := c.validateLimits(); err != nil {
		return err
	}
	if c.ShutdownTimeout <= 0 {
		return fieldError("shutdown_timeout", fmt.Errorf("%v: must be positive", c.ShutdownTimeout))
	}
	if err := c.validateAlarms(); err != nil {
		return err
	}
	if c.Storage.RetentionCheckInterval <= 0 {
		return fieldError("storage.retention_check_interval",
			fmt.Errorf("%v: must be positive", c.Storage.RetentionCheckInterval))
	}
	if err := c.validateStorage(); err != nil {
		return err
	}
	return c.validateBridges()
}

// validateLimits checks the limits section: counts are zero (no limit) or
// positive, channel_max fits AMQP's 16 bits and frame_max is between the
// protocol's minimum and 16 MiB.
func (c Config) validateLimits() error {
	l := c.Limits
	for _, n := range []struct {
		key string
		v   int
	}{
		{"limits.kafka_max_connections", l.KafkaMaxConnections},
		{"limits.amqp_max_connections", l.AMQPMaxConnections},
		{"limits.http_max_connections", l.HTTPMaxConnections},
		{"limits.max_connections_per_user", l.MaxConnectionsPerUser},
		{"limits.max_queues_per_vhost", l.MaxQueuesPerVhost},
		{"limits.max_topics", l.MaxTopics},
	} {
		if n.v < 0 || n.v > 1<<30 {
			return fieldError(n.key, fmt.Errorf("%d: must be between 0 (no limit) and %d", n.v, 1<<30))
		}
	}
	if l.AMQPChannelMax < 0 || l.AMQPChannelMax > 65535 {
		return fieldError("limits.amqp_channel_max", fmt.Errorf("%d: must be between 0 (65535) and 65535", l.AMQPChannelMax))
	}
	if l.AMQPFrameMax < 4096 || l.AMQPFrameMax > 16<<20 {
		return fieldError("limits.amqp_frame_max", fmt.Errorf("%d: must be between 4096 and %d", l.AMQPFrameMax, 16<<20))
	}
	return nil
}

// validateStorage checks the storage settings with the storage engine's own
// rules. To name the setting at fault it first checks each one alone, on
// top of the defaults and the chosen fsync policy, and only then the whole.
func (c Config) validateStorage() error {
	lc, err := c.LogConfig()
	if err != nil {
		return err
	}
	for _, s := range Settings() {
		if !strings.HasPrefix(s.YAMLKey, "storage.") || s.YAMLKey == "storage.fsync" {
			continue
		}
		probe := Default()
		probe.Storage.Fsync = c.Storage.Fsync
		if err := s.field(&probe).Set(s.field(&c).String()); err != nil {
			return fieldError(s.YAMLKey, err)
		}
		plc, err := probe.LogConfig()
		if err != nil {
			return err
		}
		if err := plc.Validate(); err != nil {
			return fieldError(s.YAMLKey, err)
		}
	}
	if err := lc.Validate(); err != nil {
		return &FieldError{Key: "storage", Err: err}
	}
	return nil
}

// checkListen accepts an empty address (listener disabled) or host:port
// with a numeric port; port 0 asks the system for a free port.
func checkListen(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (for example 127.0.0.1:8080; empty disables the listener)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

func oneOf(v string, allowed []string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

// validateAlarms checks the alarm settings.
func (c Config) validateAlarms() error {
	if c.Alarms.DiskFreeLimitBytes < 0 {
		return fieldError("alarms.disk_free_limit_bytes", fmt.Errorf("%d: must be 0 (disabled) or positive", c.Alarms.DiskFreeLimitBytes))
	}
	if c.Alarms.MemoryHighWatermarkBytes < -1 {
		return fieldError("alarms.memory_high_watermark_bytes", fmt.Errorf("%d: must be positive, 0 (40%% of memory) or -1 (disabled)", c.Alarms.MemoryHighWatermarkBytes))
	}
	if c.Alarms.CheckInterval < 10*time.Millisecond {
		return fieldError("alarms.check_interval", fmt.Errorf("%v: must be at least 10ms", c.Alarms.CheckInterval))
	}
	return nil
}

// validateTLS checks the TLS settings' shape; whether the files load is
// known when the server starts.
func (c Config) validateTLS() error {
	if err := oneOf(c.TLS.ClientAuth, []string{"none", "optional", "required"}); err != nil {
		return fieldError("tls.client_auth", err)
	}
	if c.TLS.ClientAuth != "none" && c.TLS.CAFile == "" {
		return fieldError("tls.ca_file", fmt.Errorf("must be set when tls.client_auth is %s", c.TLS.ClientAuth))
	}
	if !c.TLSEnabled() {
		return nil
	}
	if c.TLS.CertFile == "" {
		return fieldError("tls.cert_file", errors.New("must be set when a TLS listener is enabled"))
	}
	if c.TLS.KeyFile == "" {
		return fieldError("tls.key_file", errors.New("must be set when a TLS listener is enabled"))
	}
	return nil
}
