package crashsuite

import (
	"fmt"
	"hash/crc32"
	"sync"
)

// KafkaLedger is the suite's record of everything that happened to the
// Kafka side: which records each produce acknowledgement placed where,
// every record any reader saw at any offset, which records the consumer
// group processed, and which offsets it committed. It is safe for
// concurrent use. Verify judges it against the final content of the topic.
type KafkaLedger struct {
	partitions int

	mu         sync.Mutex
	acked      map[ID]Position   // where each acknowledged record was stored
	seen       map[Position]seen // what was read at each position, by anyone
	processed  map[ID]bool       // records the group processed
	committed  []int64           // per partition: highest commit acknowledged
	corrupt    int
	ackedTwice int
	conflicts  int
	regressed  int
	gaps       int
	problems   problemLog
}

// Position is a Kafka partition and offset.
type Position struct {
	Partition int32
	Offset    int64
}

func (p Position) String() string { return fmt.Sprintf("%d@%d", p.Partition, p.Offset) }

// seen is what was read at a position: a fingerprint of the value (length
// and checksum, enough to tell two values apart) and who read it first.
type seen struct {
	size int
	sum  uint32
	by   string
}

// NewKafkaLedger returns an empty ledger for a topic of partitions
// partitions.
func NewKafkaLedger(partitions int) *KafkaLedger {
	return &KafkaLedger{
		partitions: partitions,
		acked:      map[ID]Position{},
		seen:       map[Position]seen{},
		processed:  map[ID]bool{},
		committed:  make([]int64, partitions),
	}
}

// Acked records a produce acknowledgement: the record with value v was
// stored at pos. The acknowledged position counts as seen.
func (l *KafkaLedger) Acked(pos Position, v []byte) {
	id, err := Decode(v)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		// The producer encoded it, and the client hands the same record
		// back: only a bug could get here.
		l.corrupt++
		l.problems.add("the record acknowledged at %v does not decode: %v", pos, err)
		return
	}
	if prev, ok := l.acked[id]; ok {
		l.ackedTwice++
		l.problems.add("%v acknowledged twice: at %v and at %v", id, prev, pos)
	}
	l.acked[id] = pos
	l.seenLocked("produce acknowledgement", pos, v)
}

// Read records a record read at pos by reader; it returns the record's
// identity, or ErrCorrupt for a value that fails its checksum (counted).
func (l *KafkaLedger) Read(reader string, pos Position, v []byte) (ID, error) {
	id, err := Decode(v)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.corrupt++
		l.problems.add("%s read a corrupt record at %v: %v", reader, pos, err)
	}
	l.seenLocked(reader, pos, v)
	return id, err
}

func (l *KafkaLedger) seenLocked(by string, pos Position, v []byte) {
	s := seen{size: len(v), sum: crc32.ChecksumIEEE(v), by: by}
	prev, ok := l.seen[pos]
	switch {
	case !ok:
		l.seen[pos] = s
	case prev.size != s.size || prev.sum != s.sum:
		l.conflicts++
		l.problems.add("two different values at %v: %d bytes (crc %08x) seen by %s, %d bytes (crc %08x) seen by %s",
			pos, prev.size, prev.sum, prev.by, s.size, s.sum, by)
	}
}

// Gap records that a reader saw offsets that are not contiguous.
func (l *KafkaLedger) Gap(reader string, partition int32, want, got int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gaps++
	l.problems.add("%s: partition %d: offset %d follows %d: offsets are not contiguous", reader, partition, got, want-1)
}

// Processed records that the consumer group processed the record id.
func (l *KafkaLedger) Processed(id ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.processed[id] = true
}

// Committed records that a commit of offset for partition was
// acknowledged.
func (l *KafkaLedger) Committed(partition int32, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed[partition] = max(l.committed[partition], offset)
}

// CommittedSnapshot returns, per partition, the highest committed offset
// acknowledged so far. Taken once the server is dead, it is what the next
// incarnation must remember at least.
func (l *KafkaLedger) CommittedSnapshot() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.committed...)
}

// CheckCommitted compares the group's committed offsets as the server
// reports them (-1 for none) with a snapshot taken earlier: none may be
// lower. It returns how many were.
func (l *KafkaLedger) CheckCommitted(when string, snapshot, fetched []int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for p, want := range snapshot {
		if got := fetched[p]; got < want {
			n++
			l.regressed++
			l.problems.add("%s: group offset of partition %d is %d, but %d was committed", when, p, got, want)
		}
	}
	return n
}

// KafkaResult is the verdict on the Kafka side.
type KafkaResult struct {
	Acked      int // records whose produce was acknowledged
	Stored     int // records in the topic at the end
	Lost       int // acknowledged records not stored where their acknowledgement said
	Duplicated int // records stored at more than one offset (acknowledged or not)
	Corrupt    int // reads that failed their checksum
	Conflicts  int // positions seen with two different values
	Gaps       int // non-contiguous offsets seen by a reader, or a log not starting at 0
	Regressed  int // committed offsets found lower than acknowledged commits
	AckedTwice int // records acknowledged at two positions
	Unread     int // acknowledged records the group never processed
	Problems   []string
}

// Failed reports whether any Kafka invariant broke.
func (r KafkaResult) Failed() bool {
	return r.Lost+r.Duplicated+r.Corrupt+r.Conflicts+r.Gaps+r.Regressed+r.AckedTwice+r.Unread > 0
}

// Verify judges the ledger against the topic's final content: stored[p]
// holds the values of partition p from offset 0 to its end, as read by the
// caller (who passes each through Read first). Every acknowledged record
// must be at its acknowledged position, no record may be stored twice, and
// the group must have processed every acknowledged record.
func (l *KafkaLedger) Verify(stored [][][]byte) KafkaResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	where := map[ID][]Position{}
	at := map[Position]ID{}
	total := 0
	for p, values := range stored {
		for o, v := range values {
			total++
			id, err := Decode(v)
			if err != nil {
				continue // counted as corrupt when read
			}
			pos := Position{int32(p), int64(o)}
			where[id] = append(where[id], pos)
			at[pos] = id
		}
	}
	r := KafkaResult{Acked: len(l.acked), Stored: total}
	for id, pos := range l.acked {
		if got, ok := at[pos]; !ok || got != id {
			r.Lost++
			l.problems.add("%v acknowledged at %v is not there (stored at %v)", id, pos, where[id])
		}
		if !l.processed[id] {
			r.Unread++
			l.problems.add("%v acknowledged at %v was never processed by the group", id, pos)
		}
	}
	for id, ps := range where {
		if len(ps) > 1 {
			r.Duplicated++
			l.problems.add("%v stored %d times, at %v", id, len(ps), ps)
		}
	}
	r.Corrupt, r.Conflicts, r.Gaps, r.Regressed, r.AckedTwice = l.corrupt, l.conflicts, l.gaps, l.regressed, l.ackedTwice
	r.Problems = l.problems.list()
	return r
}

// problemLog keeps the first problems found, and counts the rest.
type problemLog struct {
	first []string
	more  int
}

const maxProblems = 30

func (p *problemLog) add(format string, args ...any) {
	if len(p.first) < maxProblems {
		p.first = append(p.first, fmt.Sprintf(format, args...))
		return
	}
	p.more++
}

func (p *problemLog) list() []string {
	out := append([]string(nil), p.first...)
	if p.more > 0 {
		out = append(out, fmt.Sprintf("... and %d more", p.more))
	}
	return out
}
