package crashsuite

import (
	"regexp"
	"testing"
)

// The ledgers are the suite's judges: these tests feed them histories with
// one known fault each and check that the fault, and only it, is reported.

func kv(producer int, seq int64) []byte {
	return Encode(ID{Proto: ProtoKafka, Producer: producer, Seq: seq}, int(seq%7))
}

func kid(producer int, seq int64) ID { return ID{Proto: ProtoKafka, Producer: producer, Seq: seq} }

// kafkaHistory is a healthy history: two records acknowledged on partition
// 0, one on partition 1, all processed by the group and committed.
func kafkaHistory() (*KafkaLedger, [][][]byte) {
	l := NewKafkaLedger(2)
	stored := [][][]byte{{kv(0, 0), kv(0, 1)}, {kv(1, 0)}}
	l.Acked(Position{0, 0}, kv(0, 0))
	l.Acked(Position{0, 1}, kv(0, 1))
	l.Acked(Position{1, 0}, kv(1, 0))
	for p, vs := range stored {
		for o, v := range vs {
			id, _ := l.Read("reader", Position{int32(p), int64(o)}, v)
			l.Processed(id)
		}
		l.Committed(int32(p), int64(len(vs)))
	}
	return l, stored
}

func TestKafkaLedgerHealthy(t *testing.T) {
	l, stored := kafkaHistory()
	if n := l.CheckCommitted("restart", l.CommittedSnapshot(), []int64{2, 1}); n != 0 {
		t.Fatalf("%d regressions in a healthy history", n)
	}
	r := l.Verify(stored)
	if r.Failed() || r.Acked != 3 || r.Stored != 3 || len(r.Problems) != 0 {
		t.Fatalf("healthy history judged %+v", r)
	}
}

func TestKafkaLedgerFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(l *KafkaLedger, stored [][][]byte) [][][]byte
		check func(r KafkaResult) bool
	}{
		{"lost at the end", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			return [][][]byte{s[0][:1], s[1]}
		}, func(r KafkaResult) bool { return r.Lost == 1 }},
		{"replaced by another record", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			return [][][]byte{{s[0][0], kv(5, 5)}, s[1]}
		}, func(r KafkaResult) bool { return r.Lost == 1 }},
		{"stored twice", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			return [][][]byte{s[0], {s[1][0], s[0][1]}}
		}, func(r KafkaResult) bool { return r.Duplicated == 1 && r.Lost == 0 }},
		{"two values at one offset", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			l.Read("late reader", Position{0, 1}, kv(9, 9))
			return s
		}, func(r KafkaResult) bool { return r.Conflicts == 1 }},
		{"corrupt read", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			bad := append([]byte(nil), kv(0, 1)...)
			bad[len(bad)-1] ^= 0x20
			l.Read("reader", Position{0, 1}, bad)
			return s
		}, func(r KafkaResult) bool { return r.Corrupt == 1 && r.Conflicts == 1 }},
		{"gap", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			l.Gap("reader", 0, 1, 2)
			return s
		}, func(r KafkaResult) bool { return r.Gaps == 1 }},
		{"committed offset went back", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			l.CheckCommitted("restart", l.CommittedSnapshot(), []int64{1, 1})
			return s
		}, func(r KafkaResult) bool { return r.Regressed == 1 }},
		{"acknowledged twice", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			l.Acked(Position{1, 1}, kv(0, 0))
			return s
		}, func(r KafkaResult) bool { return r.AckedTwice == 1 }},
		{"never processed", func(l *KafkaLedger, s [][][]byte) [][][]byte {
			l.Acked(Position{1, 1}, kv(1, 1))
			return [][][]byte{s[0], {s[1][0], kv(1, 1)}}
		}, func(r KafkaResult) bool { return r.Unread == 1 && r.Lost == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, stored := kafkaHistory()
			r := l.Verify(tc.fault(l, stored))
			if !r.Failed() || !tc.check(r) || len(r.Problems) == 0 {
				t.Fatalf("judged %+v", r)
			}
		})
	}
}

func body(publisher int, seq, copy int64) []byte {
	return Encode(ID{Proto: ProtoAMQP, Producer: publisher, Seq: seq, Copy: copy}, int(copy%5))
}

func aid(publisher int, seq, copy int64) ID {
	return ID{Proto: ProtoAMQP, Producer: publisher, Seq: seq, Copy: copy}
}

func TestAMQPLedgerHealthy(t *testing.T) {
	l := NewAMQPLedger()
	// Publisher 0 sends seq 0..3; seq 2 is republished as copy 4 after a
	// lost connection, and both copies arrive. Copy 1's ack is proved
	// received by a later reply; copies 0 and 1, in hand at a crash (their
	// acks not proved), come back flagged: allowed.
	for seq := range int64(4) {
		l.Confirmed(aid(0, seq, seq))
	}
	l.Confirmed(aid(0, 2, 4))
	for _, d := range []struct {
		consumer    string
		b           []byte
		redelivered bool
		proveAck    bool
	}{
		{"c0", body(0, 0, 0), false, false},
		{"c1", body(0, 1, 1), false, false},
		{"c0", body(0, 2, 2), false, false},
		{"c0", body(0, 3, 3), false, false},
		{"c1", body(0, 1, 1), true, true},
		{"c1", body(0, 0, 0), true, false},
		{"c1", body(0, 2, 4), false, false},
	} {
		id, err := l.Delivered(d.consumer, d.b, d.redelivered)
		if err != nil {
			t.Fatal(err)
		}
		if d.proveAck {
			l.AcksReached([]ID{id}, false)
		}
	}
	r := l.Verify()
	if r.Failed() || r.Confirmed != 4 || r.Duplicated != 1 || r.AckReturned != 0 || r.Redelivered != 2 {
		t.Fatalf("healthy history judged %+v", r)
	}
}

func TestAMQPLedgerFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		run   func(l *AMQPLedger)
		check func(r AMQPResult) bool
	}{
		{"confirmed and never delivered", func(l *AMQPLedger) {
			l.Confirmed(aid(0, 0, 0))
			l.Confirmed(aid(0, 1, 1))
			l.Delivered("c0", body(0, 0, 0), false)
		}, func(r AMQPResult) bool { return r.Lost == 1 }},
		{"corrupt", func(l *AMQPLedger) {
			b := body(0, 0, 0)
			b[5] ^= 1
			l.Delivered("c0", b, false)
		}, func(r AMQPResult) bool { return r.Corrupt == 1 }},
		{"out of order", func(l *AMQPLedger) {
			l.Delivered("c0", body(0, 1, 1), false)
			l.Delivered("c0", body(0, 0, 0), false)
		}, func(r AMQPResult) bool { return r.Misordered == 1 && r.Unflagged == 0 }},
		{"redelivery not flagged", func(l *AMQPLedger) {
			l.Delivered("c0", body(0, 0, 0), false)
			l.Delivered("c1", body(0, 0, 0), false)
		}, func(r AMQPResult) bool { return r.Unflagged == 1 }},
		{"committed ack undone", func(l *AMQPLedger) {
			l.Delivered("c0", body(0, 0, 0), false)
			l.AcksReached([]ID{aid(0, 0, 0)}, true)
			l.Delivered("c0", body(0, 0, 0), true)
		}, func(r AMQPResult) bool { return r.Uncommitted == 1 && r.AckReturned == 0 }},
		{"acknowledged ack undone", func(l *AMQPLedger) {
			l.Delivered("c0", body(0, 0, 0), false)
			l.AcksReached([]ID{aid(0, 0, 0)}, false)
			l.Delivered("c0", body(0, 0, 0), true)
		}, func(r AMQPResult) bool { return r.AckReturned == 1 && r.Uncommitted == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewAMQPLedger()
			tc.run(l)
			r := l.Verify()
			if !r.Failed() || !tc.check(r) || len(r.Problems) == 0 {
				t.Fatalf("judged %+v", r)
			}
		})
	}
	// Orders are per consumer: two consumers sharing a queue each see an
	// increasing subsequence.
	l := NewAMQPLedger()
	l.Delivered("c0", body(0, 1, 1), false)
	l.Delivered("c1", body(0, 0, 0), false)
	if r := l.Verify(); r.Failed() {
		t.Fatalf("two consumers' interleaving judged %+v", r)
	}
}

func TestSummaryLine(t *testing.T) {
	s := Summary{Kills: 3,
		Kafka: KafkaResult{Acked: 10, Lost: 1, Duplicated: 2, Corrupt: 1},
		AMQP:  AMQPResult{Confirmed: 5, Lost: 1, Duplicated: 1, Corrupt: 2, Redelivered: 4},
	}
	re := regexp.MustCompile(`^crash-suite: kills=3 acknowledged=15 lost=2 duplicated=3 corrupt=3( [a-z_]+=\d+)+$`)
	if line := s.Line(); !re.MatchString(line) {
		t.Fatalf("summary line %q", line)
	}
	if !s.Failed() {
		t.Fatal("a summary with losses did not fail")
	}
}
