package config

import (
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// Config is the complete configuration of a Wharf process. The yaml tags are
// the keys accepted in a configuration file.
type Config struct {
	// DataDir holds every log and the broker's metadata.
	DataDir string `yaml:"data_dir"`
	// KafkaListen, AMQPListen and HTTPListen are host:port addresses; an
	// empty string disables that listener. Port 0 picks a free port.
	KafkaListen string `yaml:"kafka_listen"`
	AMQPListen  string `yaml:"amqp_listen"`
	HTTPListen  string `yaml:"http_listen"`
	// KafkaTLSListen, AMQPSListen and HTTPSListen are the TLS listeners,
	// beside the plain ones, with the certificates of TLS; empty disables
	// them.
	KafkaTLSListen string `yaml:"kafka_tls_listen"`
	AMQPSListen    string `yaml:"amqps_listen"`
	HTTPSListen    string `yaml:"https_listen"`
	// KafkaTLSAdvertise is the host:port Kafka clients of the TLS listener
	// are told to connect to; empty means that listener's own address.
	KafkaTLSAdvertise string `yaml:"kafka_tls_advertise"`
	// TCPKeepAlive is the TCP keepalive idle time and probe interval of
	// every listener's accepted connections; zero disables keepalive.
	TCPKeepAlive time.Duration `yaml:"tcp_keepalive"`
	// KafkaAdvertise is the host:port Kafka clients are told to connect
	// to; empty means the listener's own address.
	KafkaAdvertise string `yaml:"kafka_advertise"`
	// KafkaVhost is the vhost Kafka topics and consumer groups belong to:
	// its permissions govern them.
	KafkaVhost string `yaml:"kafka_vhost"`
	// KafkaMaxRequestBytes bounds the size of one Kafka request.
	KafkaMaxRequestBytes int `yaml:"kafka_max_request_bytes"`
	// KafkaFetchMaxBytes bounds one fetch response, whatever the client
	// asks (Kafka's fetch.max.bytes).
	KafkaFetchMaxBytes int `yaml:"kafka_fetch_max_bytes"`
	// KafkaConnectionsMaxIdle closes a Kafka connection idle for that
	// long (Kafka's connections.max.idle.ms); zero never does.
	KafkaConnectionsMaxIdle time.Duration `yaml:"kafka_connections_max_idle"`
	// AMQPMaxMessageBytes bounds the body of one AMQP message.
	AMQPMaxMessageBytes int `yaml:"amqp_max_message_bytes"`
	// AMQPHeartbeat is the heartbeat interval offered to AMQP clients; zero
	// offers none.
	AMQPHeartbeat time.Duration `yaml:"amqp_heartbeat"`
	// AMQPConsumerTimeout is how long a delivery may stay unacknowledged
	// before its channel is closed (RabbitMQ's consumer_timeout), for
	// queues without x-consumer-timeout; zero means no timeout.
	AMQPConsumerTimeout time.Duration `yaml:"amqp_consumer_timeout"`
	// AMQPQueueMemoryBytes is how many bytes of ready persistent messages
	// a durable queue holds in memory; the rest are read back from the
	// queue's log when delivered. Negative means no limit.
	AMQPQueueMemoryBytes int64 `yaml:"amqp_queue_memory_bytes"`
	// AutoCreateTopics creates unknown topics on first use (Kafka Metadata
	// and Produce) with DefaultPartitions partitions.
	AutoCreateTopics  bool `yaml:"auto_create_topics"`
	DefaultPartitions int  `yaml:"default_partitions"`
	// RequireAuth refuses unauthenticated clients on every protocol:
	// Kafka clients must log in with SASL, and WebSocket anonymous access
	// is off whatever WebSocket.Anonymous says (AMQP, REST and gRPC always
	// require a login).
	RequireAuth bool `yaml:"require_auth"`
	// LogLevel is one of debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// ShutdownTimeout bounds how long listeners may take to drain on
	// shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Storage holds the defaults for new logs.
	Storage StorageConfig `yaml:"storage"`
	// WebSocket configures the gateway's /ws endpoint.
	WebSocket WebSocketConfig `yaml:"websocket"`
	// Limits bounds connections, channels, frames, queues and topics.
	Limits LimitsConfig `yaml:"limits"`
	// Alarms configures the resource alarms.
	Alarms AlarmsConfig `yaml:"alarms"`
	// TLS holds the certificates of the TLS listeners.
	TLS TLSConfig `yaml:"tls"`
	// Bridges lists the rules that publish Kafka records into exchanges
	// (bridges.go). It has no flag or environment variable.
	Bridges []BridgeConfig `yaml:"bridges"`
}

// TLSConfig names the PEM files of the TLS listeners (internal/certs).
// They are read at start and again on SIGHUP.
type TLSConfig struct {
	// CertFile is the server certificate (with any intermediates) and
	// KeyFile its private key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile holds the authorities client certificates must chain to.
	CAFile string `yaml:"ca_file"`
	// ClientAuth is none, optional or required: whether TLS clients must
	// present a certificate signed by CAFile.
	ClientAuth string `yaml:"client_auth"`
}

// TLSEnabled reports whether any TLS listener is configured.
func (c Config) TLSEnabled() bool {
	return c.KafkaTLSListen != "" || c.AMQPSListen != "" || c.HTTPSListen != ""
}

// LimitsConfig holds the resource limits. A zero count means no limit.
type LimitsConfig struct {
	// KafkaMaxConnections, AMQPMaxConnections and HTTPMaxConnections bound
	// the open connections of each listener.
	KafkaMaxConnections int `yaml:"kafka_max_connections"`
	AMQPMaxConnections  int `yaml:"amqp_max_connections"`
	HTTPMaxConnections  int `yaml:"http_max_connections"`
	// MaxConnectionsPerUser bounds the connections of one user: AMQP
	// connections, WebSocket sessions and REST or gRPC calls in progress.
	MaxConnectionsPerUser int `yaml:"max_connections_per_user"`
	// AMQPChannelMax is the channel_max offered in connection.tune; zero
	// means the protocol's most, 65535.
	AMQPChannelMax int `yaml:"amqp_channel_max"`
	// AMQPFrameMax is the frame_max offered in connection.tune.
	AMQPFrameMax int `yaml:"amqp_frame_max"`
	// MaxQueuesPerVhost bounds the queues of each vhost; MaxTopics the
	// Kafka topics (which all live in vhost "/").
	MaxQueuesPerVhost int `yaml:"max_queues_per_vhost"`
	MaxTopics         int `yaml:"max_topics"`
	// MaxLoginFailures failed logins from one address within
	// LoginFailureWindow make every login from it fail until the window
	// ends; zero turns the limit off.
	MaxLoginFailures   int           `yaml:"max_login_failures"`
	LoginFailureWindow time.Duration `yaml:"login_failure_window"`
}

// AlarmsConfig configures the resource alarms (internal/alarm): while one
// is set, publishers are held back and consumers go on.
type AlarmsConfig struct {
	// DiskFreeLimitBytes sets the disk alarm while the data directory's
	// filesystem has less free space; zero disables it.
	DiskFreeLimitBytes int64 `yaml:"disk_free_limit_bytes"`
	// MemoryHighWatermarkBytes sets the memory alarm while the process
	// uses at least this much memory; zero means 40% of the machine's or
	// cgroup's memory, -1 disables it.
	MemoryHighWatermarkBytes int64 `yaml:"memory_high_watermark_bytes"`
	// CheckInterval is how often free space and memory are measured.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// WebSocketConfig configures the WebSocket endpoint of the HTTP listener.
type WebSocketConfig struct {
	// PingInterval is how often the server pings each connection; one
	// that does not answer within another interval is closed.
	PingInterval time.Duration `yaml:"ping_interval"`
	// MaxMessageBytes bounds one frame from a client.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// OutboxBytes bounds what may wait to be sent to one connection.
	OutboxBytes int `yaml:"outbox_bytes"`
	// AllowedOrigins lists, comma-separated, the Origin hosts allowed
	// besides the listener's own; "*" allows any.
	AllowedOrigins string `yaml:"allowed_origins"`
	// Anonymous lets clients connect without credentials.
	Anonymous bool `yaml:"anonymous"`
	// BroadcastUsers lists, comma-separated, the users who may broadcast;
	// "*" is every authenticated user.
	BroadcastUsers string `yaml:"broadcast_users"`
	// JWTSecretFile holds the HS256 shared secret; JWTPublicKeyFile the
	// RS256 public key (PEM). Empty disables that algorithm.
	JWTSecretFile    string `yaml:"jwt_hs256_secret_file"`
	JWTPublicKeyFile string `yaml:"jwt_rs256_public_key_file"`
}

// StorageConfig holds the settings every new log starts from.
type StorageConfig struct {
	// Fsync is always, interval or never; see storage.FsyncPolicy.
	Fsync         string        `yaml:"fsync"`
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// SegmentBytes and SegmentTime roll the active segment by size and age.
	SegmentBytes int64         `yaml:"segment_bytes"`
	SegmentTime  time.Duration `yaml:"segment_time"`
	// RetentionTime and RetentionBytes delete old segments by age and total
	// size; zero or negative keeps data forever.
	RetentionTime  time.Duration `yaml:"retention_time"`
	RetentionBytes int64         `yaml:"retention_bytes"`
	// MaxMessageBytes is the largest batch a log accepts.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// IndexIntervalBytes is the spacing of sparse index entries.
	IndexIntervalBytes int `yaml:"index_interval_bytes"`
	// RetentionCheckInterval is how often retention and segment age are
	// enforced.
	RetentionCheckInterval time.Duration `yaml:"retention_check_interval"`
}

// Default returns the configuration used when nothing else is given. Its
// storage settings are storage.DefaultLogConfig's.
func Default() Config {
	lc := storage.DefaultLogConfig()
	return Config{
		DataDir:                 "./wharf-data",
		KafkaListen:             "127.0.0.1:9092",
		AMQPListen:              "127.0.0.1:5672",
		HTTPListen:              "127.0.0.1:8080",
		TCPKeepAlive:            15 * time.Second,
		KafkaVhost:              "/",
		KafkaMaxRequestBytes:    100 << 20,
		KafkaFetchMaxBytes:      55 << 20,
		KafkaConnectionsMaxIdle: 10 * time.Minute,
		AMQPMaxMessageBytes:     16 << 20,
		AMQPHeartbeat:           60 * time.Second,
		AMQPConsumerTimeout:     30 * time.Minute,
		AMQPQueueMemoryBytes:    64 << 20,
		AutoCreateTopics:        true,
		DefaultPartitions:       1,
		LogLevel:                "info",
		LogFormat:               "text",
		ShutdownTimeout:         10 * time.Second,
		WebSocket: WebSocketConfig{
			PingInterval:    25 * time.Second,
			MaxMessageBytes: 1 << 20,
			OutboxBytes:     4 << 20,
		},
		Limits: LimitsConfig{
			AMQPChannelMax:     2047,
			AMQPFrameMax:       131072,
			MaxLoginFailures:   20,
			LoginFailureWindow: time.Minute,
		},
		Storage: StorageConfig{
			Fsync:                  lc.Fsync.String(),
			FsyncInterval:          lc.FsyncInterval,
			SegmentBytes:           lc.SegmentBytes,
			SegmentTime:            lc.SegmentAge,
			RetentionTime:          lc.RetentionAge,
			RetentionBytes:         lc.RetentionBytes,
			MaxMessageBytes:        lc.MaxBatchBytes,
			IndexIntervalBytes:     lc.IndexIntervalBytes,
			RetentionCheckInterval: 5 * time.Minute,
		},
		Alarms: AlarmsConfig{
			DiskFreeLimitBytes: 50_000_000, // RabbitMQ's default
			CheckInterval:      time.Second,
		},
		TLS: TLSConfig{ClientAuth: "none"},
	}
}

// LogConfig maps the storage settings onto the storage engine's LogConfig.
// Settings Config does not expose keep storage.DefaultLogConfig's values. It
// fails only if the fsync policy is unknown; call Validate for a full check.
func (c Config) LogConfig() (storage.LogConfig, error) {
	lc := storage.DefaultLogConfig()
	policy, err := storage.ParseFsyncPolicy(c.Storage.Fsync)
	if err != nil {
		return storage.LogConfig{}, fieldError("storage.fsync", err)
	}
	lc.Fsync = policy
	lc.FsyncInterval = c.Storage.FsyncInterval
	lc.SegmentBytes = c.Storage.SegmentBytes
	lc.SegmentAge = c.Storage.SegmentTime
	lc.RetentionAge = c.Storage.RetentionTime
	lc.RetentionBytes = c.Storage.RetentionBytes
	lc.MaxBatchBytes = c.Storage.MaxMessageBytes
	lc.IndexIntervalBytes = c.Storage.IndexIntervalBytes
	return lc, nil
}
