package broker

import "fmt"

// checkTxnCommit checks transactional offsets as an OffsetCommit's are:
// the member against its generation when the request names one (a
// request without, TxnOffsetCommit before v3, is not checked against the
// group), and each partition and its metadata. It returns one error per
// offset, or an error for the whole request.
func (c *groupCoordinator) checkTxnCommit(req TxnOffsetCommitRequest) ([]error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrNotCoordinator
	}
	if req.Group == "" {
		return nil, ErrInvalidGroupID
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != "" {
		g := c.groups[req.Group]
		if g == nil {
			return nil, fmt.Errorf("%w: group %q has no generation %d", ErrIllegalGeneration, req.Group, req.Generation)
		}
		oreq := OffsetCommitRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID, Generation: req.Generation}
		if err := c.validateCommit(g, oreq, c.now()); err != nil {
			return nil, err
		}
	}
	errs := make([]error, len(req.Offsets))
	for i, o := range req.Offsets {
		switch {
		case len(o.Metadata) > c.opts.MaxMetadataBytes:
			errs[i] = fmt.Errorf("%w: %d bytes, at most %d", ErrOffsetMetadataTooLarge, len(o.Metadata), c.opts.MaxMetadataBytes)
		case !c.exists(TopicPartition{Topic: o.Topic, Partition: o.Partition}):
			errs[i] = fmt.Errorf("%w: %s-%d", ErrUnknownPartition, o.Topic, o.Partition)
		}
	}
	return errs, nil
}

// commitTxnOffsets commits the offsets of a committing transaction, one
// write for all its groups; they are not checked against the groups'
// generations again, as Kafka applies them with the transaction marker.
func (c *groupCoordinator) commitTxnOffsets(offsets []txnOffset) (Persisted, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Persisted{}, ErrNotCoordinator
	}
	now := c.now()
	byGroup := map[string]map[TopicPartition]storedOffset{}
	var order []string
	for _, o := range offsets {
		m := byGroup[o.Group]
		if m == nil {
			m = map[TopicPartition]storedOffset{}
			byGroup[o.Group] = m
			order = append(order, o.Group)
		}
		m[TopicPartition{Topic: o.Topic, Partition: o.Partition}] = storedOffset{
			Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: now.UnixMilli()}
	}
	ops := make([]offsetOp, 0, len(order))
	for _, g := range order {
		ops = append(ops, offsetOp{kind: opCommit, group: g, commits: byGroup[g]})
	}
	p, err := c.store.write(ops)
	if err != nil {
		return Persisted{}, err
	}
	for _, g := range order {
		if c.groups[g] == nil {
			c.groups[g] = newGroup(g, now)
		}
	}
	return p, nil
}
