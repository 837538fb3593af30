package broker

import (
	"log/slog"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
)

// Options configures a Broker.
type Options struct {
	// DataDir holds the metadata log and every partition log.
	DataDir string
	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LogDefaults are the settings of a new topic's partition logs before
	// its own configs are applied.
	LogDefaults storage.LogConfig
	// RetentionCheckInterval is how often retention and segment age are
	// enforced; zero means five minutes.
	RetentionCheckInterval time.Duration
}

// Broker is the protocol-neutral core. (Work in progress: skeleton.)
type Broker struct{}

// Open opens or creates the broker state in opts.DataDir.
func Open(opts Options) (*Broker, error) { return &Broker{}, nil }

// Close stops background work and fsyncs and closes every log.
func (b *Broker) Close() error { return nil }
