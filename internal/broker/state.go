package broker

import (
	"fmt"
	"maps"
	"sort"
)

// TopicState is a topic as the metadata records it.
type TopicState struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    map[string]string // explicit configs; defaults are not stored
}

// State is the metadata state machine. Apply is deterministic: the same
// commands in the same order give the same State on every node.
type State struct {
	topics         map[string]*TopicState
	nextProducerID int64 // the first producer id no block has reserved

	amqp *amqpState // the AMQP model: vhosts, exchanges, queues, bindings
}

// NewState returns an empty State: no topics, and the AMQP model's default
// vhost "/" with its predeclared exchanges.
func NewState() *State { return &State{topics: map[string]*TopicState{}, amqp: newAMQPState()} }

// Apply applies one command. A command that does not fit the state (a topic
// that already exists, for instance) is rejected with an error and changes
// nothing, the same way on every replay.
func (s *State) Apply(c Command) error {
	switch {
	case c.CreateTopic != nil:
		ct := c.CreateTopic
		if _, ok := s.topics[ct.Name]; ok {
			return fmt.Errorf("%w: %q", ErrTopicExists, ct.Name)
		}
		if ct.Partitions < 1 {
			return fmt.Errorf("%w: %d", ErrInvalidPartitions, ct.Partitions)
		}
		s.topics[ct.Name] = &TopicState{Name: ct.Name, ID: ct.ID, Partitions: ct.Partitions, Configs: maps.Clone(ct.Configs)}
	case c.DeleteTopic != nil:
		t, ok := s.topics[c.DeleteTopic.Name]
		if !ok || t.ID != c.DeleteTopic.ID {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, c.DeleteTopic.Name)
		}
		delete(s.topics, c.DeleteTopic.Name)
	case c.SetTopicConfig != nil:
		t, ok := s.topics[c.SetTopicConfig.Name]
		if !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, c.SetTopicConfig.Name)
		}
		t.Configs = maps.Clone(c.SetTopicConfig.Configs)
	case c.CreatePartitions != nil:
		t, ok := s.topics[c.CreatePartitions.Name]
		if !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, c.CreatePartitions.Name)
		}
		if c.CreatePartitions.Total <= t.Partitions {
			return fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger, not %d",
				ErrInvalidPartitions, t.Name, t.Partitions, c.CreatePartitions.Total)
		}
		t.Partitions = c.CreatePartitions.Total
	case c.AllocateProducerIDs != nil:
		return s.applyAllocateProducerIDs(c.AllocateProducerIDs)
	case c.AMQP != nil:
		return s.applyAMQP(c.AMQP)
	default:
		return fmt.Errorf("empty metadata command")
	}
	return nil
}

// Topic returns a copy of a topic's state.
func (s *State) Topic(name string) (TopicState, bool) {
	t, ok := s.topics[name]
	if !ok {
		return TopicState{}, false
	}
	c := *t
	c.Configs = maps.Clone(t.Configs)
	return c, true
}

// Topics returns copies of every topic's state, sorted by name.
func (s *State) Topics() []TopicState {
	out := make([]TopicState, 0, len(s.topics))
	for name := range s.topics {
		t, _ := s.Topic(name)
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
