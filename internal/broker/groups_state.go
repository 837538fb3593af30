package broker

import (
	"bytes"
	"fmt"
	"sort"
	"time"
)

// The classic group state machine. Every function here runs under
// groupCoordinator.mu; functions that take now get it from the coordinator's
// clock, so tests drive time by calling tickAt.

type groupState int8

const (
	groupEmpty groupState = iota
	groupPreparingRebalance
	groupCompletingRebalance
	groupStable
	groupDead
)

func (s groupState) String() string {
	switch s {
	case groupEmpty:
		return "Empty"
	case groupPreparingRebalance:
		return "PreparingRebalance"
	case groupCompletingRebalance:
		return "CompletingRebalance"
	case groupStable:
		return "Stable"
	}
	return "Dead"
}

// member is one member of a group.
type member struct {
	id, instanceID       string
	clientID, clientHost string
	seq                  uint64 // join order, for stable listings and leader choice

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []GroupProtocol
	assignment       []byte

	join      chan JoinGroupResult // set while the member waits in JoinGroup
	sync      chan SyncGroupResult // set while the member waits in SyncGroup
	isNew     bool                 // has not completed a join yet
	joinedAt  time.Time
	heartbeat time.Time // last sign of life
}

func newMember(id string, req JoinGroupRequest, ch chan JoinGroupResult, now time.Time) *member {
	m := &member{id: id, instanceID: req.InstanceID, join: ch, isNew: true, joinedAt: now, heartbeat: now}
	m.update(req)
	return m
}

func (m *member) update(req JoinGroupRequest) {
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.protocols = req.Protocols
}

func (m *member) answerJoin(res JoinGroupResult) {
	if m.join != nil {
		m.join <- res
		m.join = nil
	}
}

func (m *member) answerSync(res SyncGroupResult) {
	if m.sync != nil {
		m.sync <- res
		m.sync = nil
	}
}

func (m *member) supports(protocol string) bool {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return true
		}
	}
	return false
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) sameProtocols(ps []GroupProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// alive reports whether a member has shown life recently enough. A member
// waiting in JoinGroup is alive until the rebalance ends (a new one for at
// most newMemberJoinTimeout); one waiting in SyncGroup is alive until the
// leader's assignment or the sync timeout; any other must have sent a
// heartbeat within its session timeout.
func (m *member) alive(now time.Time) bool {
	switch {
	case m.join != nil:
		return !m.isNew || now.Sub(m.joinedAt) < newMemberJoinTimeout
	case m.sync != nil:
		return true
	}
	return now.Sub(m.heartbeat) < m.sessionTimeout
}

// group is one classic group.
type group struct {
	name         string
	state        groupState
	stateSince   time.Time
	generation   int32
	protocolType string
	protocol     string // chosen for the current generation
	leader       string
	members      map[string]*member
	pending      map[string]time.Time // ids handed out with MEMBER_ID_REQUIRED -> expiry
	static       map[string]string    // instance id -> member id
	seq          uint64

	// PreparingRebalance: the join phase ends at joinDeadline. During an
	// initial delay it is extended while new members keep arriving, by at
	// most delayRemaining in all.
	joinDeadline   time.Time
	initialDelay   bool
	newMemberAdded bool
	delayRemaining time.Duration

	// CompletingRebalance and Stable: members that got their JoinGroup
	// answer but have not synced; they are expelled at syncDeadline.
	pendingSync  map[string]bool
	syncDeadline time.Time
}

func newGroup(name string, now time.Time) *group {
	return &group{
		name: name, state: groupEmpty, stateSince: now,
		members: map[string]*member{}, pending: map[string]time.Time{}, static: map[string]string{},
	}
}

func (g *group) setState(s groupState, now time.Time) { g.state, g.stateSince = s, now }

// sorted lists the members in join order.
func (g *group) sorted() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// rebalanceTimeout is the longest rebalance timeout of the members.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// supports reports whether a member with these protocols may join: the
// first member sets the protocol type, and every later one must share it
// and support a protocol that every current member supports.
func (g *group) supports(protocolType string, protocols []GroupProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportedByAll(p.Name) {
			return true
		}
	}
	return false
}

func (g *group) supportedByAll(protocol string) bool {
	for _, m := range g.members {
		if !m.supports(protocol) {
			return false
		}
	}
	return true
}

// selectProtocol picks, among the protocols every member supports, the one
// most members list first (ties go to the earliest member's preference).
func (g *group) selectProtocol() string {
	members := g.sorted()
	if len(members) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range members {
		for _, p := range m.protocols {
			if g.supportedByAll(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for _, p := range members[0].protocols {
		if v := votes[p.Name]; v > bestVotes {
			best, bestVotes = p.Name, v
		}
	}
	return best
}

// validateMember checks that memberID is a current member and that a
// static member's instance id has not moved on to a newer member id.
func (g *group) validateMember(memberID, instanceID string) error {
	if instanceID != "" {
		if id, ok := g.static[instanceID]; ok && id != memberID {
			return fmt.Errorf("%w: instance %q is member %q now", ErrFencedInstanceID, instanceID, id)
		}
	}
	if g.members[memberID] == nil {
		return fmt.Errorf("%w: %q in group %q", ErrUnknownMemberID, memberID, g.name)
	}
	return nil
}

// joinedMembers lists the members with their metadata for the chosen
// protocol: the leader's JoinGroup answer.
func (g *group) joinedMembers() []JoinedMember {
	members := g.sorted()
	out := make([]JoinedMember, len(members))
	for i, m := range members {
		out[i] = JoinedMember{MemberID: m.id, InstanceID: m.instanceID, Metadata: m.metadata(g.protocol)}
	}
	return out
}

// currentJoin is the JoinGroup answer for the current generation.
func (g *group) currentJoin(m *member) JoinGroupResult {
	res := JoinGroupResult{MemberID: m.id, Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, LeaderID: g.leader}
	if m.id == g.leader {
		res.Members = g.joinedMembers()
	}
	return res
}

func (c *groupCoordinator) join(req JoinGroupRequest) <-chan JoinGroupResult {
	ch := make(chan JoinGroupResult, 1)
	fail := func(err error) <-chan JoinGroupResult {
		ch <- JoinGroupResult{Err: err, MemberID: req.MemberID, Generation: -1}
		return ch
	}
	if req.Group == "" {
		return fail(ErrInvalidGroupID)
	}
	if req.SessionTimeout < c.opts.MinSessionTimeout || req.SessionTimeout > c.opts.MaxSessionTimeout {
		return fail(fmt.Errorf("%w: %v is outside [%v, %v]", ErrInvalidSessionTimeout, req.SessionTimeout, c.opts.MinSessionTimeout, c.opts.MaxSessionTimeout))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(ErrNotCoordinator)
	}
	now := c.now()
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(fmt.Errorf("%w: group %q does not exist", ErrUnknownMemberID, req.Group))
		}
		g = newGroup(req.Group, now)
	}
	if !g.supports(req.ProtocolType, req.Protocols) {
		return fail(fmt.Errorf("%w: protocol type %q", ErrInconsistentGroupProtocol, req.ProtocolType))
	}
	c.groups[req.Group] = g

	if req.MemberID == "" {
		if req.InstanceID != "" {
			if old, ok := g.static[req.InstanceID]; ok {
				c.rejoinStatic(g, g.members[old], req, ch, now)
				return ch
			}
		}
		if c.opts.MaxSize > 0 && len(g.members)+len(g.pending) >= c.opts.MaxSize {
			return fail(fmt.Errorf("%w: %d members", ErrGroupMaxSizeReached, c.opts.MaxSize))
		}
		prefix := req.ClientID
		if req.InstanceID != "" {
			prefix = req.InstanceID
		}
		id := newMemberID(prefix)
		if req.RequireKnownMemberID && req.InstanceID == "" {
			g.pending[id] = now.Add(req.SessionTimeout)
			ch <- JoinGroupResult{Err: ErrMemberIDRequired, MemberID: id, Generation: -1}
			return ch
		}
		c.addMember(g, newMember(id, req, ch, now), req.ProtocolType, now)
		return ch
	}
	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		c.addMember(g, newMember(req.MemberID, req, ch, now), req.ProtocolType, now)
		return ch
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return fail(err)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case groupCompletingRebalance:
		// A retried join of this generation: answer it again.
		if m.sameProtocols(req.Protocols) {
			ch <- g.currentJoin(m)
			return ch
		}
	case groupStable:
		// A follower with nothing new learns the generation again; the
		// leader rejoining, or anyone with new protocols, rebalances.
		if m.id != g.leader && m.sameProtocols(req.Protocols) {
			m.heartbeat = now
			ch <- g.currentJoin(m)
			return ch
		}
	}
	c.updateMember(g, m, req, ch, now)
	return ch
}

// addMember adds a member that is waiting in JoinGroup and rebalances.
func (c *groupCoordinator) addMember(g *group, m *member, protocolType string, now time.Time) {
	if len(g.members) == 0 {
		g.protocolType = protocolType
	}
	g.seq++
	m.seq = g.seq
	g.members[m.id] = m
	if m.instanceID != "" {
		g.static[m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	if g.state == groupPreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	c.maybePrepareRebalance(g, now, "member "+m.id+" joined")
	c.tryCompleteJoin(g, now)
}

// updateMember records a known member's rejoin and rebalances.
func (c *groupCoordinator) updateMember(g *group, m *member, req JoinGroupRequest, ch chan JoinGroupResult, now time.Time) {
	m.answerJoin(JoinGroupResult{Err: ErrRebalanceInProgress, MemberID: m.id, Generation: -1})
	m.update(req)
	m.join = ch
	m.heartbeat = now
	c.maybePrepareRebalance(g, now, "member "+m.id+" rejoined")
	c.tryCompleteJoin(g, now)
}

// rejoinStatic replaces a static member by a new incarnation under a new
// member id, fencing the old one. In a stable group whose chosen protocol
// would not change, it keeps the member's assignment and the generation:
// no rebalance.
func (c *groupCoordinator) rejoinStatic(g *group, m *member, req JoinGroupRequest, ch chan JoinGroupResult, now time.Time) {
	oldID, oldLeader := m.id, g.leader
	fenced := fmt.Errorf("%w: instance %q rejoined", ErrFencedInstanceID, req.InstanceID)
	m.answerJoin(JoinGroupResult{Err: fenced, MemberID: oldID, Generation: -1})
	m.answerSync(SyncGroupResult{Err: fenced})
	delete(g.members, oldID)
	m.id = newMemberID(req.InstanceID)
	m.update(req)
	m.heartbeat = now
	g.members[m.id] = m
	g.static[req.InstanceID] = m.id
	if g.leader == oldID {
		g.leader = m.id
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[m.id] = true
	}
	c.logger.Info("static member rejoined", "group", g.name, "instance_id", req.InstanceID, "member_id", m.id, "replaces", oldID)
	switch g.state {
	case groupStable:
		if g.selectProtocol() == g.protocol {
			res := JoinGroupResult{MemberID: m.id, Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, LeaderID: oldLeader}
			if g.leader == m.id && req.SkipAssignment {
				// The leader learns it leads, and that it must not assign.
				res.LeaderID, res.SkipAssignment, res.Members = m.id, true, g.joinedMembers()
			}
			// Older clients are told the old leader id, so a rejoined
			// leader takes itself for a follower and does not assign.
			ch <- res
			return
		}
		m.join = ch
		c.prepareRebalance(g, now, "static member "+req.InstanceID+" changed the group's protocol")
	case groupCompletingRebalance:
		// The leader may be assigning to the old member id.
		m.join = ch
		c.prepareRebalance(g, now, "static member "+req.InstanceID+" rejoined during a rebalance")
	default:
		m.join = ch
		c.tryCompleteJoin(g, now)
	}
}

func (c *groupCoordinator) maybePrepareRebalance(g *group, now time.Time, reason string) {
	switch g.state {
	case groupEmpty, groupStable, groupCompletingRebalance:
		c.prepareRebalance(g, now, reason)
	}
}

// prepareRebalance starts a join phase: members waiting for an assignment
// are told to rejoin, and the phase lasts until every member has rejoined
// or the longest rebalance timeout passes.
func (c *groupCoordinator) prepareRebalance(g *group, now time.Time, reason string) {
	if g.state == groupCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			m.answerSync(SyncGroupResult{Err: ErrRebalanceInProgress})
		}
	}
	g.pendingSync = nil
	rt := g.rebalanceTimeout()
	if g.state == groupEmpty && c.opts.InitialRebalanceDelay > 0 {
		delay := min(c.opts.InitialRebalanceDelay, rt)
		g.initialDelay, g.newMemberAdded = true, false
		g.delayRemaining = max(rt-c.opts.InitialRebalanceDelay, 0)
		g.joinDeadline = now.Add(delay)
	} else {
		g.initialDelay = false
		g.joinDeadline = now.Add(rt)
	}
	c.logger.Info("preparing to rebalance group", "group", g.name, "generation", g.generation, "reason", reason)
	g.setState(groupPreparingRebalance, now)
	c.tryCompleteJoin(g, now)
}

// tryCompleteJoin ends the join phase early once every member (and every
// member id handed out) has joined.
func (c *groupCoordinator) tryCompleteJoin(g *group, now time.Time) {
	if g.state != groupPreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	c.completeJoin(g, now)
}

// completeJoin ends the join phase: members that did not rejoin are
// expelled, a new generation starts, and every joined member gets its
// answer, the leader with everyone's metadata.
func (c *groupCoordinator) completeJoin(g *group, now time.Time) {
	g.initialDelay = false
	for _, m := range g.sorted() {
		if m.join == nil {
			c.logger.Info("expelling a member that did not rejoin in time", "group", g.name, "member_id", m.id)
			c.removeMember(g, m)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(groupEmpty, now)
		c.logger.Info("group is empty", "group", g.name, "generation", g.generation)
	} else {
		g.protocol = g.selectProtocol()
		members := g.sorted()
		if g.members[g.leader] == nil {
			g.leader = members[0].id
		}
		g.setState(groupCompletingRebalance, now)
		g.pendingSync = make(map[string]bool, len(members))
		g.syncDeadline = now.Add(g.rebalanceTimeout())
		for _, m := range members {
			g.pendingSync[m.id] = true
			m.answerJoin(g.currentJoin(m))
			m.isNew = false
			m.heartbeat = now
		}
		c.logger.Info("group rebalanced", "group", g.name, "generation", g.generation, "protocol", g.protocol, "leader", g.leader, "members", len(members))
	}
	c.persistMeta(g)
}

// persistMeta remembers a group's generation and protocol type across
// restarts. Nothing waits for it: losing it in a crash only restarts the
// generation count.
func (c *groupCoordinator) persistMeta(g *group) {
	op := offsetOp{kind: opGroupMeta, group: g.name, meta: groupMeta{ProtocolType: g.protocolType, Generation: g.generation}}
	if _, err := c.store.write([]offsetOp{op}); err != nil {
		c.logger.Warn("recording group metadata", "group", g.name, "err", err)
	}
}

// removeMember drops a member, answering its waits with
// ErrUnknownMemberID and handing leadership on. It does not rebalance;
// callers follow with afterRemoval.
func (c *groupCoordinator) removeMember(g *group, m *member) {
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	delete(g.pendingSync, m.id)
	gone := fmt.Errorf("%w: %q left group %q", ErrUnknownMemberID, m.id, g.name)
	m.answerJoin(JoinGroupResult{Err: gone, MemberID: m.id, Generation: -1})
	m.answerSync(SyncGroupResult{Err: gone})
	if g.leader == m.id {
		g.leader = ""
		members := g.sorted()
		for _, o := range members {
			if o.join != nil {
				g.leader = o.id
				break
			}
		}
		if g.leader == "" && len(members) > 0 {
			g.leader = members[0].id
		}
	}
}

func (c *groupCoordinator) afterRemoval(g *group, now time.Time, reason string) {
	switch g.state {
	case groupStable, groupCompletingRebalance:
		c.prepareRebalance(g, now, reason)
	case groupPreparingRebalance:
		c.tryCompleteJoin(g, now)
	}
}

func (c *groupCoordinator) sync(req SyncGroupRequest) <-chan SyncGroupResult {
	ch := make(chan SyncGroupResult, 1)
	fail := func(err error) <-chan SyncGroupResult {
		ch <- SyncGroupResult{Err: err}
		return ch
	}
	if req.Group == "" {
		return fail(ErrInvalidGroupID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(ErrNotCoordinator)
	}
	g := c.groups[req.Group]
	if g == nil {
		return fail(fmt.Errorf("%w: group %q does not exist", ErrUnknownMemberID, req.Group))
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return fail(err)
	}
	if req.Generation != g.generation {
		return fail(fmt.Errorf("%w: %d, the group is at %d", ErrIllegalGeneration, req.Generation, g.generation))
	}
	if req.ProtocolType != "" && req.ProtocolType != g.protocolType || req.Protocol != "" && req.Protocol != g.protocol {
		return fail(fmt.Errorf("%w: %q/%q, the group uses %q/%q", ErrInconsistentGroupProtocol, req.ProtocolType, req.Protocol, g.protocolType, g.protocol))
	}
	now := c.now()
	m := g.members[req.MemberID]
	switch g.state {
	case groupPreparingRebalance:
		return fail(ErrRebalanceInProgress)
	case groupCompletingRebalance:
		m.answerSync(SyncGroupResult{Err: ErrRebalanceInProgress})
		m.sync = ch
		delete(g.pendingSync, m.id)
		if m.id == g.leader {
			for _, o := range g.members {
				o.assignment = req.Assignments[o.id]
				if o.assignment == nil {
					o.assignment = []byte{}
				}
			}
			g.setState(groupStable, now)
			for _, o := range g.members {
				if o.sync != nil {
					o.answerSync(SyncGroupResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: o.assignment})
					o.heartbeat = now
				}
			}
			c.logger.Debug("group stable", "group", g.name, "generation", g.generation)
		}
		return ch
	case groupStable:
		delete(g.pendingSync, m.id)
		m.heartbeat = now
		ch <- SyncGroupResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
		return ch
	}
	return fail(ErrUnknownMemberID)
}

func (c *groupCoordinator) heartbeat(group, memberID, instanceID string, generation int32) error {
	if group == "" {
		return ErrInvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrNotCoordinator
	}
	g := c.groups[group]
	if g == nil {
		return fmt.Errorf("%w: group %q does not exist", ErrUnknownMemberID, group)
	}
	if err := g.validateMember(memberID, instanceID); err != nil {
		return err
	}
	if generation != g.generation {
		return fmt.Errorf("%w: %d, the group is at %d", ErrIllegalGeneration, generation, g.generation)
	}
	m := g.members[memberID]
	switch g.state {
	case groupCompletingRebalance, groupStable:
		m.heartbeat = c.now()
		return nil
	case groupPreparingRebalance:
		m.heartbeat = c.now()
		return ErrRebalanceInProgress
	}
	return ErrUnknownMemberID
}

func (c *groupCoordinator) leave(group string, members []LeavingMember) ([]error, error) {
	if group == "" {
		return nil, ErrInvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrNotCoordinator
	}
	errs := make([]error, len(members))
	g := c.groups[group]
	now := c.now()
	for i, lm := range members {
		if g == nil {
			errs[i] = fmt.Errorf("%w: group %q does not exist", ErrUnknownMemberID, group)
			continue
		}
		id := lm.MemberID
		if lm.InstanceID != "" {
			sid, ok := g.static[lm.InstanceID]
			if !ok {
				errs[i] = fmt.Errorf("%w: no member has instance id %q", ErrUnknownMemberID, lm.InstanceID)
				continue
			}
			if id != "" && id != sid {
				errs[i] = fmt.Errorf("%w: instance %q is member %q now", ErrFencedInstanceID, lm.InstanceID, sid)
				continue
			}
			id = sid
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			c.tryCompleteJoin(g, now)
			continue
		}
		m := g.members[id]
		if m == nil {
			errs[i] = fmt.Errorf("%w: %q in group %q", ErrUnknownMemberID, id, group)
			continue
		}
		c.logger.Info("member left group", "group", group, "member_id", id, "reason", lm.Reason)
		c.removeMember(g, m)
		c.afterRemoval(g, now, "member "+id+" left")
	}
	return errs, nil
}

// tick enforces every deadline against the clock.
func (c *groupCoordinator) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.tickAt(c.now())
}

// tickAt enforces deadlines as of now: expired member ids and sessions, the
// end of join phases, members that never synced, and (every cleanup
// interval) offset retention. Callers hold c.mu.
func (c *groupCoordinator) tickAt(now time.Time) {
	for _, g := range c.groups {
		c.tickGroup(g, now)
	}
	if now.Sub(c.lastCleanup) >= c.opts.CleanupInterval {
		c.lastCleanup = now
		c.cleanup(now)
	}
}

func (c *groupCoordinator) tickGroup(g *group, now time.Time) {
	expiredPending := false
	for id, exp := range g.pending {
		if !now.Before(exp) {
			delete(g.pending, id)
			expiredPending = true
		}
	}
	for _, m := range g.sorted() {
		if g.members[m.id] == m && !m.alive(now) {
			c.logger.Info("member session expired", "group", g.name, "member_id", m.id, "session_timeout", m.sessionTimeout)
			c.removeMember(g, m)
			c.afterRemoval(g, now, "member "+m.id+" expired")
		}
	}
	if expiredPending {
		c.tryCompleteJoin(g, now)
	}
	if g.state == groupPreparingRebalance && !now.Before(g.joinDeadline) {
		if g.initialDelay && g.newMemberAdded && g.delayRemaining > 0 {
			d := min(c.opts.InitialRebalanceDelay, g.delayRemaining)
			g.delayRemaining -= d
			g.newMemberAdded = false
			g.joinDeadline = now.Add(d)
		} else {
			c.completeJoin(g, now)
		}
	}
	if (g.state == groupCompletingRebalance || g.state == groupStable) && len(g.pendingSync) > 0 && !now.Before(g.syncDeadline) {
		for _, m := range g.sorted() {
			if g.pendingSync[m.id] {
				c.logger.Info("expelling a member that did not sync in time", "group", g.name, "member_id", m.id)
				c.removeMember(g, m)
			}
		}
		g.pendingSync = nil
		c.afterRemoval(g, now, "members did not sync in time")
	}
}

// cleanup expires the offsets of groups without members and drops such
// groups once nothing is left of them. An offset committed with an expire
// time goes then; any other goes OffsetsRetention after the later of its
// commit and the group becoming empty.
func (c *groupCoordinator) cleanup(now time.Time) {
	names := make([]string, 0, len(c.groups))
	for name := range c.groups {
		names = append(names, name)
	}
	sort.Strings(names)
	nowMs, retention := now.UnixMilli(), c.opts.OffsetsRetention.Milliseconds()
	var ops []offsetOp
	for _, name := range names {
		g := c.groups[name]
		if g.state != groupEmpty {
			continue
		}
		offsets := c.store.offsets(name)
		var expired []TopicPartition
		for tp, o := range offsets {
			if o.ExpireMs > 0 && nowMs >= o.ExpireMs || o.ExpireMs <= 0 && max(o.CommitMs, g.stateSince.UnixMilli())+retention <= nowMs {
				expired = append(expired, tp)
			}
		}
		if len(expired) == len(offsets) && len(g.pending) == 0 {
			delete(c.groups, name)
			g.setState(groupDead, now)
			if _, ok := c.store.meta(name); ok || len(offsets) > 0 {
				ops = append(ops, offsetOp{kind: opDeleteGroup, group: name})
			}
			c.logger.Info("removed an empty group", "group", name, "expired_offsets", len(expired))
			continue
		}
		if len(expired) > 0 {
			ops = append(ops, offsetOp{kind: opDelete, group: name, deletes: expired})
			c.logger.Info("expired committed offsets", "group", name, "offsets", len(expired))
		}
	}
	if _, err := c.store.write(ops); err != nil {
		c.logger.Warn("expiring offsets", "err", err)
	}
}

func (c *groupCoordinator) describe(name string) GroupDescription {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil || c.closed {
		return GroupDescription{Group: name, State: groupDead.String()}
	}
	d := GroupDescription{Group: name, State: g.state.String(), ProtocolType: g.protocolType}
	stable := g.state == groupStable
	if stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sorted() {
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost, Metadata: []byte{}, Assignment: []byte{}}
		if stable {
			md.Metadata, md.Assignment = m.metadata(g.protocol), m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}

func (c *groupCoordinator) list() []GroupListing {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]GroupListing, 0, len(c.groups))
	for name, g := range c.groups {
		out = append(out, GroupListing{Group: name, ProtocolType: g.protocolType, State: g.state.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

func (c *groupCoordinator) deleteGroups(names []string) ([]error, Persisted) {
	errs := make([]error, len(names))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		for i := range errs {
			errs[i] = ErrNotCoordinator
		}
		return errs, Persisted{}
	}
	now := c.now()
	var ops []offsetOp
	var deleted []int
	removed := map[string]*group{}
	for i, name := range names {
		g := c.groups[name]
		switch {
		case g == nil:
			errs[i] = fmt.Errorf("%w: %q", ErrGroupIDNotFound, name)
		case g.state != groupEmpty:
			errs[i] = fmt.Errorf("%w: %q is %s with %d members", ErrNonEmptyGroup, name, g.state, len(g.members))
		default:
			delete(c.groups, name)
			removed[name] = g
			ops = append(ops, offsetOp{kind: opDeleteGroup, group: name})
			deleted = append(deleted, i)
		}
	}
	p, err := c.store.write(ops)
	if err != nil {
		for name, g := range removed {
			c.groups[name] = g
		}
		for _, i := range deleted {
			errs[i] = err
		}
		return errs, Persisted{}
	}
	for name, g := range removed {
		g.setState(groupDead, now)
		c.logger.Info("deleted group", "group", name)
	}
	return errs, p
}

func (c *groupCoordinator) commit(req OffsetCommitRequest) ([]error, Persisted) {
	errs := make([]error, len(req.Offsets))
	all := func(err error) ([]error, Persisted) {
		for i := range errs {
			errs[i] = err
		}
		return errs, Persisted{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return all(ErrNotCoordinator)
	}
	now := c.now()
	g := c.groups[req.Group]
	switch {
	case g == nil && req.Generation >= 0:
		// A member of a group that no longer exists (or never did).
		return all(fmt.Errorf("%w: group %q has no generation %d", ErrIllegalGeneration, req.Group, req.Generation))
	case g == nil && (req.MemberID != "" || req.InstanceID != ""):
		return all(fmt.Errorf("%w: group %q does not exist", ErrUnknownMemberID, req.Group))
	case g != nil:
		if err := c.validateCommit(g, req, now); err != nil {
			return all(err)
		}
	}
	commits := map[TopicPartition]storedOffset{}
	for i, o := range req.Offsets {
		tp := TopicPartition{Topic: o.Topic, Partition: o.Partition}
		switch {
		case len(o.Metadata) > c.opts.MaxMetadataBytes:
			errs[i] = fmt.Errorf("%w: %d bytes, at most %d", ErrOffsetMetadataTooLarge, len(o.Metadata), c.opts.MaxMetadataBytes)
		case !c.exists(tp):
			errs[i] = fmt.Errorf("%w: %s-%d", ErrUnknownPartition, o.Topic, o.Partition)
		default:
			so := storedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: now.UnixMilli()}
			if !o.CommitTime.IsZero() {
				so.CommitMs = o.CommitTime.UnixMilli()
			}
			if o.Retention > 0 {
				so.ExpireMs = now.Add(o.Retention).UnixMilli()
			}
			commits[tp] = so
		}
	}
	if len(commits) == 0 {
		return errs, Persisted{}
	}
	p, err := c.store.write([]offsetOp{{kind: opCommit, group: req.Group, commits: commits}})
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs, Persisted{}
	}
	if g == nil {
		c.groups[req.Group] = newGroup(req.Group, now)
	}
	return errs, p
}

// validateCommit checks a commit against the group: a member's against its
// generation; an anonymous one (generation -1, no member) is allowed only
// for a group without members.
func (c *groupCoordinator) validateCommit(g *group, req OffsetCommitRequest, now time.Time) error {
	var m *member
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != "" {
		if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
			return err
		}
		if req.Generation != g.generation {
			return fmt.Errorf("%w: %d, the group is at %d", ErrIllegalGeneration, req.Generation, g.generation)
		}
		m = g.members[req.MemberID]
	} else if g.state != groupEmpty {
		return fmt.Errorf("%w: only members may commit offsets for group %q, which has members", ErrUnknownMemberID, g.name)
	}
	if m == nil {
		return nil
	}
	switch g.state {
	case groupCompletingRebalance:
		// The member has its new generation but not yet its assignment.
		return ErrRebalanceInProgress
	case groupStable, groupPreparingRebalance:
		m.heartbeat = now
	}
	return nil
}

func (c *groupCoordinator) deleteOffsets(group string, parts []TopicPartition, subscribed SubscribedTopics) ([]error, Persisted, error) {
	if group == "" {
		return nil, Persisted{}, ErrInvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, Persisted{}, ErrNotCoordinator
	}
	g := c.groups[group]
	if g == nil {
		return nil, Persisted{}, fmt.Errorf("%w: %q", ErrGroupIDNotFound, group)
	}
	var protected map[string]bool
	protectAll := false
	if g.state != groupEmpty {
		var metas [][]byte
		if g.protocol != "" {
			for _, m := range g.sorted() {
				metas = append(metas, m.metadata(g.protocol))
			}
		}
		topics, known := subscribed(g.protocolType, g.protocol, metas)
		if !known {
			return nil, Persisted{}, fmt.Errorf("%w: %q is %s", ErrNonEmptyGroup, group, g.state)
		}
		protected, protectAll = topics, topics == nil
	}
	errs := make([]error, len(parts))
	var dels []TopicPartition
	var eligible []int
	for i, tp := range parts {
		switch {
		case !c.exists(tp):
			errs[i] = fmt.Errorf("%w: %s-%d", ErrUnknownPartition, tp.Topic, tp.Partition)
		case protectAll || protected[tp.Topic]:
			errs[i] = fmt.Errorf("%w: %q consumes %q", ErrGroupSubscribedToTopic, group, tp.Topic)
		default:
			dels = append(dels, tp)
			eligible = append(eligible, i)
		}
	}
	if len(dels) == 0 {
		return errs, Persisted{}, nil
	}
	p, err := c.store.write([]offsetOp{{kind: opDelete, group: group, deletes: dels}})
	if err != nil {
		for _, i := range eligible {
			errs[i] = err
		}
		return errs, Persisted{}, nil
	}
	return errs, p, nil
}
