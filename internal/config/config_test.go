package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/wharfmq/wharf/internal/storage"
)

// env is a fake environment for Load and ApplyEnv.
type env map[string]string

func (e env) lookup(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

// load parses args as a command line and loads the configuration.
func load(t *testing.T, args []string, e env) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(discard{})
	f := AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	return f.Load(e.lookup)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// writeFile writes a YAML configuration file and returns its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wharf.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestDefaultMatchesStorageDefaults(t *testing.T) {
	got, err := Default().LogConfig()
	if err != nil {
		t.Fatal(err)
	}
	if want := storage.DefaultLogConfig(); got != want {
		t.Errorf("Default().LogConfig() = %+v, want storage.DefaultLogConfig() %+v", got, want)
	}
}

func TestDefaults(t *testing.T) {
	c := Default()
	tests := []struct {
		name      string
		got, want any
	}{
		{"data_dir", c.DataDir, "./wharf-data"},
		{"kafka_listen", c.KafkaListen, "127.0.0.1:9092"},
		{"amqp_listen", c.AMQPListen, "127.0.0.1:5672"},
		{"http_listen", c.HTTPListen, "127.0.0.1:8080"},
		{"log_level", c.LogLevel, "info"},
		{"log_format", c.LogFormat, "text"},
		{"shutdown_timeout", c.ShutdownTimeout, 10 * time.Second},
		{"storage.fsync", c.Storage.Fsync, "always"},
		{"storage.fsync_interval", c.Storage.FsyncInterval, time.Second},
		{"storage.segment_bytes", c.Storage.SegmentBytes, int64(1073741824)},
		{"storage.segment_time", c.Storage.SegmentTime, 168 * time.Hour},
		{"storage.retention_time", c.Storage.RetentionTime, 168 * time.Hour},
		{"storage.retention_bytes", c.Storage.RetentionBytes, int64(-1)},
		{"storage.max_message_bytes", c.Storage.MaxMessageBytes, 1048588},
		{"storage.index_interval_bytes", c.Storage.IndexIntervalBytes, 4096},
		{"storage.retention_check_interval", c.Storage.RetentionCheckInterval, 5 * time.Minute},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "log_level: warn\nhttp_listen: 127.0.0.1:1003\n")
	tests := []struct {
		name string
		args []string
		env  env
		want string // log_level
	}{
		{"default", nil, nil, "info"},
		{"file beats default", []string{"--config", file}, nil, "warn"},
		{"env beats file", []string{"--config", file}, env{"WHARF_LOG_LEVEL": "error"}, "error"},
		{"flag beats env", []string{"--config", file, "--log-level", "debug"}, env{"WHARF_LOG_LEVEL": "error"}, "debug"},
		{"flag beats file", []string{"--config", file, "--log-level=debug"}, nil, "debug"},
		{"flag set to the default still wins", []string{"--config", file, "--log-level", "info"}, env{"WHARF_LOG_LEVEL": "error"}, "info"},
		{"config file from env", nil, env{"WHARF_CONFIG": file}, "warn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if c.LogLevel != tt.want {
				t.Errorf("log_level = %q, want %q", c.LogLevel, tt.want)
			}
		})
	}
}

func TestUnsetFlagsDoNotOverride(t *testing.T) {
	file := writeFile(t, "data_dir: /from/file\nstorage:\n  fsync: never\n")
	c, err := load(t, []string{"--config", file, "--http-listen", "127.0.0.1:0"},
		env{"WHARF_SEGMENT_BYTES": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"data_dir from file", c.DataDir, "/from/file"},
		{"storage.fsync from file", c.Storage.Fsync, "never"},
		{"storage.segment_bytes from env", c.Storage.SegmentBytes, int64(1000)},
		{"http_listen from flag", c.HTTPListen, "127.0.0.1:0"},
		{"kafka_listen default", c.KafkaListen, "127.0.0.1:9092"},
		{"storage.index_interval_bytes default", c.Storage.IndexIntervalBytes, 4096},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestConfigFlagBeatsConfigEnv(t *testing.T) {
	flagFile := writeFile(t, "log_level: warn\n")
	envFile := writeFile(t, "log_level: error\n")
	c, err := load(t, []string{"--config", flagFile}, env{"WHARF_CONFIG": envFile})
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "warn" {
		t.Errorf("log_level = %q, want the --config file's warn", c.LogLevel)
	}
}

func TestEverySettingFromEverySource(t *testing.T) {
	// A value different from every default, valid for each setting.
	values := map[string]string{
		"data_dir":                            "/var/lib/wharf",
		"kafka_listen":                        "0.0.0.0:19092",
		"amqp_listen":                         "",
		"http_listen":                         "[::1]:0",
		"kafka_advertise":                     "broker.example:9093",
		"kafka_max_request_bytes":             "2097152",
		"kafka_fetch_max_bytes":               "1048576",
		"kafka_connections_max_idle":          "90s",
		"tcp_keepalive":                       "30s",
		"amqp_max_message_bytes":              "1000000",
		"amqp_heartbeat":                      "15s",
		"amqp_consumer_timeout":               "45m",
		"amqp_queue_memory_bytes":             "1048576",
		"auto_create_topics":                  "false",
		"default_partitions":                  "6",
		"log_level":                           "debug",
		"log_format":                          "json",
		"shutdown_timeout":                    "3s",
		"storage.fsync":                       "interval",
		"storage.fsync_interval":              "250ms",
		"storage.segment_bytes":               "1048576",
		"storage.segment_time":                "1h",
		"storage.retention_time":              "0s",
		"storage.retention_bytes":             "1000000000",
		"storage.max_message_bytes":           "2000000",
		"storage.index_interval_bytes":        "1024",
		"storage.retention_check_interval":    "30s",
		"websocket.ping_interval":             "10s",
		"websocket.max_message_bytes":         "65536",
		"websocket.outbox_bytes":              "1048576",
		"websocket.allowed_origins":           "*.example.com,app.example.org",
		"websocket.anonymous":                 "true",
		"websocket.broadcast_users":           "ops,alice",
		"websocket.jwt_hs256_secret_file":     "/etc/wharf/jwt.key",
		"websocket.jwt_rs256_public_key_file": "/etc/wharf/jwt.pub",
		"limits.kafka_max_connections":        "1000",
		"limits.amqp_max_connections":         "2000",
		"limits.http_max_connections":         "3000",
		"limits.max_connections_per_user":     "50",
		"limits.amqp_channel_max":             "128",
		"limits.amqp_frame_max":               "65536",
		"limits.max_queues_per_vhost":         "500",
		"limits.max_topics":                   "300",
		"alarms.disk_free_limit_bytes":        "1000000000",
		"alarms.memory_high_watermark_bytes":  "-1",
		"alarms.check_interval":               "250ms",
		"kafka_tls_listen":                    "0.0.0.0:19093",
		"amqps_listen":                        "0.0.0.0:5671",
		"https_listen":                        "0.0.0.0:8443",
		"kafka_tls_advertise":                 "broker.example:19093",
		"tls.cert_file":                       "/etc/wharf/server.crt",
		"tls.key_file":                        "/etc/wharf/server.key",
		"tls.ca_file":                         "/etc/wharf/ca.crt",
		"tls.client_auth":                     "required",
		"require_auth":                        "true",
		"kafka_vhost":                         "events",
		"limits.max_login_failures":           "5",
		"limits.login_failure_window":         "30s",
	}
	want := Config{
		DataDir:                 "/var/lib/wharf",
		KafkaListen:             "0.0.0.0:19092",
		AMQPListen:              "",
		HTTPListen:              "[::1]:0",
		KafkaAdvertise:          "broker.example:9093",
		KafkaMaxRequestBytes:    2097152,
		KafkaFetchMaxBytes:      1048576,
		KafkaConnectionsMaxIdle: 90 * time.Second,
		TCPKeepAlive:            30 * time.Second,
		AMQPMaxMessageBytes:     1000000,
		AMQPHeartbeat:           15 * time.Second,
		AMQPConsumerTimeout:     45 * time.Minute,
		AMQPQueueMemoryBytes:    1048576,
		AutoCreateTopics:        false,
		DefaultPartitions:       6,
		LogLevel:                "debug",
		LogFormat:               "json",
		ShutdownTimeout:         3 * time.Second,
		Storage: StorageConfig{
			Fsync:                  "interval",
			FsyncInterval:          250 * time.Millisecond,
			SegmentBytes:           1048576,
			SegmentTime:            time.Hour,
			RetentionTime:          0,
			RetentionBytes:         1000000000,
			MaxMessageBytes:        2000000,
			IndexIntervalBytes:     1024,
			RetentionCheckInterval: 30 * time.Second,
		},
		WebSocket: WebSocketConfig{
			PingInterval:     10 * time.Second,
			MaxMessageBytes:  65536,
			OutboxBytes:      1048576,
			AllowedOrigins:   "*.example.com,app.example.org",
			Anonymous:        true,
			BroadcastUsers:   "ops,alice",
			JWTSecretFile:    "/etc/wharf/jwt.key",
			JWTPublicKeyFile: "/etc/wharf/jwt.pub",
		},
		Limits: LimitsConfig{
			KafkaMaxConnections:   1000,
			AMQPMaxConnections:    2000,
			HTTPMaxConnections:    3000,
			MaxConnectionsPerUser: 50,
			AMQPChannelMax:        128,
			AMQPFrameMax:          65536,
			MaxQueuesPerVhost:     500,
			MaxTopics:             300,
			MaxLoginFailures:      5,
			LoginFailureWindow:    30 * time.Second,
		},
		Alarms: AlarmsConfig{
			DiskFreeLimitBytes:       1000000000,
			MemoryHighWatermarkBytes: -1,
			CheckInterval:            250 * time.Millisecond,
		},
		KafkaTLSListen:    "0.0.0.0:19093",
		AMQPSListen:       "0.0.0.0:5671",
		HTTPSListen:       "0.0.0.0:8443",
		KafkaTLSAdvertise: "broker.example:19093",
		RequireAuth:       true,
		KafkaVhost:        "events",
		TLS: TLSConfig{
			CertFile:   "/etc/wharf/server.crt",
			KeyFile:    "/etc/wharf/server.key",
			CAFile:     "/etc/wharf/ca.crt",
			ClientAuth: "required",
		},
	}
	settings := Settings()
	if len(values) != len(settings) {
		t.Fatalf("test covers %d settings, Settings() has %d", len(values), len(settings))
	}

	var args []string
	e := env{}
	var yamlTop strings.Builder
	sections := map[string]*strings.Builder{}
	var sectionOrder []string
	for _, s := range settings {
		v, ok := values[s.YAMLKey]
		if !ok {
			t.Fatalf("no test value for %s", s.YAMLKey)
		}
		args = append(args, "--"+s.Flag+"="+v)
		e[s.Env] = v
		if sec, k, ok := strings.Cut(s.YAMLKey, "."); ok {
			if sections[sec] == nil {
				sections[sec] = &strings.Builder{}
				sectionOrder = append(sectionOrder, sec)
			}
			sections[sec].WriteString("  " + k + ": " + scalar(s, v) + "\n")
		} else {
			yamlTop.WriteString(s.YAMLKey + ": " + scalar(s, v) + "\n")
		}
	}
	doc := yamlTop.String()
	for _, sec := range sectionOrder {
		doc += sec + ":\n" + sections[sec].String()
	}
	file := writeFile(t, doc)

	tests := []struct {
		name string
		args []string
		env  env
	}{
		{"flags", args, nil},
		{"environment", nil, e},
		{"file", []string{"--config", file}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// scalar writes v as a YAML scalar for setting s: numbers plain, anything
// else quoted.
func scalar(s Setting, v string) string {
	var c Config
	if t := s.field(&c).Type(); t == "int" || t == "bool" {
		return v
	}
	return `"` + v + `"`
}

func TestEmptyListenerDisables(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  env
		file string
	}{
		{"flag", []string{"--kafka-listen=", "--amqp-listen", "", "--http-listen="}, nil, ""},
		{"env", nil, env{"WHARF_KAFKA_LISTEN": "", "WHARF_AMQP_LISTEN": "", "WHARF_HTTP_LISTEN": ""}, ""},
		{"file", nil, nil, "kafka_listen: \"\"\namqp_listen: ''\nhttp_listen: \"\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			c, err := load(t, args, tt.env)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if c.KafkaListen != "" || c.AMQPListen != "" || c.HTTPListen != "" {
				t.Errorf("listeners = %q, %q, %q; want all empty", c.KafkaListen, c.AMQPListen, c.HTTPListen)
			}
		})
	}
}

func TestValidateNamesTheField(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		key     string
		flag    string
		message string // a fragment of the reason
	}{
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data_dir", "data-dir", "must not be empty"},
		{"listener without port", func(c *Config) { c.KafkaListen = "localhost" }, "kafka_listen", "kafka-listen", "not host:port"},
		{"listener with named port", func(c *Config) { c.AMQPListen = "localhost:amqp" }, "amqp_listen", "amqp-listen", "port must be a number"},
		{"listener port too big", func(c *Config) { c.HTTPListen = "127.0.0.1:65536" }, "http_listen", "http-listen", "port must be a number"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "log_level", "log-level", `"loud" is not one of debug, info, warn, error`},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, "log_format", "log-format", `"xml" is not one of text, json`},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout", "shutdown-timeout", "must be positive"},
		{"fsync policy", func(c *Config) { c.Storage.Fsync = "sometimes" }, "storage.fsync", "fsync", "unknown fsync policy"},
		{"fsync interval", func(c *Config) { c.Storage.Fsync = "interval"; c.Storage.FsyncInterval = 0 }, "storage.fsync_interval", "fsync-interval", "must be positive"},
		{"segment bytes", func(c *Config) { c.Storage.SegmentBytes = 1 }, "storage.segment_bytes", "segment-bytes", "must be between"},
		{"segment bytes too big", func(c *Config) { c.Storage.SegmentBytes = 1 << 40 }, "storage.segment_bytes", "segment-bytes", "must be between"},
		{"segment time", func(c *Config) { c.Storage.SegmentTime = -time.Second }, "storage.segment_time", "segment-time", "must be positive"},
		{"max message bytes", func(c *Config) { c.Storage.MaxMessageBytes = 3 }, "storage.max_message_bytes", "max-message-bytes", "must be at least"},
		{"index interval bytes", func(c *Config) { c.Storage.IndexIntervalBytes = 0 }, "storage.index_interval_bytes", "index-interval-bytes", "must be positive"},
		{"retention check interval", func(c *Config) { c.Storage.RetentionCheckInterval = 0 }, "storage.retention_check_interval", "retention-check-interval", "must be positive"},
		{"kafka fetch max bytes", func(c *Config) { c.KafkaFetchMaxBytes = 100 }, "kafka_fetch_max_bytes", "kafka-fetch-max-bytes", "must be between"},
		{"kafka idle timeout", func(c *Config) { c.KafkaConnectionsMaxIdle = -time.Second }, "kafka_connections_max_idle", "kafka-connections-max-idle", "must not be negative"},
		{"tcp keepalive fraction", func(c *Config) { c.TCPKeepAlive = 1500 * time.Millisecond }, "tcp_keepalive", "tcp-keepalive", "must be whole seconds"},
		{"tcp keepalive negative", func(c *Config) { c.TCPKeepAlive = -time.Second }, "tcp_keepalive", "tcp-keepalive", "must be whole seconds"},
		{"consumer timeout negative", func(c *Config) { c.AMQPConsumerTimeout = -time.Minute }, "amqp_consumer_timeout", "amqp-consumer-timeout", "must be whole milliseconds"},
		{"consumer timeout fraction", func(c *Config) { c.AMQPConsumerTimeout = 1500 * time.Microsecond }, "amqp_consumer_timeout", "amqp-consumer-timeout", "must be whole milliseconds"},
		{"negative connection limit", func(c *Config) { c.Limits.AMQPMaxConnections = -1 }, "limits.amqp_max_connections", "amqp-max-connections", "between 0 (no limit)"},
		{"negative topic limit", func(c *Config) { c.Limits.MaxTopics = -5 }, "limits.max_topics", "max-topics", "between 0 (no limit)"},
		{"channel max too big", func(c *Config) { c.Limits.AMQPChannelMax = 65536 }, "limits.amqp_channel_max", "amqp-channel-max", "between 0 (65535) and 65535"},
		{"frame max too small", func(c *Config) { c.Limits.AMQPFrameMax = 4095 }, "limits.amqp_frame_max", "amqp-frame-max", "between 4096"},
		{"frame max too big", func(c *Config) { c.Limits.AMQPFrameMax = 16<<20 + 1 }, "limits.amqp_frame_max", "amqp-frame-max", "between 4096"},
		{"disk free limit", func(c *Config) { c.Alarms.DiskFreeLimitBytes = -1 }, "alarms.disk_free_limit_bytes", "disk-free-limit-bytes", "must be 0 (disabled) or positive"},
		{"memory high watermark", func(c *Config) { c.Alarms.MemoryHighWatermarkBytes = -2 }, "alarms.memory_high_watermark_bytes", "memory-high-watermark-bytes", "-1 (disabled)"},
		{"alarm check interval", func(c *Config) { c.Alarms.CheckInterval = time.Millisecond }, "alarms.check_interval", "alarm-check-interval", "at least 10ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError", err)
			}
			if fe.Key != tt.key || fe.Flag != tt.flag {
				t.Errorf("error names %s (--%s), want %s (--%s)", fe.Key, fe.Flag, tt.key, tt.flag)
			}
			for _, frag := range []string{tt.key, "--" + tt.flag, tt.message} {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q does not contain %q", err, frag)
				}
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"all listeners disabled", func(c *Config) { c.KafkaListen, c.AMQPListen, c.HTTPListen = "", "", "" }},
		{"port zero", func(c *Config) { c.HTTPListen = "127.0.0.1:0" }},
		{"all interfaces", func(c *Config) { c.KafkaListen = ":9092" }},
		{"IPv6", func(c *Config) { c.AMQPListen = "[::1]:5672" }},
		{"retention forever by zero", func(c *Config) { c.Storage.RetentionTime, c.Storage.RetentionBytes = 0, 0 }},
		{"retention forever by negative", func(c *Config) { c.Storage.RetentionTime, c.Storage.RetentionBytes = -time.Hour, -1 }},
		{"zero fsync interval is unused with always", func(c *Config) { c.Storage.FsyncInterval = 0 }},
		{"fsync never", func(c *Config) { c.Storage.Fsync = "never" }},
		{"keepalive and idle timeout off", func(c *Config) { c.TCPKeepAlive, c.KafkaConnectionsMaxIdle = 0, 0 }},
		{"every limit off", func(c *Config) { c.Limits = LimitsConfig{AMQPFrameMax: 4096} }},
		{"alarms disabled", func(c *Config) { c.Alarms.DiskFreeLimitBytes, c.Alarms.MemoryHighWatermarkBytes = 0, -1 }},
		{"memory watermark in bytes", func(c *Config) { c.Alarms.MemoryHighWatermarkBytes = 1 << 30 }},
		{"consumer timeout off", func(c *Config) { c.AMQPConsumerTimeout = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestLoadErrorsNameTheSource(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   env
		file  string
		wants []string
	}{
		{"bad env duration", nil, env{"WHARF_SHUTDOWN_TIMEOUT": "soon"}, "", []string{"WHARF_SHUTDOWN_TIMEOUT", "not a duration"}},
		{"bad env integer", nil, env{"WHARF_SEGMENT_BYTES": "1GB"}, "", []string{"WHARF_SEGMENT_BYTES", "not a whole number"}},
		{"env integer out of range", nil, env{"WHARF_RETENTION_BYTES": "99999999999999999999"}, "", []string{"WHARF_RETENTION_BYTES", "out of range"}},
		{"bad flag duration", []string{"--fsync-interval", "often"}, nil, "", []string{"fsync-interval", "not a duration"}},
		{"invalid value from env", nil, env{"WHARF_FSYNC": "sometimes"}, "", []string{"storage.fsync", "--fsync"}},
		{"invalid value from flag", []string{"--log-format", "xml"}, nil, "", []string{"log_format", "--log-format"}},
		{"invalid value from file", nil, nil, "storage:\n  segment_bytes: 5\n", []string{"storage.segment_bytes", "--segment-bytes"}},
		{"unknown top-level key", nil, nil, "data_dir: x\nlisten: 127.0.0.1:1\n", []string{"field listen not found"}},
		{"unknown storage key", nil, nil, "storage:\n  fsnyc: never\n", []string{"field fsnyc not found"}},
		{"flag name is not a YAML key", nil, nil, "data-dir: x\n", []string{"field data-dir not found"}},
		{"wrong type in file", nil, nil, "shutdown_timeout: soon\n", []string{"line 1", "time.Duration", "durations need a unit"}},
		{"duration without unit in file", nil, nil, "storage:\n  retention_time: 0\n", []string{"line 2", "durations need a unit"}},
		{"two documents", nil, nil, "log_level: warn\n---\nlog_level: info\n", []string{"more than one YAML document"}},
		{"not a mapping", nil, nil, "- a\n- b\n", []string{"cannot unmarshal"}},
		{"missing file", []string{"--config", "does-not-exist.yaml"}, nil, "", []string{"config file", "does-not-exist.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			_, err := load(t, args, tt.env)
			if err == nil {
				t.Fatal("load succeeded, want an error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestEmptyFileChangesNothing(t *testing.T) {
	for _, body := range []string{"", "# only a comment\n"} {
		c, err := load(t, []string{"--config", writeFile(t, body)}, nil)
		if err != nil {
			t.Fatalf("file %q: %v", body, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("file %q: got %+v, want Default()", body, c)
		}
	}
}

func TestLogConfig(t *testing.T) {
	c := Default()
	c.Storage = StorageConfig{
		Fsync:                  "interval",
		FsyncInterval:          2 * time.Second,
		SegmentBytes:           1 << 20,
		SegmentTime:            time.Hour,
		RetentionTime:          -1,
		RetentionBytes:         1 << 30,
		MaxMessageBytes:        1 << 16,
		IndexIntervalBytes:     512,
		RetentionCheckInterval: time.Minute,
	}
	got, err := c.LogConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := storage.DefaultLogConfig()
	want.Fsync = storage.FsyncInterval
	want.FsyncInterval = 2 * time.Second
	want.SegmentBytes = 1 << 20
	want.SegmentAge = time.Hour
	want.RetentionAge = -1
	want.RetentionBytes = 1 << 30
	want.MaxBatchBytes = 1 << 16
	want.IndexIntervalBytes = 512
	if got != want {
		t.Errorf("LogConfig() = %+v, want %+v", got, want)
	}
}

// TestTableMatchesYAMLTags keeps the settings table and Config's yaml tags
// in step: every table key decodes, and every tagged field is in the table.
func TestTableMatchesYAMLTags(t *testing.T) {
	keys := map[string]bool{}
	for _, s := range Settings() {
		keys[s.YAMLKey] = true
		doc := s.YAMLKey + ": " + scalar(s, s.Default) + "\n"
		if sec, k, ok := strings.Cut(s.YAMLKey, "."); ok {
			doc = sec + ":\n  " + k + ": " + scalar(s, s.Default) + "\n"
		}
		c := Default()
		if err := DecodeYAML([]byte(doc), &c); err != nil {
			t.Errorf("setting %s: YAML %q does not decode: %v", s.Name, doc, err)
		}
	}
	for _, key := range yamlLeaves(reflect.TypeFor[Config](), "") {
		if !keys[key] {
			t.Errorf("Config has YAML key %s but Settings() has no entry for it", key)
		}
	}
}

func yamlLeaves(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, yamlLeaves(f.Type, prefix+name+".")...)
			continue
		}
		if f.Type.Kind() == reflect.Slice {
			continue // a list section (bridges), documented on its own
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

func TestSettingsTable(t *testing.T) {
	flags := map[string]bool{}
	for _, s := range Settings() {
		if flags[s.Flag] {
			t.Errorf("flag --%s used twice", s.Flag)
		}
		flags[s.Flag] = true
		if want := "WHARF_" + strings.ToUpper(strings.ReplaceAll(s.Flag, "-", "_")); s.Env != want {
			t.Errorf("--%s: env %s, want %s", s.Flag, s.Env, want)
		}
		if s.Name == "" || s.Help == "" || s.YAMLKey == "" {
			t.Errorf("--%s: incomplete entry %+v", s.Flag, s)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{time.Second, "1s"},
		{5 * time.Minute, "5m"},
		{168 * time.Hour, "168h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
		{-time.Hour, "-1h"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		got := formatDuration(tt.in)
		if got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := time.ParseDuration(got)
		if err != nil || back != tt.in {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tt.in)
		}
	}
}

// TestReadmeExampleIsDefault checks that the YAML example in README.md
// decodes and spells out exactly the defaults.
func TestReadmeExampleIsDefault(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	if !ok {
		t.Fatal("README.md has no yaml example")
	}
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README.md's yaml example is not closed")
	}
	var c Config
	if err := DecodeYAML([]byte(example), &c); err != nil {
		t.Fatalf("README.md's yaml example does not decode: %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("README.md's yaml example = %+v, want Default() %+v", c, Default())
	}
}

// TestReadmeTable fails when README.md's settings table differs from the
// settings in code.
func TestReadmeTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if table := MarkdownTable(); !strings.Contains(string(readme), table) {
		t.Errorf("README.md does not contain the current settings table; replace it with:\n\n%s", table)
	}
}
