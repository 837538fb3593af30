package broker

// Murmur2 is Kafka's murmur2 hash (the Java client's Utils.murmur2, seed
// 0x9747b28c), returned as the Java int it computes.
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// PartitionForKey picks the partition Kafka's default partitioner picks for
// a non-null key: the positive murmur2 hash modulo the partition count. Any
// Wharf publish path that chooses a partition itself (AMQP, REST,
// WebSocket) uses it, so keyed records land where a Kafka client would put
// them.
func PartitionForKey(key []byte, partitions int32) int32 {
	return int32(uint32(Murmur2(key))&0x7fffffff) % partitions
}
