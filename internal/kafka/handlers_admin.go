package kafka

// adminHandlers lists the topic, config and cluster administration keys.
func (s *Server) adminHandlers() map[int16]handler {
	return map[int16]handler{}
}
