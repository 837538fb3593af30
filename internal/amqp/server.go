package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/limits"
)

// Options configures the AMQP server.
type Options struct {
	// Users authenticates logins; nil means the default store (guest/guest
	// from loopback only).
	Users *auth.Store
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Version is the product version sent in the server properties.
	Version string
	// FrameMax is the largest frame offered in connection.tune; zero means
	// 131072, RabbitMQ's default.
	FrameMax uint32
	// ChannelMax is the channel_max offered: the highest channel number,
	// so the most channels, of a connection; zero means 2047.
	ChannelMax uint16
	// MaxConnections bounds the open connections: connection.open beyond
	// it is refused with 530 NOT_ALLOWED, as RabbitMQ's connection_max.
	// Zero means no limit.
	MaxConnections int
	// UserLimits bounds the connections of each user (shared with the
	// gateway's faces): connection.open beyond it is refused with 530
	// NOT_ALLOWED, as RabbitMQ's per-user max-connections. Nil means no
	// limit.
	UserLimits *limits.Users
	// Heartbeat is the heartbeat interval offered; zero means 60s, a
	// negative value offers none.
	Heartbeat time.Duration
	// MaxMessageBytes is the largest message body accepted; zero means
	// 16 MiB, RabbitMQ's default.
	MaxMessageBytes int
	// HandshakeTimeout bounds the time from connect to connection.open-ok;
	// zero means 10s.
	HandshakeTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ConsumerTimeout is how long a delivery may stay unacknowledged
	// before its channel is closed with 406 PRECONDITION_FAILED and its
	// unacknowledged messages requeued (RabbitMQ's consumer_timeout), when
	// neither its consumer nor its queue has an x-consumer-timeout. Zero or
	// negative means none.
	ConsumerTimeout time.Duration
	// ConsumerTimeoutCheck is how often deliveries are checked against
	// their timeout; zero means once a second.
	ConsumerTimeoutCheck time.Duration
}

func (o Options) withDefaults() Options {
	if o.Users == nil {
		o.Users = auth.NewDefaultStore()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FrameMax == 0 {
		o.FrameMax = 131072
	}
	if o.ChannelMax == 0 {
		o.ChannelMax = 2047
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 60 * time.Second
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 16 << 20
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.ConsumerTimeoutCheck <= 0 {
		o.ConsumerTimeoutCheck = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	return o
}

// Server serves AMQP 0-9-1 connections on the broker.
type Server struct {
	b      *broker.Broker
	opts   Options
	logger *slog.Logger

	mu       sync.Mutex
	lns      []net.Listener // every listener Serve was given (plain and TLS)
	conns    map[*conn]struct{}
	admitted map[*conn]func() // open connections and what frees their slots (limits.go)
	closing  bool
	wg       sync.WaitGroup
	nextID   atomic.Uint64
	// forced is closed when Shutdown's deadline passes: waits for
	// confirms end, and the sockets are closed.
	forced     chan struct{}
	forcedOnce sync.Once

	gate     *limits.Gate       // MaxConnections
	refusals *limits.LogSampler // one line per kind of limit refusal per interval

	stopping    chan struct{} // closed by Shutdown: ends waits on resource alarms
	unsubscribe func()        // from the broker's alarms

	replies       *replyRegistry // direct reply-to consumers (replyto.go)
	removeReplier func()         // from the broker's direct repliers
}

// NewServer returns a server for b.
func NewServer(b *broker.Broker, opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{b: b, opts: opts, logger: opts.Logger.With("listener", "amqp"), conns: map[*conn]struct{}{},
		admitted: map[*conn]func(){}, gate: limits.NewGate(opts.MaxConnections), forced: make(chan struct{}), stopping: make(chan struct{})}
	s.refusals = limits.NewLogSampler(s.logger, 0, opts.Now)
	s.unsubscribe = b.Alarms().Subscribe(s.alarmsChanged)
	s.replies = newReplyRegistry()
	s.removeReplier = b.RegisterDirectReplier(s.replies)
	return s
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// Shutdown, or the accept error that stopped it. Serve may run on several
// listeners at once (a plain one and a TLS one); their connections share
// the server's limits, connection ids and shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("amqp accept: %w", err)
		}
		c := newConn(s, nc, "amqp-"+strconv.FormatUint(s.nextID.Add(1), 10))
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.release(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting and closes every connection: each reads the
// frames its client sent before the shutdown, confirms every publish it
// read, and is closed with 320 CONNECTION_FORCED (its unacknowledged
// messages go back to their queues). Shutdown waits for them, at most until
// ctx is done; then it closes the sockets that are left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closing
	s.closing = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.shutdown()
	}
	if first {
		// A reader blocked by an alarm wakes and closes its connection
		// (alarms.go).
		close(s.stopping)
		s.unsubscribe()
		s.removeReplier()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.forcedOnce.Do(func() { close(s.forced) })
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// serverProperties is the server-properties table of connection.start.
func (s *Server) serverProperties() map[string]any {
	return map[string]any{
		"product":     "Wharf",
		"version":     s.opts.Version,
		"platform":    "Go " + runtime.Version(),
		"copyright":   "The Wharf authors",
		"information": "Kafka, AMQP 0-9-1 and WebSocket in one broker",
		"capabilities": map[string]any{
			"publisher_confirms":           true,
			"exchange_exchange_bindings":   true,
			"basic.nack":                   true,
			"consumer_cancel_notify":       true,
			"consumer_priorities":          true,
			"authentication_failure_close": true,
			"per_consumer_qos":             true,
			"connection.blocked":           true, // resource alarms; see alarms.go
			"direct_reply_to":              true, // see replyto.go
		},
	}
}

// BufferedBytes returns the bytes waiting in connections' outboxes to be
// written to their clients. Queues stop delivering to a connection whose
// outbox holds more than 2 MiB, and its reader stops reading, so a client
// that stops reading holds about that much, plus at most one message per
// queue that was delivering to it at that moment.
func (s *Server) BufferedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for c := range s.conns {
		n += c.out.pending.Load()
	}
	return n
}

// Connections returns the number of open client connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
