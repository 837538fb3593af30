package storage

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fuzzSeedBatches are valid batches of several shapes for the corpora.
func fuzzSeedBatches() [][]byte {
	spec := func(recs ...Record) BatchSpec {
		return BatchSpec{BaseOffset: 0, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs}
	}
	out := [][]byte{
		AppendBatch(nil, spec(Record{Timestamp: 1})),
		AppendBatch(nil, spec(Record{Timestamp: 5, Key: []byte("k"), Value: []byte("v")})),
		AppendBatch(nil, spec(Record{Key: []byte{}, Value: []byte{}, Headers: []Header{{Key: "", Value: nil}, {Key: "h", Value: []byte{}}}})),
		AppendBatch(nil, BatchSpec{BaseOffset: 1 << 40, Attributes: attrTransactional, ProducerID: 7, ProducerEpoch: 3, BaseSequence: 99,
			Records: []Record{{Timestamp: -1 << 62}, {Timestamp: 1 << 62, Value: bytes.Repeat([]byte{0xAB}, 300)}}}),
		testBatch(5, 40, 3, 1_700_000_000_000),
		testBatch(1, 2000, 9, 0),
	}
	// A LogAppendTime batch and a compressed one (its records are opaque).
	lat := slices.Clone(out[1])
	Batch(lat).setLogAppendTime(1234)
	gz := slices.Clone(out[4])
	binary.BigEndian.PutUint16(gz[offAttributes:], 1)
	Batch(gz).updateCRC()
	return append(out, lat, gz)
}

// fuzzDamaged returns damaged variants of a batch: truncations and bit flips.
func fuzzDamaged(b []byte) [][]byte {
	var out [][]byte
	for _, n := range []int{0, 1, offMagic, offMagic + 1, batchHeaderSize - 1, batchHeaderSize, len(b) - 1} {
		if n >= 0 && n <= len(b) {
			out = append(out, slices.Clone(b[:n]))
		}
	}
	for _, p := range []int{offBatchLength + 3, offMagic, offCRC, offAttributes, offLastOffsetDelta + 3, offRecordCount + 3, batchHeaderSize, len(b) - 1} {
		if p < len(b) {
			f := slices.Clone(b)
			f[p] ^= 1
			out = append(out, f)
		}
	}
	return out
}

func FuzzCheckBatch(f *testing.F) {
	for _, b := range fuzzSeedBatches() {
		f.Add(b, 0, false)
		f.Add(b, len(b)-1, false)
		f.Add(append(slices.Clone(b), b...), 0, false) // two batches
		for _, d := range fuzzDamaged(b) {
			f.Add(d, 0, false)
			f.Add(d, 0, true)
		}
	}
	f.Add([]byte{}, 0, false)
	f.Fuzz(func(t *testing.T, data []byte, maxSize int, fixCRC bool) {
		if fixCRC && len(data) >= batchHeaderSize {
			// Get past the CRC to the checks and the decoding behind it.
			size := batchLogOverhead + int64(int32(binary.BigEndian.Uint32(data[offBatchLength:])))
			if size >= batchHeaderSize && size <= int64(len(data)) {
				data = slices.Clone(data)
				binary.BigEndian.PutUint32(data[offCRC:], crc32.Checksum(data[offAttributes:size], castagnoli))
			}
		}
		// PeekBatch reads any input without panicking, and agrees with
		// CheckBatch on every batch CheckBatch accepts.
		peeked, perr := PeekBatch(data)
		b, err := CheckBatch(data, maxSize)
		if err == nil && (perr != nil || len(peeked) != len(b)) {
			t.Fatalf("CheckBatch accepted %d bytes, PeekBatch: %d bytes, %v", len(b), len(peeked), perr)
		}
		if err != nil {
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrBatchTooLarge) && !errors.Is(err, ErrUnsupportedMagic) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if b != nil {
				t.Fatal("a rejected batch was returned")
			}
			return
		}
		if b.Size() != len(b) || b.Size() > len(data) || b.Size() < batchHeaderSize {
			t.Fatalf("accepted batch of size %d (%d bytes) from %d bytes", b.Size(), len(b), len(data))
		}
		if maxSize > 0 && b.Size() > maxSize {
			t.Fatalf("accepted %d bytes over a limit of %d", b.Size(), maxSize)
		}
		if !bytes.Equal(b, data[:len(b)]) {
			t.Fatal("batch is not a prefix of the input")
		}
		if b.Magic() != 2 || b.RecordCount() < 1 || b.LastOffsetDelta() != b.RecordCount()-1 {
			t.Fatalf("accepted magic %d, %d records, delta %d", b.Magic(), b.RecordCount(), b.LastOffsetDelta())
		}
		if b.LastOffset() != b.BaseOffset()+int64(b.LastOffsetDelta()) || b.NextOffset() != b.LastOffset()+1 {
			t.Fatal("offset accessors disagree")
		}
		if len(b.Records()) != b.Size()-batchHeaderSize {
			t.Fatalf("records are %d bytes of a %d-byte batch", len(b.Records()), b.Size())
		}
		_ = b.Compression() + int(b.ProducerEpoch()) + int(b.BaseSequence()) + int(b.LeaderEpoch())
		_ = b.IsLogAppendTime() || b.IsTransactional() || b.IsControl()
		_ = b.BaseTimestamp() + b.MaxTimestamp() + b.ProducerID()
		if _, err := CheckBatch(data, len(b)-1); !errors.Is(err, ErrBatchTooLarge) {
			t.Fatalf("a limit one byte short: %v", err)
		}
		var n int32
		err = DecodeRecords(b, func(Record) bool { n++; return true })
		switch {
		case b.Compression() != 0:
			if !errors.Is(err, ErrCompressed) {
				t.Fatalf("compressed batch: %v", err)
			}
		case err == nil && n != b.RecordCount():
			t.Fatalf("decoded %d records of %d", n, b.RecordCount())
		case err != nil && !errors.Is(err, ErrCorruptBatch):
			t.Fatalf("decode: unexpected error kind: %v", err)
		}
		// Stopping early stops.
		var calls int
		_ = DecodeRecords(b, func(Record) bool { calls++; return false })
		if calls > 1 {
			t.Fatalf("decoding went on after the callback said stop (%d calls)", calls)
		}
	})
}

// batchAround wraps arbitrary record bytes in a RecordBatch v2 header with a
// correct length and CRC, so that CheckBatch accepts it and DecodeRecords
// gets to the records.
func batchAround(records []byte, count int32, attrs int16, baseTS int64) []byte {
	b := make([]byte, batchHeaderSize, batchHeaderSize+len(records))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(count-1))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(baseTS))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(baseTS))
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(count))
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-batchLogOverhead))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// fuzzRecords derives records from arbitrary bytes, covering null and empty
// keys, values and header values.
func fuzzRecords(data []byte, baseTS int64) []Record {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		c := data[0]
		data = data[1:]
		return c
	}
	take := func(n int) []byte {
		n = min(n, len(data))
		v := slices.Clone(data[:n])
		if v == nil {
			v = []byte{}
		}
		data = data[n:]
		return v
	}
	recs := make([]Record, 1+int(next())%6)
	for i := range recs {
		c := next()
		r := Record{Timestamp: baseTS + int64(int8(next()))}
		if c&1 == 0 {
			r.Key = take(int(next()) % 40)
		}
		if c&2 == 0 {
			r.Value = take(int(next()))
		}
		for range int(c>>2) % 4 {
			h := Header{Key: string(take(int(next()) % 10))}
			if c&0x40 == 0 {
				h.Value = take(int(next()) % 20)
			}
			r.Headers = append(r.Headers, h)
		}
		recs[i] = r
	}
	return recs
}

func FuzzDecodeRecords(f *testing.F) {
	for _, b := range fuzzSeedBatches() {
		f.Add(Batch(b).Records(), Batch(b).RecordCount(), int16(0), int64(0), []byte(nil))
		f.Add(Batch(b).Records(), Batch(b).RecordCount()+1, int16(0), int64(7), b[:10])
	}
	f.Add([]byte{}, int32(1), int16(0), int64(0), []byte{3, 0, 9, 3, 'k', 'e', 'y', 5, 'v', 'a', 'l', 'u', 'e'})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0x0f}, int32(1<<30), int16(attrTimestampType), int64(-1), []byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, records []byte, count int32, attrs int16, baseTS int64, spec []byte) {
		// Arbitrary record bytes behind a valid header.
		if count >= 1 {
			b, err := CheckBatch(batchAround(records, count, attrs, baseTS), 0)
			if err != nil {
				t.Fatalf("header built by the test rejected: %v", err)
			}
			var n int64
			err = DecodeRecords(b, func(Record) bool { n++; return true })
			if n > int64(count) || n > int64(len(records)) {
				t.Fatalf("%d records decoded from %d bytes declaring %d", n, len(records), count)
			}
			if err != nil && !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrCompressed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		}

		// Round trip: what AppendBatch encodes, DecodeRecords returns.
		want := fuzzRecords(spec, baseTS)
		base := int64(count)
		buf := AppendBatch(nil, BatchSpec{BaseOffset: base, Attributes: attrs &^ attrTimestampType, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: want})
		b, err := CheckBatch(buf, 0)
		if err != nil || len(b) != len(buf) {
			t.Fatalf("AppendBatch output rejected: %v", err)
		}
		if b.MaxTimestamp() != slices.MaxFunc(want, func(x, y Record) int { return cmp.Compare(x.Timestamp, y.Timestamp) }).Timestamp {
			t.Fatalf("max timestamp %d", b.MaxTimestamp())
		}
		var got []Record
		if err := DecodeRecords(b, func(r Record) bool { got = append(got, r); return true }); err != nil {
			t.Fatalf("decoding AppendBatch output: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("decoded %d records, encoded %d", len(got), len(want))
		}
		for i := range want {
			w, g := want[i], got[i]
			if g.Offset != base+int64(i) || g.Timestamp != w.Timestamp || !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
				t.Fatalf("record %d: got %+v, want %+v", i, g, w)
			}
			for j := range w.Headers {
				if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
					t.Fatalf("record %d header %d: got %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
				}
			}
		}
	})
}

// sameBytes is bytes.Equal that also tells null from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func FuzzIndexDecode(f *testing.F) {
	// Real index files, plus hand-made ones.
	dir := f.TempDir()
	l := openTestLog(f, dir, func(c *LogConfig) { c.SegmentBytes = 2048; c.IndexIntervalBytes = 200 }, Options{FS: fastFS{}})
	for i := range 30 {
		mustAppend(f, l, testBatch(1+i%3, 60, i, int64(1000+i*10)))
	}
	if err := l.Close(); err != nil { // writes the indexes of sealed segments
		f.Fatal(err)
	}
	segs := segmentFiles(f, dir)
	for i, path := range segs[:len(segs)-1] {
		stem := strings.TrimSuffix(path, ".log")
		base, _ := strconv.ParseInt(filepath.Base(stem), 10, 64)
		next, _ := strconv.ParseInt(filepath.Base(strings.TrimSuffix(segs[i+1], ".log")), 10, 64)
		info, err := os.Stat(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, ext := range []string{".index", ".timeindex"} {
			buf, err := os.ReadFile(stem + ext)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(buf, base, info.Size(), next, false)
			f.Add(buf[:len(buf)-1], base, info.Size(), next, false)
			f.Add(buf[:len(buf)-4], base, info.Size(), next, true)
		}
	}
	f.Add(encodeOffsetIndex(nil, segmentSummary{next: 1, size: 100, maxTS: -1, maxTSOffset: -1}), int64(0), int64(100), int64(1), false)
	f.Add(encodeOffsetIndex([]indexEntry{{1, 10}, {2, 20}}, segmentSummary{next: 1 << 40, size: 100}), int64(-1<<62), int64(100), int64(1), true)
	f.Add(encodeTimeIndex([]timeEntry{{ts: 5, rel: 0}, {ts: 9, rel: 3}}), int64(10), int64(0), int64(20), false)
	f.Add([]byte{}, int64(0), int64(0), int64(0), false)
	f.Fuzz(func(t *testing.T, buf []byte, base, fileSize, next int64, fixCRC bool) {
		if fixCRC && len(buf) >= 4 {
			// Get past the checksum to the structural checks.
			buf = slices.Clone(buf)
			binary.BigEndian.PutUint32(buf[len(buf)-4:], crc32.Checksum(buf[:len(buf)-4], castagnoli))
		}
		idx, sum, err := decodeOffsetIndex(buf, base, fileSize)
		if err == nil {
			if sum.size != fileSize || sum.next <= base {
				t.Fatalf("accepted summary %+v for base %d, size %d", sum, base, fileSize)
			}
			for i, e := range idx {
				if int64(e.pos) >= fileSize || (i > 0 && (e.rel <= idx[i-1].rel || e.pos <= idx[i-1].pos)) {
					t.Fatalf("accepted entry %d %+v", i, e)
				}
			}
			// A valid index file has one encoding.
			if again := encodeOffsetIndex(idx, sum); !bytes.Equal(again, buf) {
				t.Fatal("offset index does not re-encode to its input")
			}
			for _, e := range idx {
				if pos := lookupIndex(idx, e.rel); pos != int64(e.pos) {
					t.Fatalf("lookupIndex(%d) = %d, want %d", e.rel, pos, e.pos)
				}
			}
		}
		tidx, err := decodeTimeIndex(buf, base, next)
		if err == nil {
			for i, e := range tidx {
				if i > 0 && (e.ts <= tidx[i-1].ts || e.rel < tidx[i-1].rel) {
					t.Fatalf("accepted time entry %d %+v", i, e)
				}
			}
			if again := encodeTimeIndex(tidx); !bytes.Equal(again, buf) {
				t.Fatal("time index does not re-encode to its input")
			}
			// A lookup scans from just after the previous entry.
			for i, e := range tidx {
				rel, ok := lookupTime(tidx, e.ts)
				if (i == 0 && ok) || (i > 0 && (!ok || rel != tidx[i-1].rel+1)) {
					t.Fatalf("lookupTime(%d) = %d, %v at entry %d", e.ts, rel, ok, i)
				}
			}
		}
	})
}

// recoveryFuzzFixture is a closed log of several segments built once per
// fuzzing process.
func recoveryFuzzFixture(f *testing.F) *recoveryFixture {
	fx := &recoveryFixture{dir: f.TempDir(), files: map[string][]byte{}}
	l := openTestLog(f, fx.dir, recoveryConfig, Options{FS: fastFS{}})
	for i := range 30 {
		b := recoveryBatch(i)
		mustAppend(f, l, b)
		fx.batches = append(fx.batches, b)
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	segs := segmentFiles(f, fx.dir)
	fx.last = filepath.Base(segs[len(segs)-1])
	fx.spans = batchSpans(f, segs[len(segs)-1])
	fx.sealed = len(fx.batches) - len(fx.spans)
	fx.size = fx.spans[len(fx.spans)-1][1]
	fx.readFiles(f)
	return fx
}

// Damage modes of FuzzRecovery.
const (
	damageOverwrite   = iota // data replaces bytes from pos, extending the file if needed
	damageInsert             // data is inserted at pos
	damageReplaceTail        // the file is cut at pos and data appended
	damageModes
)

func FuzzRecovery(f *testing.F) {
	fx := recoveryFuzzFixture(f)
	last := fx.files[fx.last]
	next := recoveryBatch(len(fx.batches))
	Batch(next).setBaseOffset(Batch(fx.batches[len(fx.batches)-1]).NextOffset())
	for _, sp := range fx.spans {
		p := uint32(sp[0])
		f.Add([]byte{0xff}, p, uint8(damageOverwrite))
		f.Add([]byte{0, 0, 0, 0}, p+offBatchLength, uint8(damageOverwrite))
		f.Add([]byte{1}, p+offMagic, uint8(damageOverwrite))
		f.Add(last[sp[0]:sp[1]], p, uint8(damageInsert))
		f.Add(next, p, uint8(damageReplaceTail))
		f.Add(next[:len(next)/2], uint32(sp[1]), uint8(damageReplaceTail))
	}
	f.Add(next, uint32(len(last)), uint8(damageOverwrite)) // a valid batch after the end
	f.Add(make([]byte, 4096), uint32(len(last)), uint8(damageOverwrite))
	f.Add([]byte{}, uint32(0), uint8(damageReplaceTail))
	f.Fuzz(func(t *testing.T, data []byte, pos uint32, mode uint8) {
		p := int(pos % uint32(len(last)+1))
		var damaged []byte
		dir := fx.copyLog(t, func(b []byte) []byte {
			switch mode % damageModes {
			case damageOverwrite:
				if end := p + len(data); end > len(b) {
					b = append(b, make([]byte, end-len(b))...)
				}
				copy(b[p:], data)
			case damageInsert:
				b = slices.Insert(b, p, data...)
			case damageReplaceTail:
				b = append(b[:p], data...)
			}
			damaged = b
			return b
		})
		// The damage starts at the first byte that differs.
		diff := 0
		for diff < len(last) && diff < len(damaged) && last[diff] == damaged[diff] {
			diff++
		}
		if diff == len(last) && len(damaged) == len(last) {
			diff = len(last) + 1 // nothing changed
		}
		kept := fx.keptBefore(int64(diff))
		l := openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
		defer l.Close()
		got := readAll(t, l, 0)
		if len(got) < len(kept) {
			t.Fatalf("%d batches served, but %d were wholly before the damage at byte %d", len(got), len(kept), diff)
		}
		var off int64
		for i, b := range got {
			if i < len(kept) && !bytes.Equal(b, kept[i]) {
				t.Fatalf("batch %d changed, though wholly before the damage at byte %d", i, diff)
			}
			if _, err := CheckBatch(b, 0); err != nil {
				t.Fatalf("served batch %d fails its check: %v", i, err)
			}
			if b.BaseOffset() != off {
				t.Fatalf("served batch %d at offset %d, want %d", i, b.BaseOffset(), off)
			}
			off = b.NextOffset()
		}
		if start, hw, end := l.Offsets(); start != 0 || hw != off || end != off {
			t.Fatalf("offsets %d/%d/%d, want 0/%d/%d", start, hw, end, off, off)
		}
		if res := mustAppend(t, l, testBatch(1, 10, 1, 1)); res.BaseOffset != off {
			t.Fatalf("append after recovery at %d, want %d", res.BaseOffset, off)
		}
	})
}
