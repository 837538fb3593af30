package server

import (
	"context"
	"log/slog"
	"net"
	"sync"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/certs"
	"github.com/wharfmq/wharf/internal/config"
	"github.com/wharfmq/wharf/internal/kafka"
)

// kafkaListener is the running Kafka protocol server: one kafka.Server per
// listener (plain, TLS), each advertising its own address, all on one
// broker.
type kafkaListener struct {
	srvs []*kafka.Server
	errs chan error
	wg   sync.WaitGroup
}

func startKafka(cfg config.Config, st *certs.Store, b *broker.Broker, users *auth.Store, logger *slog.Logger) (*kafkaListener, error) {
	type endpoint struct {
		name      string
		ln        net.Listener
		advertise string
	}
	var eps []endpoint
	closeAll := func() {
		for _, ep := range eps {
			ep.ln.Close()
		}
	}
	if cfg.KafkaListen != "" {
		ln, err := listen("kafka", cfg.KafkaListen, cfg.TCPKeepAlive, logger)
		if err != nil {
			return nil, err
		}
		eps = append(eps, endpoint{"kafka", ln, cfg.KafkaAdvertise})
	}
	if cfg.KafkaTLSListen != "" {
		ln, err := tlsListen("kafka-tls", cfg.KafkaTLSListen, cfg.TCPKeepAlive, st.ServerConfig(), logger)
		if err != nil {
			closeAll()
			return nil, err
		}
		eps = append(eps, endpoint{"kafka-tls", ln, cfg.KafkaTLSAdvertise})
	}
	l := &kafkaListener{errs: make(chan error, len(eps))}
	for _, ep := range eps {
		srv := kafka.NewServer(b, kafka.Options{
			Advertise:          ep.advertise,
			MaxRequestBytes:    int32(cfg.KafkaMaxRequestBytes),
			FetchMaxBytes:      int32(cfg.KafkaFetchMaxBytes),
			ConnectionsMaxIdle: cfg.KafkaConnectionsMaxIdle,
			AutoCreateTopics:   cfg.AutoCreateTopics,
			DefaultPartitions:  int32(cfg.DefaultPartitions),
			MaxConnections:     cfg.Limits.KafkaMaxConnections,
			Users:              users,
			RequireSASL:        cfg.RequireAuth,
			Vhost:              cfg.KafkaVhost,
			Logger:             logger,
		})
		l.srvs = append(l.srvs, srv)
		l.wg.Go(func() {
			if err := srv.Serve(ep.ln); err != nil {
				l.errs <- err
			}
		})
		logger.Info("listening", "listener", ep.name, "addr", ep.ln.Addr().String())
	}
	return l, nil
}

// connections counts the open connections of every Kafka listener.
func (l *kafkaListener) connections() int {
	n := 0
	for _, s := range l.srvs {
		n += s.Connections()
	}
	return n
}

// buffered counts the response bytes built and not yet written on every
// Kafka listener.
func (l *kafkaListener) buffered() int64 {
	var n int64
	for _, s := range l.srvs {
		n += s.BufferedBytes()
	}
	return n
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
	var wg sync.WaitGroup
	for _, s := range l.srvs {
		wg.Go(func() {
			if err := s.Shutdown(ctx); err != nil {
				logger.Warn("kafka connections did not finish in time; closed them", "err", err)
			}
		})
	}
	wg.Wait()
	l.wg.Wait()
}
