package kafka

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// topicConfigMeta is what DescribeConfigs tells about a topic config
// beyond its value: its Kafka type, its documentation and the broker
// setting that gives its default (its synonym).
type topicConfigMeta struct {
	typ    kmsg.ConfigType
	broker string
	doc    string
}

// topicConfigInfo describes a topic config by name; ok is false for a name
// this table does not know.
func topicConfigInfo(name string) (meta topicConfigMeta, ok bool) {
	switch name {
	case "cleanup.policy":
		return topicConfigMeta{kmsg.ConfigTypeList, "log.cleanup.policy",
			`What happens to old log segments: "delete" removes whole segments once they pass the retention time or size. Compaction is not supported yet.`}, true
	case "retention.ms":
		return topicConfigMeta{kmsg.ConfigTypeLong, "log.retention.ms",
			"How long a log segment is kept after its newest record, in milliseconds, before it is deleted; -1 keeps data forever."}, true
	case "retention.bytes":
		return topicConfigMeta{kmsg.ConfigTypeLong, "log.retention.bytes",
			"The size a partition may grow to before its oldest segments are deleted, in bytes; -1 means no limit."}, true
	case "segment.bytes":
		return topicConfigMeta{kmsg.ConfigTypeInt, "log.segment.bytes",
			"The size of one log segment file, in bytes. Retention deletes whole segments, so smaller segments make it finer."}, true
	case "segment.ms":
		return topicConfigMeta{kmsg.ConfigTypeLong, "log.roll.ms",
			"How long after its first record a segment is rolled even if it is not full, in milliseconds, so retention can delete old data."}, true
	case "max.message.bytes":
		return topicConfigMeta{kmsg.ConfigTypeInt, "message.max.bytes",
			"The largest record batch the topic accepts, in bytes, after compression."}, true
	case "message.timestamp.type":
		return topicConfigMeta{kmsg.ConfigTypeString, "log.message.timestamp.type",
			"Which timestamp records keep: CreateTime (the producer's) or LogAppendTime (the broker's clock when it appends)."}, true
	case "index.interval.bytes":
		return topicConfigMeta{kmsg.ConfigTypeInt, "log.index.interval.bytes",
			"The number of log bytes between two entries of a segment's sparse offset index."}, true
	case "wharf.fsync.policy":
		return topicConfigMeta{kmsg.ConfigTypeString, "wharf.fsync.policy",
			"When appends are forced to disk: always (acknowledged after an fsync shared by concurrent appends), interval or never."}, true
	case "wharf.fsync.interval.ms":
		return topicConfigMeta{kmsg.ConfigTypeLong, "wharf.fsync.interval.ms",
			"The period of the background fsync when wharf.fsync.policy is interval, in milliseconds."}, true
	}
	return topicConfigMeta{typ: kmsg.ConfigTypeString, broker: name}, false
}

// configListValued reports whether a topic config is a comma-separated list,
// the only kind IncrementalAlterConfigs may APPEND to or SUBTRACT from.
func configListValued(name string) bool {
	meta, _ := topicConfigInfo(name)
	return meta.typ == kmsg.ConfigTypeList
}

// describedConfig is one entry of a DescribeConfigs answer before it is
// cut to a version: its value, where the value comes from, and the values
// it overrides, most specific first.
type describedConfig struct {
	name     string
	value    string
	readOnly bool
	typ      kmsg.ConfigType
	doc      string
	synonyms []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
}

func synonym(name, value string, source kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, &value, source
	return s
}

// topicConfigs describes a topic's effective configs. A value the topic
// sets is DYNAMIC_TOPIC_CONFIG; otherwise it is the broker's, which is
// STATIC_BROKER_CONFIG when the broker's settings changed it from Kafka's
// default and DEFAULT_CONFIG when they did not.
func (s *Server) topicConfigs(entries []broker.ConfigEntry) []describedConfig {
	brokerValues := map[string]string{}
	for _, e := range s.b.DescribeConfigs(nil) {
		brokerValues[e.Name] = e.Value
	}
	builtin := map[string]string{}
	for _, e := range broker.BuiltinTopicConfigs() {
		builtin[e.Name] = e.Value
	}
	out := make([]describedConfig, 0, len(entries))
	for _, e := range entries {
		meta, _ := topicConfigInfo(e.Name)
		c := describedConfig{name: e.Name, value: e.Value, typ: meta.typ, doc: meta.doc}
		if !e.IsDefault {
			c.synonyms = append(c.synonyms, synonym(e.Name, e.Value, kmsg.ConfigSourceDynamicTopicConfig))
		}
		if v, ok := brokerValues[e.Name]; ok && v != builtin[e.Name] {
			c.synonyms = append(c.synonyms, synonym(meta.broker, v, kmsg.ConfigSourceStaticBrokerConfig))
		}
		if v, ok := builtin[e.Name]; ok {
			c.synonyms = append(c.synonyms, synonym(meta.broker, v, kmsg.ConfigSourceDefaultConfig))
		}
		out = append(out, c)
	}
	return out
}

// brokerConfigs describes the broker's settings as Kafka names them. All
// are read-only: they are set when the broker starts. A setting is
// STATIC_BROKER_CONFIG when it differs from Kafka's default (or Kafka has
// none) and DEFAULT_CONFIG otherwise.
func (s *Server) brokerConfigs() []describedConfig {
	var out []describedConfig
	add := func(name, value, kafkaDefault string, hasDefault bool, typ kmsg.ConfigType, doc string) {
		c := describedConfig{name: name, value: value, readOnly: true, typ: typ, doc: doc}
		if !hasDefault || value != kafkaDefault {
			c.synonyms = append(c.synonyms, synonym(name, value, kmsg.ConfigSourceStaticBrokerConfig))
		}
		if hasDefault {
			c.synonyms = append(c.synonyms, synonym(name, kafkaDefault, kmsg.ConfigSourceDefaultConfig))
		}
		out = append(out, c)
	}
	node := strconv.Itoa(int(s.opts.NodeID))
	host, port := s.endpoint()
	add("node.id", node, "", false, kmsg.ConfigTypeInt, "This node's id in the cluster.")
	add("broker.id", node, "", false, kmsg.ConfigTypeInt, "This broker's id: the same as node.id.")
	add("process.roles", "broker,controller", "", false, kmsg.ConfigTypeList,
		"The roles this node plays: it is both a broker and the controller of its metadata.")
	add("advertised.listeners", fmt.Sprintf("PLAINTEXT://%s:%d", host, port), "", false, kmsg.ConfigTypeString,
		"The address clients are told to connect to.")
	add("num.partitions", strconv.Itoa(int(s.opts.DefaultPartitions)), "1", true, kmsg.ConfigTypeInt,
		"The partition count of a topic created automatically or without a partition count.")
	add("auto.create.topics.enable", strconv.FormatBool(s.opts.AutoCreateTopics), "true", true, kmsg.ConfigTypeBoolean,
		"Whether an unknown topic is created when a client first produces to it or asks for its metadata.")
	add("delete.topic.enable", "true", "true", true, kmsg.ConfigTypeBoolean, "Whether topics may be deleted.")
	add("default.replication.factor", "1", "1", true, kmsg.ConfigTypeInt,
		"The replication factor of automatically created topics: one node keeps one copy.")
	add("min.insync.replicas", "1", "1", true, kmsg.ConfigTypeInt,
		"The replicas that must have a write before acks=all acknowledges it: the one copy here.")
	add("socket.request.max.bytes", strconv.Itoa(int(s.opts.MaxRequestBytes)), "104857600", true, kmsg.ConfigTypeInt,
		"The largest request accepted, in bytes; a larger one closes the connection.")
	add("log.retention.check.interval.ms", strconv.FormatInt(s.b.RetentionCheckInterval().Milliseconds(), 10),
		strconv.FormatInt((5*time.Minute).Milliseconds(), 10), true, kmsg.ConfigTypeLong,
		"How often retention and segment age are enforced, in milliseconds.")
	builtin := map[string]string{}
	for _, e := range broker.BuiltinTopicConfigs() {
		builtin[e.Name] = e.Value
	}
	for _, e := range s.b.DescribeConfigs(nil) {
		meta, ok := topicConfigInfo(e.Name)
		if !ok {
			continue
		}
		def, hasDefault := builtin[e.Name]
		add(meta.broker, e.Value, def, hasDefault, meta.typ, meta.doc+" The default of topic config "+e.Name+".")
	}
	return out
}

// appendConfigs adds described configs to a DescribeConfigs resource in
// the form its version carries, keeping only the names asked for (all for a
// null list).
func appendConfigs(rr *kmsg.DescribeConfigsResponseResource, version int16, req *kmsg.DescribeConfigsRequest, names []string, cs []describedConfig) {
	var want map[string]bool
	if names != nil {
		want = make(map[string]bool, len(names))
		for _, n := range names {
			want[n] = true
		}
	}
	for _, c := range cs {
		if want != nil && !want[c.name] {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = c.name
		v := c.value
		rc.Value = &v
		rc.ReadOnly = c.readOnly
		rc.Source = kmsg.ConfigSourceDefaultConfig
		if len(c.synonyms) > 0 {
			rc.Source = c.synonyms[0].Source
		}
		rc.IsDefault = rc.Source == kmsg.ConfigSourceDefaultConfig
		if version >= 1 && req.IncludeSynonyms {
			rc.ConfigSynonyms = c.synonyms
		}
		if version >= 3 {
			rc.ConfigType = c.typ
			if req.IncludeDocumentation && c.doc != "" {
				doc := c.doc
				rc.Documentation = &doc
			}
		}
		rr.Configs = append(rr.Configs, rc)
	}
}
