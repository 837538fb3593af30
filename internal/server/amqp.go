package server

import (
	"context"
	"log/slog"
	"net"
	"sync"

	"github.com/wharfmq/wharf/internal/amqp"
	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/buildinfo"
	"github.com/wharfmq/wharf/internal/certs"
	"github.com/wharfmq/wharf/internal/config"
	"github.com/wharfmq/wharf/internal/limits"
)

// amqpListener is a running AMQP 0-9-1 server on the plain listener, the
// TLS one (AMQPS), or both.
type amqpListener struct {
	srv  *amqp.Server
	errs chan error
	wg   sync.WaitGroup
}

func startAMQP(cfg config.Config, st *certs.Store, b *broker.Broker, users *auth.Store, userLimits *limits.Users, logger *slog.Logger) (*amqpListener, error) {
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	if cfg.AMQPListen != "" {
		ln, err := listen("amqp", cfg.AMQPListen, cfg.TCPKeepAlive, logger)
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
	}
	if cfg.AMQPSListen != "" {
		ln, err := tlsListen("amqps", cfg.AMQPSListen, cfg.TCPKeepAlive, st.ServerConfig(), logger)
		if err != nil {
			closeAll()
			return nil, err
		}
		lns = append(lns, ln)
	}
	heartbeat := cfg.AMQPHeartbeat
	if heartbeat == 0 {
		heartbeat = -1 // offer none
	}
	srv := amqp.NewServer(b, amqp.Options{
		Users:           users,
		Logger:          logger,
		Version:         buildinfo.Get(buildinfo.DefaultVersion, buildinfo.DefaultCommit).Version,
		MaxMessageBytes: cfg.AMQPMaxMessageBytes,
		Heartbeat:       heartbeat,
		FrameMax:        uint32(cfg.Limits.AMQPFrameMax),
		ChannelMax:      amqpChannelMax(cfg.Limits.AMQPChannelMax),
		MaxConnections:  cfg.Limits.AMQPMaxConnections,
		UserLimits:      userLimits,
		ConsumerTimeout: cfg.AMQPConsumerTimeout,
	})
	l := &amqpListener{srv: srv, errs: make(chan error, len(lns))}
	for i, ln := range lns {
		name := "amqp"
		if cfg.AMQPListen == "" || i == 1 {
			name = "amqps"
		}
		l.wg.Go(func() {
			if err := srv.Serve(ln); err != nil {
				l.errs <- err
			}
		})
		logger.Info("listening", "listener", name, "addr", ln.Addr().String())
	}
	return l, nil
}

// amqpChannelMax is the channel_max to offer: the setting, or for 0 the
// protocol's most.
func amqpChannelMax(setting int) uint16 {
	if setting == 0 {
		return 65535
	}
	return uint16(setting)
}

// errc is nil (never ready) for a nil listener.
func (l *amqpListener) errc() <-chan error {
	if l == nil {
		return nil
	}
	return l.errs
}

// shutdown stops accepting; every connection reads what its client sent
// before, confirms the publishes it read and is closed with 320
// CONNECTION_FORCED. It waits until ctx ends for clients to answer.
func (l *amqpListener) shutdown(ctx context.Context, logger *slog.Logger) {
	if err := l.srv.Shutdown(ctx); err != nil {
		logger.Warn("amqp connections did not close in time; closed them", "err", err)
	}
	l.wg.Wait()
}
