package kafka

// adminHandlers lists the topic, config and cluster administration keys,
// and InitProducerId.
func (s *Server) adminHandlers() map[int16]handler {
	return map[int16]handler{
		21: {0, 2, s.handleDeleteRecords},
		22: {0, 5, s.handleInitProducerID},
		23: {0, 4, s.handleOffsetForLeaderEpoch},
		32: {0, 4, s.handleDescribeConfigs},
		33: {0, 2, s.handleAlterConfigs},
		37: {0, 3, s.handleCreatePartitions},
		44: {0, 1, s.handleIncrementalAlterConfigs},
		60: {0, 1, s.handleDescribeCluster},
	}
}
