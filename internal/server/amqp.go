package server

import (
	"context"
	"log/slog"

	"github.com/wharfmq/wharf/internal/amqp"
	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/buildinfo"
	"github.com/wharfmq/wharf/internal/config"
	"github.com/wharfmq/wharf/internal/limits"
)

// amqpListener is a running AMQP 0-9-1 server.
type amqpListener struct {
	srv  *amqp.Server
	errs chan error
	done chan struct{}
}

func startAMQP(cfg config.Config, b *broker.Broker, users *auth.Store, userLimits *limits.Users, logger *slog.Logger) (*amqpListener, error) {
	ln, err := listen("amqp", cfg.AMQPListen, cfg.TCPKeepAlive, logger)
	if err != nil {
		return nil, err
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
	l := &amqpListener{srv: srv, errs: make(chan error, 1), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		if err := srv.Serve(ln); err != nil {
			l.errs <- err
		}
	}()
	logger.Info("listening", "listener", "amqp", "addr", ln.Addr().String())
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
	<-l.done
}
