package crashsuite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Payload formats. Every message the suite sends carries its own identity
// and a checksum, so that a consumer can tell which message it got and
// whether it arrived intact, whatever the broker did to it:
//
//	crc32 (4 bytes, big endian, IEEE) of the rest
//	identity: "k/<producer>/<seq>/" or "a/<publisher>/<seq>/<copy>/"
//	filler: 0 to maxFiller bytes derived from the identity
//
// A Kafka record is identified by its producer and sequence. An AMQP
// message is identified by its publisher and sequence; copy numbers each
// publish of it (a republish after a lost connection is a new copy).

// Protocols of a payload.
const (
	ProtoKafka = 'k'
	ProtoAMQP  = 'a'
)

// maxFiller bounds the filler, which varies message sizes so that batches,
// segments and frames end at varying places.
const maxFiller = 300

// ErrCorrupt is returned for a payload whose checksum or identity is wrong.
var ErrCorrupt = errors.New("corrupt payload")

// ID identifies one message of the suite.
type ID struct {
	Proto    byte  // ProtoKafka or ProtoAMQP
	Producer int   // the producer or publisher
	Seq      int64 // its sequence number, from 0
	Copy     int64 // AMQP only: which publish of the message, unique per publisher
}

func (id ID) String() string {
	if id.Proto == ProtoAMQP {
		return fmt.Sprintf("a/%d/%d/%d", id.Producer, id.Seq, id.Copy)
	}
	return fmt.Sprintf("k/%d/%d", id.Producer, id.Seq)
}

// Message returns the identity without the copy: what a publisher means to
// deliver, whichever copy arrives.
func (id ID) Message() ID {
	id.Copy = 0
	return id
}

// Encode returns the payload of id with fillerLen bytes of filler (clamped
// to [0, maxFiller]).
func Encode(id ID, fillerLen int) []byte {
	fillerLen = min(max(fillerLen, 0), maxFiller)
	b := make([]byte, 4, 4+32+fillerLen)
	b = append(b, id.String()...)
	b = append(b, '/')
	x := uint32(id.Seq)*2654435761 + uint32(id.Producer)*40503 + uint32(id.Copy)
	for range fillerLen {
		x = x*1664525 + 1013904223
		b = append(b, 'a'+byte(x>>27)%26)
	}
	binary.BigEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
	return b
}

// Decode checks a payload and returns its identity. A payload that fails
// its checksum or does not parse is ErrCorrupt.
func Decode(b []byte) (ID, error) {
	if len(b) < 4 {
		return ID{}, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	if got, want := crc32.ChecksumIEEE(b[4:]), binary.BigEndian.Uint32(b); got != want {
		return ID{}, fmt.Errorf("%w: checksum %08x, payload says %08x", ErrCorrupt, got, want)
	}
	fields := strings.SplitN(string(b[4:]), "/", 5)
	if len(fields) < 4 || len(fields[0]) != 1 {
		return ID{}, fmt.Errorf("%w: bad identity", ErrCorrupt)
	}
	id := ID{Proto: fields[0][0]}
	var nums []string
	switch id.Proto {
	case ProtoKafka:
		nums = fields[1:3]
	case ProtoAMQP:
		if len(fields) < 5 {
			return ID{}, fmt.Errorf("%w: bad identity", ErrCorrupt)
		}
		nums = fields[1:4]
	default:
		return ID{}, fmt.Errorf("%w: unknown protocol %q", ErrCorrupt, fields[0])
	}
	var vals [3]int64
	for i, s := range nums {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return ID{}, fmt.Errorf("%w: bad number %q", ErrCorrupt, s)
		}
		vals[i] = v
	}
	id.Producer, id.Seq, id.Copy = int(vals[0]), vals[1], vals[2]
	if want := Encode(id, len(b)-4-len(id.String())-1); string(want) != string(b) {
		return ID{}, fmt.Errorf("%w: filler does not match the identity", ErrCorrupt)
	}
	return id, nil
}
