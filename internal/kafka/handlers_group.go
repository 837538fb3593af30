package kafka

import (
	"context"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// groupHandlers lists the consumer group and committed offset keys. The
// group logic is the broker's (see internal/broker/groups.go); these
// handlers translate requests to it and back.
func (s *Server) groupHandlers() map[int16]handler {
	return map[int16]handler{
		8:  {0, 9, s.handleOffsetCommit},
		9:  {0, 9, s.handleOffsetFetch},
		10: {0, 6, s.handleFindCoordinator},
		11: {0, 9, s.handleJoinGroup},
		12: {0, 4, s.handleHeartbeat},
		13: {0, 5, s.handleLeaveGroup},
		14: {0, 5, s.handleSyncGroup},
		15: {0, 5, s.handleDescribeGroups},
		16: {0, 5, s.handleListGroups},
		42: {0, 2, s.handleDeleteGroups},
		47: {0, 0, s.handleOffsetDelete},
	}
}

// awaitGroup waits for the coordinator's answer to a request that waits on
// other members (JoinGroup, SyncGroup). A shutting-down server gives up
// with NOT_COORDINATOR, so the client looks for the coordinator again; a
// closing connection gives up with ctx's error, and no response is sent.
func awaitGroup[T any](ctx context.Context, stopping <-chan struct{}, ch <-chan T) (T, error) {
	select {
	case res := <-ch:
		return res, nil
	default:
	}
	var zero T
	select {
	case res := <-ch:
		return res, nil
	case <-stopping:
		return zero, broker.ErrNotCoordinator
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// clientHost is how Kafka shows a member's address: a slash and the IP.
func clientHost(r *request) string {
	host, _, err := net.SplitHostPort(r.conn.nc.RemoteAddr().String())
	if err != nil {
		return "/" + r.conn.nc.RemoteAddr().String()
	}
	return "/" + host
}

func millis(ms int32) time.Duration { return time.Duration(max(ms, 0)) * time.Millisecond }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// consumerSubscriptions reads the topics of "consumer" protocol members
// (their ConsumerMemberMetadata) for OffsetDelete. Other protocol types are
// unknown; undecodable metadata, or no chosen protocol yet, means every
// topic counts as subscribed.
func consumerSubscriptions(protocolType, protocol string, metadata [][]byte) (map[string]bool, bool) {
	if protocolType != "consumer" {
		return nil, false
	}
	if protocol == "" {
		return nil, true
	}
	topics := map[string]bool{}
	for _, md := range metadata {
		var m kmsg.ConsumerMemberMetadata
		if err := m.ReadFrom(md); err != nil {
			return nil, true
		}
		for _, t := range m.Topics {
			topics[t] = true
		}
	}
	return topics, true
}
