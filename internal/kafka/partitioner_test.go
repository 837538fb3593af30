package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/broker"
)

// TestPartitionForKeyMatchesClients checks Wharf's own partitioner against
// the partition franz-go's Kafka-compatible key partitioner chooses.
func TestPartitionForKeyMatchesClients(t *testing.T) {
	part := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int{1, 3, 7, 64} {
		for i := range 500 {
			key := []byte(fmt.Sprintf("user-%d", i))
			want := part.Partition(&kgo.Record{Key: key}, n)
			if got := broker.PartitionForKey(key, int32(n)); int(got) != want {
				t.Fatalf("key %q over %d partitions: wharf %d, kafka client %d", key, n, got, want)
			}
		}
	}
}
