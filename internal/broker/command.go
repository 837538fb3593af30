package broker

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// TopicID is a topic's 16-byte unique id (Kafka's topic UUID). It tells a
// topic from an earlier one of the same name.
type TopicID [16]byte

// String returns the id in hex.
func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id in hex.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex id.
func (id *TopicID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("topic id %q: want %d hex digits", b, 2*len(id))
	}
	_, err := hex.Decode(id[:], b)
	return err
}

// Command is one metadata change. Exactly one field is set. Commands are
// the only way metadata changes: they are validated against the current
// State, made durable in the metadata log (later: agreed through Raft), and
// then applied, deterministically, to the State. Everything random or
// time-dependent (ids, timestamps) is decided before the command is made,
// never during Apply.
type Command struct {
	CreateTopic      *CreateTopic      `json:"create_topic,omitempty"`
	DeleteTopic      *DeleteTopic      `json:"delete_topic,omitempty"`
	SetTopicConfig   *SetTopicConfig   `json:"set_topic_config,omitempty"`
	CreatePartitions *CreatePartitions `json:"create_partitions,omitempty"`

	AllocateProducerIDs *AllocateProducerIDs `json:"allocate_producer_ids,omitempty"`

	AMQP *AMQPChange `json:"amqp,omitempty"`
}

// CreateTopic adds a topic.
type CreateTopic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// DeleteTopic removes a topic and its data.
type DeleteTopic struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id"`
}

// SetTopicConfig replaces a topic's explicit configs.
type SetTopicConfig struct {
	Name    string            `json:"name"`
	Configs map[string]string `json:"configs"`
}

// CreatePartitions grows a topic to Total partitions.
type CreatePartitions struct {
	Name  string `json:"name"`
	Total int32  `json:"total"`
}

// kind names the command for logs and for the metadata log's record key.
func (c Command) kind() string {
	switch {
	case c.CreateTopic != nil:
		return "create_topic"
	case c.DeleteTopic != nil:
		return "delete_topic"
	case c.SetTopicConfig != nil:
		return "set_topic_config"
	case c.CreatePartitions != nil:
		return "create_partitions"
	case c.AllocateProducerIDs != nil:
		return "allocate_producer_ids"
	case c.AMQP != nil:
		return "amqp"
	}
	return "empty"
}

func encodeCommand(c Command) ([]byte, error) { return json.Marshal(c) }

func decodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decoding metadata command: %w", err)
	}
	return c, nil
}
