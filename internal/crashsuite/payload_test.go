package crashsuite

import (
	"errors"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	ids := []ID{
		{Proto: ProtoKafka, Producer: 0, Seq: 0},
		{Proto: ProtoKafka, Producer: 3, Seq: 123456789},
		{Proto: ProtoAMQP, Producer: 1, Seq: 7, Copy: 9},
		{Proto: ProtoAMQP, Producer: 12, Seq: 1 << 40, Copy: 1<<40 + 5},
	}
	for _, id := range ids {
		for _, filler := range []int{0, 1, 17, maxFiller, maxFiller + 50} {
			b := Encode(id, filler)
			got, err := Decode(b)
			if err != nil || got != id {
				t.Fatalf("Decode(Encode(%v, %d)) = %v, %v", id, filler, got, err)
			}
		}
	}
}

// TestPayloadDetectsDamage flips every bit of a payload in turn, and
// truncates and extends it: each damaged copy must be ErrCorrupt.
func TestPayloadDetectsDamage(t *testing.T) {
	for _, id := range []ID{{Proto: ProtoKafka, Producer: 1, Seq: 42}, {Proto: ProtoAMQP, Producer: 0, Seq: 42, Copy: 43}} {
		good := Encode(id, 40)
		for i := range good {
			for bit := range 8 {
				b := append([]byte(nil), good...)
				b[i] ^= 1 << bit
				if got, err := Decode(b); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%v with bit %d of byte %d flipped: %v, %v", id, bit, i, got, err)
				}
			}
		}
		for n := range len(good) {
			if got, err := Decode(good[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v cut to %d bytes: %v, %v", id, n, got, err)
			}
		}
		if got, err := Decode(append(append([]byte(nil), good...), 'x')); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v with a byte added: %v, %v", id, got, err)
		}
	}
}

// FuzzDecode checks that Decode never panics and accepts only what Encode
// makes.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(ID{Proto: ProtoKafka, Producer: 1, Seq: 2}, 10))
	f.Add(Encode(ID{Proto: ProtoAMQP, Producer: 1, Seq: 2, Copy: 3}, 0))
	f.Add([]byte("\x00\x00\x00\x00k/1/2/"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if string(Encode(id, len(b)-4-len(id.String())-1)) != string(b) {
			t.Fatalf("Decode accepted %q as %v, which Encode does not make", b, id)
		}
	})
}
