package config

import "strings"

// EnvPrefix starts the name of every environment variable Wharf reads.
const EnvPrefix = "WHARF_"

// Setting describes one configuration setting: how it is named on the
// command line, in the environment and in a YAML file, its default and what
// it means.
type Setting struct {
	// Name is a short human-readable name.
	Name string
	// Flag is the command-line flag, without the leading dashes.
	Flag string
	// Env is the environment variable: EnvPrefix followed by Flag in upper
	// case with dashes turned into underscores.
	Env string
	// YAMLKey is the key in a configuration file; a dot separates a section
	// from the key inside it.
	YAMLKey string
	// Default is Default()'s value, as text.
	Default string
	// Help says what the setting means.
	Help string

	// field returns the setting's field in c, as text.
	field func(c *Config) value
}

// Settings returns every setting in documentation order. Each call returns a
// new slice.
func Settings() []Setting {
	list := []Setting{
		setting("Data directory", "data-dir", "data_dir",
			"Directory holding every log and the broker's metadata.",
			func(c *Config) value { return stringValue{&c.DataDir} }),
		setting("Kafka listener", "kafka-listen", "kafka_listen",
			"Kafka protocol address, host:port; empty disables it.",
			func(c *Config) value { return stringValue{&c.KafkaListen} }),
		setting("AMQP listener", "amqp-listen", "amqp_listen",
			"AMQP 0-9-1 address, host:port; empty disables it.",
			func(c *Config) value { return stringValue{&c.AMQPListen} }),
		setting("HTTP listener", "http-listen", "http_listen",
			"HTTP address for health, readiness and metrics, host:port; empty disables it.",
			func(c *Config) value { return stringValue{&c.HTTPListen} }),
		setting("Kafka TLS listener", "kafka-tls-listen", "kafka_tls_listen",
			"Kafka protocol over TLS (Kafka's SSL listener), host:port, beside the plain one; empty disables it. Needs tls.cert_file and tls.key_file.",
			func(c *Config) value { return stringValue{&c.KafkaTLSListen} }),
		setting("AMQPS listener", "amqps-listen", "amqps_listen",
			"AMQP 0-9-1 over TLS, host:port (5671 is the usual port), beside the plain one; empty disables it. Needs tls.cert_file and tls.key_file.",
			func(c *Config) value { return stringValue{&c.AMQPSListen} }),
		setting("HTTPS listener", "https-listen", "https_listen",
			"The HTTP listener's endpoints over TLS (HTTPS, WSS, gRPC with TLS), host:port, beside the plain one; empty disables it. Needs tls.cert_file and tls.key_file.",
			func(c *Config) value { return stringValue{&c.HTTPSListen} }),
		setting("Kafka TLS advertised address", "kafka-tls-advertise", "kafka_tls_advertise",
			"host:port clients of the Kafka TLS listener are told to connect to; empty means that listener's address.",
			func(c *Config) value { return stringValue{&c.KafkaTLSAdvertise} }),
		setting("TLS certificate file", "tls-cert-file", "tls.cert_file",
			"PEM file of the TLS listeners' certificate, followed by any intermediate certificates. Read at start and on SIGHUP.",
			func(c *Config) value { return stringValue{&c.TLS.CertFile} }),
		setting("TLS key file", "tls-key-file", "tls.key_file",
			"PEM file of the certificate's private key. Read at start and on SIGHUP.",
			func(c *Config) value { return stringValue{&c.TLS.KeyFile} }),
		setting("TLS CA file", "tls-ca-file", "tls.ca_file",
			"PEM file of the certificate authorities client certificates must chain to. Read at start and on SIGHUP.",
			func(c *Config) value { return stringValue{&c.TLS.CAFile} }),
		setting("TLS client authentication", "tls-client-auth", "tls.client_auth",
			"Whether TLS clients must present a certificate signed by tls.ca_file: none, optional (checked when given) or required (mutual TLS).",
			func(c *Config) value { return stringValue{&c.TLS.ClientAuth} }),
		setting("TCP keepalive", "tcp-keepalive", "tcp_keepalive",
			"TCP keepalive of every listener's connections: idle time before the first probe and time between probes, whole seconds; 9 unanswered probes drop a connection whose peer vanished. 0 disables it.",
			func(c *Config) value { return durationValue{&c.TCPKeepAlive} }),
		setting("Kafka advertised address", "kafka-advertise", "kafka_advertise",
			"host:port Kafka clients are told to connect to; empty means the Kafka listener's address.",
			func(c *Config) value { return stringValue{&c.KafkaAdvertise} }),
		setting("Kafka vhost", "kafka-vhost", "kafka_vhost",
			"The vhost Kafka topics and consumer groups belong to: a SASL user's permissions in it decide what the user may do with them.",
			func(c *Config) value { return stringValue{&c.KafkaVhost} }),
		setting("Kafka maximum request size", "kafka-max-request-bytes", "kafka_max_request_bytes",
			"Largest Kafka request, in bytes; a larger one closes the connection.",
			func(c *Config) value { return intValue{&c.KafkaMaxRequestBytes} }),
		setting("Kafka maximum fetch size", "kafka-fetch-max-bytes", "kafka_fetch_max_bytes",
			"Largest Kafka fetch response, in bytes, whatever the client asks (Kafka's fetch.max.bytes); a first batch larger than it is still sent whole.",
			func(c *Config) value { return intValue{&c.KafkaFetchMaxBytes} }),
		setting("Kafka idle connection timeout", "kafka-connections-max-idle", "kafka_connections_max_idle",
			"Close a Kafka connection that has sent nothing and awaited no response for this long (Kafka's connections.max.idle.ms); 0 never closes one.",
			func(c *Config) value { return durationValue{&c.KafkaConnectionsMaxIdle} }),
		setting("AMQP maximum message size", "amqp-max-message-bytes", "amqp_max_message_bytes",
			"Largest AMQP message body, in bytes; a larger one is refused with 406 and closes its channel.",
			func(c *Config) value { return intValue{&c.AMQPMaxMessageBytes} }),
		setting("AMQP heartbeat", "amqp-heartbeat", "amqp_heartbeat",
			"Heartbeat interval offered to AMQP clients; 0 offers none. Two missed intervals close a connection.",
			func(c *Config) value { return durationValue{&c.AMQPHeartbeat} }),
		setting("AMQP consumer timeout", "amqp-consumer-timeout", "amqp_consumer_timeout",
			"How long a delivery may stay unacknowledged before its channel is closed with 406 PRECONDITION_FAILED and its unacknowledged messages are requeued (RabbitMQ's consumer_timeout), checked once a second; a queue's or a consumer's x-consumer-timeout overrides it. 0 means no timeout.",
			func(c *Config) value { return durationValue{&c.AMQPConsumerTimeout} }),
		setting("AMQP queue memory", "amqp-queue-memory-bytes", "amqp_queue_memory_bytes",
			"Bytes of ready persistent messages a durable queue keeps in memory; the rest, and those recovered at startup, wait in the queue's log and are read back when delivered. -1 keeps every message in memory (a start then reads them all back).",
			func(c *Config) value { return int64Value{&c.AMQPQueueMemoryBytes} }),
		setting("Auto-create topics", "auto-create-topics", "auto_create_topics",
			"Create an unknown topic when a client first uses it (Kafka Metadata and Produce).",
			func(c *Config) value { return boolValue{&c.AutoCreateTopics} }),
		setting("Default partitions", "default-partitions", "default_partitions",
			"Partitions of a topic created automatically or without a partition count.",
			func(c *Config) value { return intValue{&c.DefaultPartitions} }),
		setting("Require authentication", "require-auth", "require_auth",
			"Refuse unauthenticated clients on every protocol: Kafka clients must log in with SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) before any request but ApiVersions, and WebSocket anonymous access is off whatever websocket.anonymous says. AMQP, REST and gRPC always require a login.",
			func(c *Config) value { return boolValue{&c.RequireAuth} }),
		setting("Log level", "log-level", "log_level",
			"Least severe log level written: debug, info, warn or error.",
			func(c *Config) value { return stringValue{&c.LogLevel} }),
		setting("Log format", "log-format", "log_format",
			"Log format: text or json.",
			func(c *Config) value { return stringValue{&c.LogFormat} }),
		setting("Shutdown timeout", "shutdown-timeout", "shutdown_timeout",
			"How long listeners may drain on shutdown before their connections are closed.",
			func(c *Config) value { return durationValue{&c.ShutdownTimeout} }),
		setting("Fsync policy", "fsync", "storage.fsync",
			"When appends are forced to disk: always (acknowledge after fsync, with group commit), interval or never.",
			func(c *Config) value { return stringValue{&c.Storage.Fsync} }),
		setting("Fsync interval", "fsync-interval", "storage.fsync_interval",
			"Period of the background fsync when the fsync policy is interval.",
			func(c *Config) value { return durationValue{&c.Storage.FsyncInterval} }),
		setting("Segment size", "segment-bytes", "storage.segment_bytes",
			"Roll a log's active segment when it would grow past this many bytes.",
			func(c *Config) value { return int64Value{&c.Storage.SegmentBytes} }),
		setting("Segment age", "segment-time", "storage.segment_time",
			"Roll a log's active segment once its first record is this old.",
			func(c *Config) value { return durationValue{&c.Storage.SegmentTime} }),
		setting("Retention time", "retention-time", "storage.retention_time",
			"Delete a segment once its newest record is this old; 0 or negative keeps data forever.",
			func(c *Config) value { return durationValue{&c.Storage.RetentionTime} }),
		setting("Retention size", "retention-bytes", "storage.retention_bytes",
			"Delete a log's oldest segments while it is larger than this many bytes; 0 or negative keeps data forever.",
			func(c *Config) value { return int64Value{&c.Storage.RetentionBytes} }),
		setting("Maximum message size", "max-message-bytes", "storage.max_message_bytes",
			"Largest record batch, in bytes, a log accepts.",
			func(c *Config) value { return intValue{&c.Storage.MaxMessageBytes} }),
		setting("Index interval", "index-interval-bytes", "storage.index_interval_bytes",
			"Bytes of log between two entries of a segment's sparse index.",
			func(c *Config) value { return intValue{&c.Storage.IndexIntervalBytes} }),
		setting("Retention check interval", "retention-check-interval", "storage.retention_check_interval",
			"How often retention and segment age are enforced.",
			func(c *Config) value { return durationValue{&c.Storage.RetentionCheckInterval} }),
		setting("WebSocket ping interval", "ws-ping-interval", "websocket.ping_interval",
			"How often the server pings each WebSocket connection; one that does not answer within another interval is closed (4008).",
			func(c *Config) value { return durationValue{&c.WebSocket.PingInterval} }),
		setting("WebSocket maximum message size", "ws-max-message-bytes", "websocket.max_message_bytes",
			"Largest frame a WebSocket client may send, in bytes; a larger one closes the connection with 1009.",
			func(c *Config) value { return intValue{&c.WebSocket.MaxMessageBytes} }),
		setting("WebSocket outbound buffer", "ws-outbox-bytes", "websocket.outbox_bytes",
			"Bytes that may wait to be sent to one WebSocket connection; past it the client is closed as slow (4001).",
			func(c *Config) value { return intValue{&c.WebSocket.OutboxBytes} }),
		setting("WebSocket allowed origins", "ws-allowed-origins", "websocket.allowed_origins",
			"Comma-separated Origin hosts (patterns such as *.example.com) allowed besides the listener's own; * allows any.",
			func(c *Config) value { return stringValue{&c.WebSocket.AllowedOrigins} }),
		setting("WebSocket anonymous access", "ws-anonymous", "websocket.anonymous",
			"Let WebSocket clients in without credentials, each under a generated client id.",
			func(c *Config) value { return boolValue{&c.WebSocket.Anonymous} }),
		setting("WebSocket broadcasters", "ws-broadcast-users", "websocket.broadcast_users",
			"Comma-separated users who may broadcast to every WebSocket connection; * is every authenticated user. A JWT may grant it with the claim broadcast: true.",
			func(c *Config) value { return stringValue{&c.WebSocket.BroadcastUsers} }),
		setting("WebSocket JWT HS256 secret file", "ws-jwt-hs256-secret-file", "websocket.jwt_hs256_secret_file",
			"File holding the shared secret (at least 32 bytes) that HS256 tokens are checked with; empty refuses HS256 tokens.",
			func(c *Config) value { return stringValue{&c.WebSocket.JWTSecretFile} }),
		setting("WebSocket JWT RS256 public key file", "ws-jwt-rs256-public-key-file", "websocket.jwt_rs256_public_key_file",
			"PEM file of the RSA public key that RS256 tokens are checked with; empty refuses RS256 tokens.",
			func(c *Config) value { return stringValue{&c.WebSocket.JWTPublicKeyFile} }),
		setting("Kafka maximum connections", "kafka-max-connections", "limits.kafka_max_connections",
			"Most open Kafka connections; a connection beyond it is closed as soon as it is accepted. 0 means no limit.",
			func(c *Config) value { return intValue{&c.Limits.KafkaMaxConnections} }),
		setting("AMQP maximum connections", "amqp-max-connections", "limits.amqp_max_connections",
			"Most open AMQP connections; connection.open beyond it is refused with 530 NOT_ALLOWED. 0 means no limit.",
			func(c *Config) value { return intValue{&c.Limits.AMQPMaxConnections} }),
		setting("HTTP maximum connections", "http-max-connections", "limits.http_max_connections",
			"Most open connections to the HTTP listener (WebSocket, REST, gRPC, metrics); a request on a connection beyond it gets 503. 0 means no limit.",
			func(c *Config) value { return intValue{&c.Limits.HTTPMaxConnections} }),
		setting("Maximum connections per user", "max-connections-per-user", "limits.max_connections_per_user",
			"Most connections of one user: AMQP connections, WebSocket sessions and REST or gRPC calls in progress together (Kafka has no users yet). 0 means no limit.",
			func(c *Config) value { return intValue{&c.Limits.MaxConnectionsPerUser} }),
		setting("AMQP channel max", "amqp-channel-max", "limits.amqp_channel_max",
			"channel_max offered to AMQP clients: the highest channel number, so the most channels, of a connection; beyond it, 530 NOT_ALLOWED. 0 means 65535.",
			func(c *Config) value { return intValue{&c.Limits.AMQPChannelMax} }),
		setting("AMQP frame max", "amqp-frame-max", "limits.amqp_frame_max",
			"frame_max offered to AMQP clients, in bytes (4096 to 16777216); a larger frame closes the connection with 501 FRAME_ERROR.",
			func(c *Config) value { return intValue{&c.Limits.AMQPFrameMax} }),
		setting("Maximum queues per vhost", "max-queues-per-vhost", "limits.max_queues_per_vhost",
			"Most queues in one vhost; queue.declare beyond it is refused with 406 PRECONDITION_FAILED. 0 means no limit.",
			func(c *Config) value { return intValue{&c.Limits.MaxQueuesPerVhost} }),
		setting("Maximum topics", "max-topics", "limits.max_topics",
			"Most Kafka topics (they live in vhost /, apart from its queues); creating one beyond it is refused with POLICY_VIOLATION. 0 means no limit.",
			func(c *Config) value { return intValue{&c.Limits.MaxTopics} }),
		setting("Disk free limit", "disk-free-limit-bytes", "alarms.disk_free_limit_bytes",
			"Free bytes on the data directory's filesystem below which the disk alarm is set: AMQP publishing connections are blocked (connection.blocked), Kafka produce is refused with KAFKA_STORAGE_ERROR, gateway produce and publish with 503; consumers go on. 0 disables it.",
			func(c *Config) value { return int64Value{&c.Alarms.DiskFreeLimitBytes} }),
		setting("Memory high watermark", "memory-high-watermark-bytes", "alarms.memory_high_watermark_bytes",
			"Memory use, in bytes, at which the memory alarm is set (it clears below 90% of it): AMQP publishing connections are blocked, Kafka produce responses are throttled, gateway produce and publish get 503. 0 means 40% of the machine's or cgroup's memory; -1 disables it.",
			func(c *Config) value { return int64Value{&c.Alarms.MemoryHighWatermarkBytes} }),
		setting("Alarm check interval", "alarm-check-interval", "alarms.check_interval",
			"How often free disk space and memory use are measured for the alarms.",
			func(c *Config) value { return durationValue{&c.Alarms.CheckInterval} }),
	}
	def := Default()
	for i := range list {
		list[i].Default = list[i].field(&def).String()
	}
	return list
}

// setting builds a Setting whose environment variable follows from its flag.
func setting(name, flag, yamlKey, help string, field func(*Config) value) Setting {
	return Setting{
		Name:    name,
		Flag:    flag,
		Env:     EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_")),
		YAMLKey: yamlKey,
		Help:    help,
		field:   field,
	}
}

// lookup returns the setting with the given YAML key.
func lookup(yamlKey string) (Setting, bool) {
	for _, s := range Settings() {
		if s.YAMLKey == yamlKey {
			return s, true
		}
	}
	return Setting{}, false
}
