package service

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
)

// Options configure a Service.
type Options struct {
	// AutoCreateTopics creates an unknown topic on its first produce, with
	// DefaultPartitions partitions, as the Kafka listener does.
	AutoCreateTopics  bool
	DefaultPartitions int32
	// MaxMessageBytes bounds one record's value or one message's body.
	// Zero means 1 MiB.
	MaxMessageBytes int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Users and KafkaVhost decide what each user may do (access.go); nil
	// Users allows everything.
	Users      *auth.Store
	KafkaVhost string
}

// Service is the gateway's view of the core. It is safe for concurrent use.
type Service struct {
	b      *broker.Broker
	logger *slog.Logger
	opts   Options
	decomp kgo.Decompressor
	rr     atomic.Uint32 // round-robin partition for records without a key
}

// New returns a Service over b. A nil logger discards logs.
func New(b *broker.Broker, logger *slog.Logger, opts Options) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.DefaultPartitions <= 0 {
		opts.DefaultPartitions = 1
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{b: b, logger: logger, opts: opts, decomp: kgo.DefaultDecompressor()}
}

// Broker returns the core the service works on.
func (s *Service) Broker() *broker.Broker { return s.b }

// MaxMessageBytes is the largest value or body an operation accepts.
func (s *Service) MaxMessageBytes() int { return s.opts.MaxMessageBytes }
