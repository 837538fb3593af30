package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// The group coordinator: protocol-neutral consumer groups with Kafka's
// classic rebalance protocol, and their committed offsets.
//
// A group's members join (JoinGroup), the coordinator waits until every
// known member has rejoined or the rebalance timeout passes, picks the
// protocol every member supports that most members prefer, starts a new
// generation and names a leader. The leader alone receives the members'
// metadata and computes the assignment, which it hands back in SyncGroup;
// the coordinator passes each member its share and never reads it, so any
// client-side assignor (range, roundrobin, sticky, cooperative-sticky)
// works. Members prove liveness with heartbeats (and commits); one that
// stays silent for its session timeout is expelled and the group
// rebalances.
//
// States: Empty (no members) -> PreparingRebalance (collecting joins) ->
// CompletingRebalance (waiting for the leader's assignment) -> Stable, and
// back to PreparingRebalance whenever membership or a member's protocols
// change. Dead is a deleted group.
//
// Kafka details kept: new dynamic members first get MEMBER_ID_REQUIRED
// with their id (JoinGroup v4+) and are "pending" until they rejoin with
// it; static members (group.instance.id) rejoin under a new member id
// without a rebalance when the group is stable and the protocol it would
// choose does not change, keeping their assignment, and a stale
// incarnation is fenced (FENCED_INSTANCE_ID); members that get a JoinGroup response but never
// SyncGroup are expelled after the rebalance timeout; an optional initial
// rebalance delay batches the joins of a group that was empty.
//
// # Invariants
//
//   - The coordinator's lock (groupCoordinator.mu) serialises every group
//     operation; offsets-store writes are appended under it, so the offsets
//     log follows the order of the validations that allowed them.
//   - A commit by a member is checked against the member and the
//     generation at the moment it is appended.
//   - Membership is not persisted (Kafka restores members from its log;
//     Wharf does not): after a restart every group is Empty, with its
//     generation and protocol type remembered, and its members learn it
//     from UNKNOWN_MEMBER_ID and rejoin.
//   - Time comes from the injected clock. A background ticker calls tick;
//     tests move a fake clock and call tickAt.
//
// # Lock order
//
// Broker.mu before groupCoordinator.mu before Broker.topicsMu (a commit
// checks that its partitions exist); groupCoordinator.mu before
// offsetStore.appendMu. offsetStore.mu is taken alone.

// GroupOptions configures consumer groups. Zero values take the defaults.
type GroupOptions struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (Kafka's group.min/max.session.timeout.ms); 6s and
	// 30m by default.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay holds the first rebalance of an empty group to
	// let more members join (Kafka's group.initial.rebalance.delay.ms). Zero
	// means none.
	InitialRebalanceDelay time.Duration
	// MaxSize bounds the members of a group; zero means no bound.
	MaxSize int
	// OffsetsRetention is how long the offsets of a group without members
	// are kept (Kafka's offsets.retention.minutes); 7 days by default.
	OffsetsRetention time.Duration
	// CleanupInterval is how often expired offsets and empty groups are
	// removed; 10 minutes by default.
	CleanupInterval time.Duration
	// MaxMetadataBytes bounds a committed offset's metadata string; 4096
	// by default.
	MaxMetadataBytes int
}

func (o GroupOptions) withDefaults() GroupOptions {
	if o.MinSessionTimeout <= 0 {
		o.MinSessionTimeout = 6 * time.Second
	}
	if o.MaxSessionTimeout <= 0 {
		o.MaxSessionTimeout = 30 * time.Minute
	}
	if o.InitialRebalanceDelay < 0 {
		o.InitialRebalanceDelay = 0
	}
	if o.OffsetsRetention <= 0 {
		o.OffsetsRetention = 7 * 24 * time.Hour
	}
	if o.CleanupInterval <= 0 {
		o.CleanupInterval = 10 * time.Minute
	}
	if o.MaxMetadataBytes <= 0 {
		o.MaxMetadataBytes = 4096
	}
	return o
}

// Group errors. Adapters map them to protocol codes.
var (
	ErrInvalidGroupID            = errors.New("invalid group id")
	ErrInvalidSessionTimeout     = errors.New("session timeout outside the allowed range")
	ErrInconsistentGroupProtocol = errors.New("member's protocols are incompatible with the group's")
	ErrMemberIDRequired          = errors.New("a member id is required to join; rejoin with the one given")
	ErrUnknownMemberID           = errors.New("unknown member id")
	ErrFencedInstanceID          = errors.New("static member fenced by a newer member with the same instance id")
	ErrIllegalGeneration         = errors.New("illegal generation")
	ErrRebalanceInProgress       = errors.New("the group is rebalancing; rejoin")
	ErrGroupIDNotFound           = errors.New("group not found")
	ErrNonEmptyGroup             = errors.New("the group has members")
	ErrGroupSubscribedToTopic    = errors.New("the group is subscribed to the topic")
	ErrGroupMaxSizeReached       = errors.New("the group is full")
	ErrOffsetMetadataTooLarge    = errors.New("offset metadata too large")
	ErrNotCoordinator            = errors.New("the group coordinator is not running")
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// GroupProtocol is one protocol a member supports, with its opaque metadata
// (for Kafka consumers: the subscription).
type GroupProtocol struct {
	Name     string
	Metadata []byte
}

// JoinGroupRequest asks to join a group or to rejoin it for a rebalance.
type JoinGroupRequest struct {
	Group      string
	MemberID   string // empty for a new member
	InstanceID string // a static member's group.instance.id; empty for dynamic members
	ClientID   string
	ClientHost string

	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	ProtocolType     string
	Protocols        []GroupProtocol // in order of preference

	// RequireKnownMemberID makes a new dynamic member get
	// ErrMemberIDRequired with its member id first (Kafka JoinGroup v4+).
	RequireKnownMemberID bool
	// SkipAssignment says the client understands JoinGroupResult's
	// SkipAssignment (Kafka JoinGroup v9+).
	SkipAssignment bool
	Reason         string
}

// JoinGroupResult is JoinGroup's answer.
type JoinGroupResult struct {
	Err          error
	MemberID     string
	Generation   int32
	ProtocolType string
	Protocol     string
	LeaderID     string
	// SkipAssignment tells a rejoined static leader that the group is
	// stable: it must not assign, only learn the members.
	SkipAssignment bool
	Members        []JoinedMember // the leader's answer only
}

// JoinedMember is a member as its group's leader sees it.
type JoinedMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte // for the chosen protocol
}

// SyncGroupRequest fetches a member's assignment; the leader's carries
// everyone's.
type SyncGroupRequest struct {
	Group        string
	MemberID     string
	InstanceID   string
	Generation   int32
	ProtocolType string // checked when not empty
	Protocol     string // checked when not empty
	Assignments  map[string][]byte
}

// SyncGroupResult is SyncGroup's answer.
type SyncGroupResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// LeavingMember names a member leaving its group: by member id, or by
// instance id for a static member (or both, which must agree).
type LeavingMember struct {
	MemberID   string
	InstanceID string
	Reason     string
}

// GroupDescription describes a group. A group that does not exist is
// described as Dead.
type GroupDescription struct {
	Group        string
	State        string
	ProtocolType string
	Protocol     string // only when Stable
	Members      []MemberDescription
}

// MemberDescription describes a member. Metadata (for the chosen
// protocol) and Assignment are set only when the group is Stable.
type MemberDescription struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
}

// GroupListing is one line of ListGroups.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        string
}

// OffsetCommitRequest commits offsets for a group: by a member, checked
// against its generation, or by anyone (generation -1, no member id) for a
// group without members.
type OffsetCommitRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
	Offsets    []OffsetCommit
}

// OffsetCommit is one partition's offset to commit.
type OffsetCommit struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time     // zero means now
	Retention   time.Duration // keep it this long after the commit; zero means the retention policy decides
}

// CommittedOffset is a committed offset.
type CommittedOffset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time
}

// SubscribedTopics tells OffsetDelete which topics a group with members
// consumes: the adapter that understands the protocol type decodes each
// member's metadata for the chosen protocol (protocol is empty while none
// is chosen). known is false for a protocol type it does not understand,
// and a nil set means every topic counts as subscribed.
type SubscribedTopics func(protocolType, protocol string, metadata [][]byte) (topics map[string]bool, known bool)

// groupCoordinator runs every group of the broker.
type groupCoordinator struct {
	opts   GroupOptions
	now    func() time.Time
	logger *slog.Logger
	store  *offsetStore
	// exists reports whether a partition exists (commits to others fail).
	exists func(TopicPartition) bool

	mu          sync.Mutex
	groups      map[string]*group
	closed      bool
	lastCleanup time.Time

	stop chan struct{}
	wg   sync.WaitGroup
}

// tickInterval is how often deadlines (sessions, rebalance and sync
// timeouts) are checked.
const tickInterval = 100 * time.Millisecond

// newMemberJoinTimeout expels a new member whose first join is still
// waiting after this long (its client is likely gone), as Kafka does.
const newMemberJoinTimeout = 5 * time.Minute

func newGroupCoordinator(opts GroupOptions, now func() time.Time, logger *slog.Logger, store *offsetStore, exists func(TopicPartition) bool) *groupCoordinator {
	c := &groupCoordinator{
		opts: opts.withDefaults(), now: now, logger: logger, store: store, exists: exists,
		groups: map[string]*group{}, stop: make(chan struct{}),
	}
	t := now()
	c.lastCleanup = t
	for _, name := range store.groupNames() {
		g := newGroup(name, t)
		if m, ok := store.meta(name); ok {
			g.protocolType, g.generation = m.ProtocolType, m.Generation
		}
		c.groups[name] = g
	}
	return c
}

// openGroups opens the offsets store under the data directory and starts
// the group coordinator.
func (b *Broker) openGroups() error {
	store, err := openOffsetStore(filepath.Join(b.opts.DataDir, "offsets"), b.storageOptions(), defaultOffsetStoreConfig())
	if err != nil {
		return err
	}
	b.groups = newGroupCoordinator(b.opts.Groups, b.opts.Now, b.logger, store, func(tp TopicPartition) bool {
		_, err := b.Partition(tp.Topic, tp.Partition)
		return err == nil
	})
	b.groups.start()
	return nil
}

func (c *groupCoordinator) start() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(tickInterval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				c.tick()
			}
		}
	}()
}

// close answers every waiting member with ErrNotCoordinator, stops the
// ticker and closes the offsets store.
func (c *groupCoordinator) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, g := range c.groups {
		for _, m := range g.members {
			m.answerJoin(JoinGroupResult{Err: ErrNotCoordinator, MemberID: m.id, Generation: -1})
			m.answerSync(SyncGroupResult{Err: ErrNotCoordinator})
		}
	}
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
	return c.store.close()
}

// newMemberID makes a Kafka-style member id: the client id (or a static
// member's instance id), a dash and a random UUID.
func newMemberID(prefix string) string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// JoinGroup joins (or rejoins) a group. The answer arrives on the channel,
// at once or when the rebalance completes; the channel is buffered, so an
// abandoned wait blocks nothing.
func (b *Broker) JoinGroup(req JoinGroupRequest) <-chan JoinGroupResult { return b.groups.join(req) }

// SyncGroup hands in the leader's assignment or asks for this member's. The
// answer arrives on the channel, at once or when the leader's assignment
// does.
func (b *Broker) SyncGroup(req SyncGroupRequest) <-chan SyncGroupResult { return b.groups.sync(req) }

// Heartbeat keeps a member alive; ErrRebalanceInProgress tells it to
// rejoin.
func (b *Broker) Heartbeat(group, memberID, instanceID string, generation int32) error {
	return b.groups.heartbeat(group, memberID, instanceID, generation)
}

// LeaveGroup removes members from a group; it returns one error per member.
func (b *Broker) LeaveGroup(group string, members []LeavingMember) ([]error, error) {
	return b.groups.leave(group, members)
}

// DescribeGroup describes one group.
func (b *Broker) DescribeGroup(group string) GroupDescription { return b.groups.describe(group) }

// ListGroups lists every group, sorted by name.
func (b *Broker) ListGroups() []GroupListing { return b.groups.list() }

// DeleteGroups deletes groups without members and their offsets. It returns
// one error per group; the deletions are durable once the Persisted is.
func (b *Broker) DeleteGroups(groups []string) ([]error, Persisted) {
	return b.groups.deleteGroups(groups)
}

// CommitOffsets validates and commits offsets. It returns one error per
// offset; the commit is durable, and visible to CommittedOffsets, once the
// Persisted is.
func (b *Broker) CommitOffsets(req OffsetCommitRequest) ([]error, Persisted) {
	return b.groups.commit(req)
}

// CommittedOffsets returns a group's committed offsets.
func (b *Broker) CommittedOffsets(group string) map[TopicPartition]CommittedOffset {
	stored := b.groups.store.offsets(group)
	out := make(map[TopicPartition]CommittedOffset, len(stored))
	for tp, o := range stored {
		out[tp] = CommittedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTime: time.UnixMilli(o.CommitMs)}
	}
	return out
}

// DeleteOffsets deletes committed offsets of a group: all of the requested
// ones when the group has no members, otherwise those of topics it is not
// subscribed to (subscribed decides). It returns one error per partition;
// the last error concerns the whole group, and when it is set nothing was
// deleted.
func (b *Broker) DeleteOffsets(group string, parts []TopicPartition, subscribed SubscribedTopics) ([]error, Persisted, error) {
	return b.groups.deleteOffsets(group, parts, subscribed)
}

// topicDeleted forgets the offsets committed for a deleted topic, durably,
// so that a topic created again under its name starts without them.
func (c *groupCoordinator) topicDeleted(topic string) {
	c.mu.Lock()
	var ops []offsetOp
	byGroup := c.store.topicOffsets(topic)
	names := make([]string, 0, len(byGroup))
	for name := range byGroup {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ops = append(ops, offsetOp{kind: opDelete, group: name, deletes: byGroup[name]})
	}
	p, err := c.store.write(ops)
	c.mu.Unlock()
	if err == nil {
		err = p.Wait(context.Background())
	}
	if err != nil {
		c.logger.Warn("forgetting the offsets of a deleted topic", "topic", topic, "err", err)
	}
}
