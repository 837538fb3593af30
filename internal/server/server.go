package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wharfmq/wharf/internal/alarm"
	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/config"
	"github.com/wharfmq/wharf/internal/gateway"
	"github.com/wharfmq/wharf/internal/limits"
	"github.com/wharfmq/wharf/internal/metrics"
)

// usersFile is the users file's name in the data directory.
const usersFile = "users.json"

// readHeaderTimeout bounds how long a client may take to send request
// headers to the HTTP listener.
const readHeaderTimeout = 10 * time.Second

// idleTimeout closes a kept-alive HTTP connection (HTTP/1.1 between
// requests, HTTP/2 without streams) that has been idle this long; without
// it net/http keeps idle connections forever.
const idleTimeout = 2 * time.Minute

// Run opens the broker in cfg.DataDir, starts the configured listeners and
// serves until ctx is cancelled or a listener fails. It then shuts down (see
// stopListeners) and closes the broker, which fsyncs everything written.
// It returns nil after a shutdown caused by ctx. A nil logger discards
// logs.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	return RunWithOptions(ctx, cfg, logger, Options{})
}

// RunWithOptions is Run with the seams in opts.
func RunWithOptions(ctx context.Context, cfg config.Config, logger *slog.Logger, opts Options) (err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logDefaults, err := cfg.LogConfig()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}

	fsyncs := metrics.NewFsyncHistogram()
	b, err := broker.Open(broker.Options{
		DataDir:                cfg.DataDir,
		Logger:                 logger,
		LogDefaults:            logDefaults,
		RetentionCheckInterval: cfg.Storage.RetentionCheckInterval,
		QueueMemoryBytes:       cfg.AMQPQueueMemoryBytes,
		ObserveSync:            metrics.ObserveFsync(fsyncs),
		MaxTopics:              cfg.Limits.MaxTopics,
		MaxQueuesPerVhost:      cfg.Limits.MaxQueuesPerVhost,
		FS:                     opts.FS,
		Alarms: alarm.Options{
			DiskFreeLimit:       cfg.Alarms.DiskFreeLimitBytes,
			MemoryHighWatermark: cfg.Alarms.MemoryHighWatermarkBytes,
			Interval:            cfg.Alarms.CheckInterval,
			DiskFree:            opts.DiskFree,
			MemoryInUse:         opts.MemoryInUse,
		},
	})
	if err != nil {
		return fmt.Errorf("opening broker in %s: %w", cfg.DataDir, err)
	}
	defer func() {
		if cerr := b.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing broker: %w", cerr))
			return
		}
		logger.Info("broker closed")
	}()
	bridges, err := startBridges(cfg, b, logger)
	if err != nil {
		return err
	}

	// Listeners stop together, before the broker closes (defers run in
	// reverse).
	var stops []func(context.Context)
	defer func() { stopListeners(stops, cfg.ShutdownTimeout, logger) }()

	tlsStore, err := loadTLS(ctx, cfg, opts.Reload, logger)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}

	collector := metrics.NewCollector(b)
	users, err := auth.Open(filepath.Join(cfg.DataDir, usersFile))
	if err != nil {
		return fmt.Errorf("opening users: %w", err)
	}
	users.SetLoginLimit(cfg.Limits.MaxLoginFailures, cfg.Limits.LoginFailureWindow, nil)
	userLimits := limits.NewUsers(cfg.Limits.MaxConnectionsPerUser) // shared by AMQP and the gateway
	var amqpSrv *amqpListener
	if cfg.AMQPListen != "" || cfg.AMQPSListen != "" {
		amqpSrv, err = startAMQP(cfg, tlsStore, b, users, userLimits, logger)
		if err != nil {
			return err
		}
		collector.SetConnections("amqp", amqpSrv.srv.Connections)
		collector.SetBuffered("amqp", amqpSrv.srv.BufferedBytes)
		stops = append(stops, func(ctx context.Context) { amqpSrv.shutdown(ctx, logger) })
	}

	var kafkaSrv *kafkaListener
	if cfg.KafkaListen != "" || cfg.KafkaTLSListen != "" {
		kafkaSrv, err = startKafka(cfg, tlsStore, b, users, logger)
		if err != nil {
			return err
		}
		collector.SetConnections("kafka", kafkaSrv.connections)
		collector.SetBuffered("kafka", kafkaSrv.buffered)
		stops = append(stops, func(ctx context.Context) { kafkaSrv.shutdown(ctx, logger) })
	}

	var ready atomic.Bool
	var httpSrv *httpListener
	if cfg.HTTPListen != "" || cfg.HTTPSListen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			fsyncs,
			collector,
			metrics.NewAlarmCollector(b.Alarms()),
			metrics.NewBridgeCollector(bridges),
		)
		svc := newGatewayService(cfg, b, users, logger)
		ws, err := newWebSocket(cfg, svc, users, userLimits, logger)
		if err != nil {
			return err
		}
		collector.SetConnections("websocket", func() int { return int(ws.Stats().Connections) })
		collector.SetWebSocket(func() metrics.WebSocketStats {
			s := ws.Stats()
			return metrics.WebSocketStats{
				FramesIn: s.FramesIn, Fanout: s.Fanout, RecordsOut: s.RecordsOut, DeliveriesOut: s.DeliveriesOut,
				Produced: s.Produced, Published: s.Published, SlowClients: s.SlowClients, AuthFailures: s.AuthFailures,
			}
		})
		h := gateway.NewHandler(gateway.Options{
			Logger: logger, Registry: reg, Ready: ready.Load, WebSocket: ws, Service: svc, Users: users,
			UserLimits: userLimits, Bridges: bridges,
		})
		httpSrv, err = startHTTPEndpoints(httpEndpoints(cfg, tlsStore), cfg.Limits.HTTPMaxConnections, cfg.TCPKeepAlive, idleTimeout, h, logger)
		if err != nil {
			return err
		}
		httpSrv.ws = ws
		stops = append(stops, func(ctx context.Context) { httpSrv.shutdown(ctx, logger) })
	} else {
		if kafkaSrv == nil && amqpSrv == nil {
			logger.Warn("no listener enabled")
		}
	}

	ready.Store(true)
	logger.Info("wharf ready")

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case serveErr = <-httpSrv.errc():
		serveErr = fmt.Errorf("http listener: %w", serveErr)
		logger.Error("listener failed, shutting down", "listener", "http", "err", serveErr)
	case serveErr = <-kafkaSrv.errc():
		serveErr = fmt.Errorf("kafka listener: %w", serveErr)
		logger.Error("listener failed, shutting down", "listener", "kafka", "err", serveErr)
	case serveErr = <-amqpSrv.errc():
		serveErr = fmt.Errorf("amqp listener: %w", serveErr)
		logger.Error("listener failed, shutting down", "listener", "amqp", "err", serveErr)
	}
	ready.Store(false)
	return serveErr
}

// stopListeners shuts every listener down at once, so that none accepts a
// connection once shutdown has begun, and gives them timeout in all to
// drain: each answers the requests it has read (Kafka), confirms the
// publishes it has read and closes with 320 (AMQP), or closes its
// sessions with 1001 (WebSocket); past the timeout, connections left are
// closed.
func stopListeners(stops []func(context.Context), timeout time.Duration, logger *slog.Logger) {
	if len(stops) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, stop := range stops {
		wg.Go(func() { stop(ctx) })
	}
	wg.Wait()
	logger.Info("listeners stopped", "took", time.Since(start).Round(time.Millisecond))
}

// httpListener is the running HTTP server: the plain listener, the TLS one,
// or both, serving one handler.
type httpListener struct {
	ws     *gateway.WebSocket // closed first on shutdown: its connections are hijacked
	serves []*httpServe
	errs   chan error // receives a Serve error other than http.ErrServerClosed
}

// httpServe is one listener of the HTTP server.
type httpServe struct {
	name string // "http" or "https"
	ln   *onceCloseListener
	srv  *http.Server
	done chan struct{}
}

// httpEndpoint is one address the HTTP server listens on; tls is nil for
// the plain listener.
type httpEndpoint struct {
	name string
	addr string
	tls  *tls.Config
}

// startHTTP binds addr and serves h on it in the background, with at most
// maxConns connections open (zero: no limit); a kept-alive connection idle
// for idle is closed.
func startHTTP(addr string, maxConns int, keepAlive, idle time.Duration, h http.Handler, logger *slog.Logger) (*httpListener, error) {
	return startHTTPEndpoints([]httpEndpoint{{name: "http", addr: addr}}, maxConns, keepAlive, idle, h, logger)
}

// startHTTPEndpoints serves h on every endpoint, each with at most
// maxConns connections open. The plain endpoint speaks HTTP/1.1 and, for
// gRPC clients, HTTP/2 with prior knowledge (h2c); a TLS endpoint speaks
// HTTP/1.1 and HTTP/2 chosen by ALPN.
func startHTTPEndpoints(eps []httpEndpoint, maxConns int, keepAlive, idle time.Duration, h http.Handler, logger *slog.Logger) (*httpListener, error) {
	l := &httpListener{errs: make(chan error, len(eps))}
	for _, ep := range eps {
		tcp, err := listen(ep.name, ep.addr, keepAlive, logger)
		if err != nil {
			l.closeAll()
			return nil, err
		}
		hs := &httpServe{
			name: ep.name,
			ln:   &onceCloseListener{Listener: gateway.LimitListener(tcp, maxConns, logger)},
			srv: &http.Server{
				Handler:           h,
				ReadHeaderTimeout: readHeaderTimeout,
				IdleTimeout:       idle,
				ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
				Protocols:         new(http.Protocols),
				TLSConfig:         ep.tls,
			},
			done: make(chan struct{}),
		}
		hs.srv.Protocols.SetHTTP1(true)
		if ep.tls == nil {
			hs.srv.Protocols.SetUnencryptedHTTP2(true)
		} else {
			hs.srv.Protocols.SetHTTP2(true)
		}
		l.serves = append(l.serves, hs)
		go func() {
			defer close(hs.done)
			var err error
			if ep.tls == nil {
				err = hs.srv.Serve(hs.ln)
			} else {
				err = hs.srv.ServeTLS(hs.ln, "", "")
			}
			if !errors.Is(err, http.ErrServerClosed) {
				l.errs <- fmt.Errorf("%s: %w", hs.name, err)
			}
		}()
		logger.Info("listening", "listener", ep.name, "addr", hs.ln.Addr().String())
	}
	return l, nil
}

// closeAll closes the listeners opened so far, after a failed start.
func (l *httpListener) closeAll() {
	for _, hs := range l.serves {
		_ = hs.srv.Close()
		<-hs.done
	}
}

// errc returns the channel of serve errors; nil (never ready) for a nil
// listener, so a disabled listener never wakes a select.
func (l *httpListener) errc() <-chan error {
	if l == nil {
		return nil
	}
	return l.errs
}

// shutdown stops accepting, closes the WebSocket sessions with 1001 and
// waits until ctx ends for requests in flight; then it closes whatever
// connections remain. The listeners close first: the sessions' close
// handshakes take time, and no new connection may arrive meanwhile.
func (l *httpListener) shutdown(ctx context.Context, logger *slog.Logger) {
	for _, hs := range l.serves {
		_ = hs.ln.Close()
	}
	var wg sync.WaitGroup
	for _, hs := range l.serves {
		wg.Go(func() {
			if err := hs.srv.Shutdown(ctx); err != nil {
				logger.Warn("http listener did not drain in time; closing its connections",
					"listener", hs.name, "err", err)
				if err := hs.srv.Close(); err != nil {
					logger.Warn("closing http listener", "listener", hs.name, "err", err)
				}
			}
		})
	}
	if l.ws != nil {
		l.ws.Shutdown(ctx)
	}
	wg.Wait()
	for _, hs := range l.serves {
		<-hs.done
		logger.Info("listener stopped", "listener", hs.name)
	}
}

// onceCloseListener closes its listener once: shutdown closes it before
// http.Server.Shutdown does, and the second Close is not an error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
