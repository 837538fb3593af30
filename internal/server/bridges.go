package server

import (
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/config"
)

// startBridges starts the configured bridge rules in the broker; they stop
// when it closes.
func startBridges(cfg config.Config, b *broker.Broker, logger *slog.Logger) (*broker.Bridges, error) {
	rules := make([]broker.BridgeRule, 0, len(cfg.Bridges))
	for _, r := range cfg.Bridges {
		rules = append(rules, broker.BridgeRule{
			Name: r.Name, Topic: r.Topic, Vhost: r.Vhost, Exchange: r.Exchange, RoutingKey: r.RoutingKey,
			FromEarliest: r.Start == config.BridgeStartEarliest,
		})
	}
	decomp := kgo.DefaultDecompressor()
	bs, err := b.StartBridges(rules, broker.BridgeOptions{
		Decompress: func(codec int, records []byte) ([]byte, error) {
			return decomp.Decompress(records, kgo.CompressionCodecType(codec))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("starting bridges: %w", err)
	}
	if len(rules) > 0 {
		logger.Info("bridges started", "rules", len(rules))
	}
	return bs, nil
}
