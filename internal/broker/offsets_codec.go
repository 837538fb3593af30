package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// The offsets log's record values. Every value starts with a format version
// (offsetsFormat) and an operation byte; integers are varints (zig-zag for
// signed values) and strings are a uvarint length followed by their bytes.
//
//	commit:       group, topics: [topic, partitions: [partition, offset,
//	              leader epoch, metadata, commit time ms, expire time ms]]
//	delete:       group, topics: [topic, partitions: [partition]]
//	delete group: group
//	group meta:   group, protocol type, generation
//
// A commit record sets each listed offset; a delete record removes each
// listed offset; a delete-group record removes the group's offsets and
// metadata; a group-meta record sets what is remembered of a group between
// restarts (its protocol type and generation). Replaying the records from
// the log start in order gives the live state.

const offsetsFormat = 1

type offsetOpKind byte

const (
	opCommit offsetOpKind = iota + 1
	opDelete
	opDeleteGroup
	opGroupMeta
)

func (k offsetOpKind) String() string {
	switch k {
	case opCommit:
		return "commit"
	case opDelete:
		return "delete"
	case opDeleteGroup:
		return "delete_group"
	case opGroupMeta:
		return "group_meta"
	}
	return fmt.Sprintf("op(%d)", byte(k))
}

// storedOffset is one committed offset as the log records it. Times are
// milliseconds since the Unix epoch; an expire time of zero means none.
type storedOffset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitMs    int64
	ExpireMs    int64
}

// groupMeta is what is remembered of a group's membership across restarts.
type groupMeta struct {
	ProtocolType string
	Generation   int32
}

// offsetOp is one record of the offsets log.
type offsetOp struct {
	kind    offsetOpKind
	group   string
	commits map[TopicPartition]storedOffset // opCommit
	deletes []TopicPartition                // opDelete
	meta    groupMeta                       // opGroupMeta
}

var errBadOffsetRecord = errors.New("malformed offsets record")

// encodeOffsetOp appends op's record value to dst. Topics and partitions are
// written in sorted order so that equal operations encode equally.
func encodeOffsetOp(dst []byte, op offsetOp) []byte {
	dst = append(dst, offsetsFormat, byte(op.kind))
	dst = appendString(dst, op.group)
	switch op.kind {
	case opCommit:
		parts := make([]TopicPartition, 0, len(op.commits))
		for tp := range op.commits {
			parts = append(parts, tp)
		}
		dst = appendTopicPartitions(dst, parts, func(dst []byte, tp TopicPartition) []byte {
			o := op.commits[tp]
			dst = binary.AppendVarint(dst, o.Offset)
			dst = binary.AppendVarint(dst, int64(o.LeaderEpoch))
			dst = appendString(dst, o.Metadata)
			dst = binary.AppendVarint(dst, o.CommitMs)
			return binary.AppendVarint(dst, o.ExpireMs)
		})
	case opDelete:
		dst = appendTopicPartitions(dst, op.deletes, nil)
	case opGroupMeta:
		dst = appendString(dst, op.meta.ProtocolType)
		dst = binary.AppendVarint(dst, int64(op.meta.Generation))
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendTopicPartitions writes parts grouped by topic, each followed by
// what entry appends for it.
func appendTopicPartitions(dst []byte, parts []TopicPartition, entry func([]byte, TopicPartition) []byte) []byte {
	parts = append([]TopicPartition(nil), parts...)
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	var topics int
	for i := range parts {
		if i == 0 || parts[i].Topic != parts[i-1].Topic {
			topics++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(topics))
	for i := 0; i < len(parts); {
		j := i
		for j < len(parts) && parts[j].Topic == parts[i].Topic {
			j++
		}
		dst = appendString(dst, parts[i].Topic)
		dst = binary.AppendUvarint(dst, uint64(j-i))
		for _, tp := range parts[i:j] {
			dst = binary.AppendVarint(dst, int64(tp.Partition))
			if entry != nil {
				dst = entry(dst, tp)
			}
		}
		i = j
	}
	return dst
}

// decodeOffsetOp decodes one record value. It never panics and allocates in
// proportion to len(b), whatever the counts in b claim.
func decodeOffsetOp(b []byte) (offsetOp, error) {
	d := opDecoder{buf: b}
	var op offsetOp
	if v := d.byte(); d.err == nil && v != offsetsFormat {
		return op, fmt.Errorf("%w: format %d", errBadOffsetRecord, v)
	}
	op.kind = offsetOpKind(d.byte())
	op.group = d.string()
	switch op.kind {
	case opCommit:
		op.commits = map[TopicPartition]storedOffset{}
		d.topicPartitions(func(tp TopicPartition) {
			var o storedOffset
			o.Offset = d.varint()
			o.LeaderEpoch = d.int32()
			o.Metadata = d.string()
			o.CommitMs = d.varint()
			o.ExpireMs = d.varint()
			op.commits[tp] = o
		})
	case opDelete:
		d.topicPartitions(func(tp TopicPartition) { op.deletes = append(op.deletes, tp) })
	case opDeleteGroup:
	case opGroupMeta:
		op.meta.ProtocolType = d.string()
		op.meta.Generation = d.int32()
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: unknown operation %d", errBadOffsetRecord, byte(op.kind))
		}
	}
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errBadOffsetRecord, len(d.buf))
	}
	if d.err != nil {
		return offsetOp{}, d.err
	}
	return op, nil
}

type opDecoder struct {
	buf []byte
	err error
}

func (d *opDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errBadOffsetRecord, what)
	}
	d.buf = nil
}

func (d *opDecoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.buf[0]
	d.buf = d.buf[1:]
	return v
}

func (d *opDecoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *opDecoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("int32")
		return 0
	}
	return int32(v)
}

// count reads a length; each counted item takes at least min bytes, so a
// count larger than the rest of the buffer allows is corrupt.
func (d *opDecoder) count(min int) int {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || v > uint64(len(d.buf)-n)/uint64(min) {
		d.fail("length")
		return 0
	}
	d.buf = d.buf[n:]
	return int(v)
}

func (d *opDecoder) string() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

func (d *opDecoder) topicPartitions(entry func(TopicPartition)) {
	topics := d.count(2)
	for range topics {
		topic := d.string()
		parts := d.count(1)
		for range parts {
			p := d.int32()
			if d.err != nil {
				return
			}
			entry(TopicPartition{Topic: topic, Partition: p})
		}
		if d.err != nil {
			return
		}
	}
}
