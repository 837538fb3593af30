package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/limits"
)

// Options configures the Kafka listener.
type Options struct {
	// Advertise is the host:port clients are told to connect to. Empty means
	// the listener's address, with an unspecified host replaced by the
	// machine's hostname.
	Advertise string
	// MaxRequestBytes bounds a request's size prefix; a larger request
	// closes the connection, as Kafka's socket.request.max.bytes does.
	MaxRequestBytes int32
	// FetchMaxBytes bounds a fetch response whatever the request asks, as
	// Kafka's fetch.max.bytes does (a first batch larger than it is still
	// sent whole, so consumers progress). Zero means 55 MiB, Kafka's
	// default.
	FetchMaxBytes int32
	// ConnectionsMaxIdle closes a connection that has sent nothing and
	// awaited no response for that long, as Kafka's
	// connections.max.idle.ms does. Zero never closes one.
	ConnectionsMaxIdle time.Duration
	// AutoCreateTopics creates an unknown topic on Metadata (when the client
	// allows it) and on Produce, with DefaultPartitions partitions.
	AutoCreateTopics  bool
	DefaultPartitions int32
	// NodeID is this broker's id in Metadata.
	NodeID int32
	// MaxInFlight bounds the requests one connection may have pipelined
	// before the server stops reading from it.
	MaxInFlight int
	// MaxConnections bounds the open connections; one accepted beyond it
	// is closed at once, as Kafka closes connections past
	// max.connections.per.ip (the protocol has no error for it). Zero
	// means no limit.
	MaxConnections int
	// AlarmThrottle is the throttle time of a produce request while the
	// memory alarm is set; zero means one second.
	AlarmThrottle time.Duration
	// Users authenticates SASL logins (sasl.go); nil refuses them all.
	Users *auth.Store
	// RequireSASL refuses every request but ApiVersions and the SASL ones
	// from a connection that has not authenticated.
	RequireSASL bool
	// Vhost is the vhost whose permissions govern topics and groups
	// (authz.go); empty means "/".
	Vhost  string
	Logger *slog.Logger
}

// Server speaks the Kafka protocol on one listener.
type Server struct {
	b      *broker.Broker
	opts   Options
	logger *slog.Logger

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	closing  bool
	wg       sync.WaitGroup
	host     string
	port     int32
	handlers map[int16]handler
	bufs     bufPool
	buffered atomic.Int64  // bytes of responses built and not yet written
	stopping chan struct{} // closed by Shutdown; ends waits on other clients (JoinGroup, SyncGroup)
	refusals *limits.LogSampler
}

// NewServer returns a server for b; call Serve to start it.
func NewServer(b *broker.Broker, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 100 << 20
	}
	if opts.FetchMaxBytes <= 0 {
		opts.FetchMaxBytes = 55 << 20
	}
	if opts.DefaultPartitions <= 0 {
		opts.DefaultPartitions = 1
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 64
	}
	if opts.AlarmThrottle <= 0 {
		opts.AlarmThrottle = defaultAlarmThrottle
	}
	s := &Server{b: b, opts: opts, logger: opts.Logger.With("listener", "kafka"), conns: map[*conn]struct{}{}, stopping: make(chan struct{})}
	s.refusals = limits.NewLogSampler(s.logger, 0, nil)
	s.handlers = s.handlerTable()
	return s
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// shutdown.
func (s *Server) Serve(ln net.Listener) error {
	host, port, err := advertised(s.opts.Advertise, ln.Addr())
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.ln, s.host, s.port = ln, host, port
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
			return fmt.Errorf("kafka accept: %w", err)
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		if max := s.opts.MaxConnections; max > 0 && len(s.conns) >= max {
			s.mu.Unlock()
			c.cancel()
			nc.Close()
			s.refusals.Warn("connection limit", "connection refused: connection limit of the listener reached",
				"remote", nc.RemoteAddr().String(), "limit", max, "setting", "limits.kafka_max_connections")
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting, lets every connection finish the requests it
// has read, and closes them; past ctx's deadline it closes them at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.stopping)
	}
	s.closing = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// endpoint is the advertised host and port.
func (s *Server) endpoint() (string, int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host, s.port
}

func advertised(adv string, addr net.Addr) (string, int32, error) {
	hostport := adv
	if hostport == "" {
		hostport = addr.String()
	}
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("kafka advertised address %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("kafka advertised port %q: %w", portStr, err)
	}
	if ip := net.ParseIP(host); adv == "" && (host == "" || ip != nil && ip.IsUnspecified()) {
		if h, herr := os.Hostname(); herr == nil {
			host = h
		} else {
			host = "127.0.0.1"
		}
	}
	return host, int32(port), nil
}

// BufferedBytes returns the bytes of responses held in memory until their
// clients read them: the encoded response being written, and the fetched
// records it was built from, on every connection. A connection's writer
// finishes and writes one response at a time, so a client that stops
// reading holds at most one response, itself bounded by FetchMaxBytes (plus
// one batch) for a fetch.
func (s *Server) BufferedBytes() int64 { return s.buffered.Load() }

// Connections returns the number of open client connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
