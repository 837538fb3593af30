package server

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/config"
	"github.com/wharfmq/wharf/internal/gateway"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/limits"
)

// newGatewayService is the core as the gateway's faces see it.
func newGatewayService(cfg config.Config, b *broker.Broker, users *auth.Store, logger *slog.Logger) *service.Service {
	return service.New(b, logger.With("component", "gateway"), service.Options{
		AutoCreateTopics:  cfg.AutoCreateTopics,
		DefaultPartitions: int32(cfg.DefaultPartitions),
		MaxMessageBytes:   min(cfg.WebSocket.MaxMessageBytes, cfg.Storage.MaxMessageBytes),
		Users:             users,
		KafkaVhost:        cfg.KafkaVhost,
	})
}

// newWebSocket builds the gateway's /ws endpoint from the configuration.
func newWebSocket(cfg config.Config, svc *service.Service, users *auth.Store, userLimits *limits.Users, logger *slog.Logger) (*gateway.WebSocket, error) {
	jwt, err := auth.NewJWTVerifier(cfg.WebSocket.JWTSecretFile, cfg.WebSocket.JWTPublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	return gateway.NewWebSocket(svc, users, jwt, gateway.WSOptions{
		PingInterval:    cfg.WebSocket.PingInterval,
		MaxMessageBytes: int64(cfg.WebSocket.MaxMessageBytes),
		OutboxBytes:     cfg.WebSocket.OutboxBytes,
		AllowedOrigins:  splitList(cfg.WebSocket.AllowedOrigins),
		Anonymous:       cfg.WebSocket.Anonymous && !cfg.RequireAuth,
		BroadcastUsers:  splitList(cfg.WebSocket.BroadcastUsers),
		UserLimits:      userLimits,
	}, logger.With("listener", "websocket")), nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
