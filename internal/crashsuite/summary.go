package crashsuite

import "fmt"

// Summary is the outcome of a run.
type Summary struct {
	Kills int
	Kafka KafkaResult
	AMQP  AMQPResult
}

// Line is the one-line report: the totals first, in a fixed form that CI
// greps for, then the details.
func (s Summary) Line() string {
	k, a := s.Kafka, s.AMQP
	return fmt.Sprintf("crash-suite: kills=%d acknowledged=%d lost=%d duplicated=%d corrupt=%d"+
		" redelivered=%d kafka_acked=%d kafka_stored=%d kafka_lost=%d kafka_duplicated=%d kafka_conflicts=%d"+
		" kafka_gaps=%d kafka_commit_regressions=%d kafka_unprocessed=%d"+
		" amqp_confirmed=%d amqp_delivered=%d amqp_lost=%d amqp_duplicated=%d amqp_misordered=%d"+
		" amqp_unflagged=%d amqp_acked_returned=%d amqp_committed_returned=%d",
		s.Kills, k.Acked+a.Confirmed, k.Lost+a.Lost, k.Duplicated+a.Duplicated, k.Corrupt+a.Corrupt,
		a.Redelivered, k.Acked, k.Stored, k.Lost, k.Duplicated, k.Conflicts,
		k.Gaps, k.Regressed, k.Unread,
		a.Confirmed, a.Delivered, a.Lost, a.Duplicated, a.Misordered,
		a.Unflagged, a.AckReturned, a.Uncommitted)
}

// Failed reports whether any guarantee broke.
func (s Summary) Failed() bool { return s.Kafka.Failed() || s.AMQP.Failed() }
