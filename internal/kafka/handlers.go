package kafka

import "maps"

// handlerTable lists every API key this server implements, with the
// versions it advertises: from 0 up to what Kafka 3.9 supports.
func (s *Server) handlerTable() map[int16]handler {
	t := map[int16]handler{
		0:  {0, 11, s.handleProduce},
		1:  {0, 17, s.handleFetch},
		2:  {0, 9, s.handleListOffsets},
		3:  {0, 12, s.handleMetadata},
		18: {0, 4, s.handleAPIVersions},
		19: {0, 7, s.handleCreateTopics},
		20: {0, 6, s.handleDeleteTopics},
	}
	maps.Copy(t, s.adminHandlers())
	maps.Copy(t, s.groupHandlers())
	maps.Copy(t, s.txnHandlers())
	return s.withSASL(t)
}
