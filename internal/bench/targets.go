package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wharfmq/wharf/internal/amqp"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/kafka"
	"github.com/wharfmq/wharf/internal/storage"
)

// Target is a broker to measure: its bootstrap address and how to stop it.
type Target struct {
	Name  string
	Addr  string
	Close func()
}

// StartEmbeddedWharf runs a Wharf broker with a Kafka listener in this
// process, on a fresh data directory under dir, with the default
// durability (acknowledge after fsync).
func StartEmbeddedWharf(dir string, logger *slog.Logger) (Target, error) {
	return startEmbedded(dir, logger, func(b *broker.Broker, ln net.Listener) (string, func(context.Context) error) {
		srv := kafka.NewServer(b, kafka.Options{AutoCreateTopics: true, DefaultPartitions: 1, Logger: logger})
		go func() {
			if err := srv.Serve(ln); err != nil {
				logger.Error("embedded wharf", "err", err)
			}
		}()
		return ln.Addr().String(), srv.Shutdown
	})
}

// StartEmbeddedWharfAMQP runs a Wharf broker with an AMQP listener in this
// process, on a fresh data directory under dir, with the default
// durability. Its Addr is an amqp:// URL.
func StartEmbeddedWharfAMQP(dir string, logger *slog.Logger) (Target, error) {
	return startEmbedded(dir, logger, func(b *broker.Broker, ln net.Listener) (string, func(context.Context) error) {
		srv := amqp.NewServer(b, amqp.Options{Logger: logger})
		go func() {
			if err := srv.Serve(ln); err != nil {
				logger.Error("embedded wharf", "err", err)
			}
		}()
		return "amqp://guest:guest@" + ln.Addr().String() + "/", srv.Shutdown
	})
}

// startEmbedded opens a broker on a fresh directory under dir and a
// loopback listener, and lets serve start a protocol server on them; the
// Target's Close shuts that server down, closes the broker and removes the
// data.
func startEmbedded(dir string, logger *slog.Logger, serve func(*broker.Broker, net.Listener) (string, func(context.Context) error)) (Target, error) {
	data, err := os.MkdirTemp(dir, "wharf-bench-")
	if err != nil {
		return Target{}, err
	}
	b, err := broker.Open(broker.Options{DataDir: data, Logger: logger, LogDefaults: storage.DefaultLogConfig()})
	if err != nil {
		os.RemoveAll(data)
		return Target{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		os.RemoveAll(data)
		return Target{}, err
	}
	addr, shutdown := serve(b, ln)
	return Target{Name: "wharf", Addr: addr, Close: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown(ctx)
		b.Close()
		os.RemoveAll(data)
	}}, nil
}

// StartKfake runs franz-go's kfake as a peer, on disk with synced writes,
// so that both brokers acknowledge only what they have fsynced.
func StartKfake(dir string) (Target, error) {
	data, err := os.MkdirTemp(dir, "kfake-bench-")
	if err != nil {
		return Target{}, err
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(data), kfake.SyncWrites(), kfake.AllowAutoTopicCreation())
	if err != nil {
		os.RemoveAll(data)
		return Target{}, fmt.Errorf("starting kfake: %w", err)
	}
	return Target{Name: "kfake", Addr: c.ListenAddrs()[0], Close: func() {
		c.Close()
		os.RemoveAll(data)
	}}, nil
}
