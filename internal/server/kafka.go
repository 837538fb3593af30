package server

import (
	"context"
	"log/slog"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/config"
	"github.com/wharfmq/wharf/internal/kafka"
)

// kafkaListener is a running Kafka protocol server.
type kafkaListener struct {
	srv  *kafka.Server
	errs chan error
	done chan struct{}
}

func startKafka(cfg config.Config, b *broker.Broker, logger *slog.Logger) (*kafkaListener, error) {
	ln, err := listen("kafka", cfg.KafkaListen, cfg.TCPKeepAlive, logger)
	if err != nil {
		return nil, err
	}
	srv := kafka.NewServer(b, kafka.Options{
		Advertise:          cfg.KafkaAdvertise,
		MaxRequestBytes:    int32(cfg.KafkaMaxRequestBytes),
		FetchMaxBytes:      int32(cfg.KafkaFetchMaxBytes),
		ConnectionsMaxIdle: cfg.KafkaConnectionsMaxIdle,
		AutoCreateTopics:   cfg.AutoCreateTopics,
		DefaultPartitions:  int32(cfg.DefaultPartitions),
		MaxConnections:     cfg.Limits.KafkaMaxConnections,
		Logger:             logger,
	})
	l := &kafkaListener{srv: srv, errs: make(chan error, 1), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		if err := srv.Serve(ln); err != nil {
			l.errs <- err
		}
	}()
	logger.Info("listening", "listener", "kafka", "addr", ln.Addr().String())
	return l, nil
}

// errc is nil (never ready) for a nil listener.
func (l *kafkaListener) errc() <-chan error {
	if l == nil {
		return nil
	}
	return l.errs
}

// shutdown stops accepting; every connection reads the requests its client
// sent before, answers all it has read and closes. It waits until ctx ends.
func (l *kafkaListener) shutdown(ctx context.Context, logger *slog.Logger) {
	if err := l.srv.Shutdown(ctx); err != nil {
		logger.Warn("kafka connections did not finish in time; closed them", "err", err)
	}
	<-l.done
}
