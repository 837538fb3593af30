package kafka

// groupHandlers lists the consumer group and committed offset keys.
func (s *Server) groupHandlers() map[int16]handler {
	return map[int16]handler{}
}
