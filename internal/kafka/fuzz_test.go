package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/storage"
)

// panicWatch is a log handler that remembers the server's reports of a
// panic it recovered from.
type panicWatch struct {
	mu     sync.Mutex
	panics []string
}

func (w *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *panicWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *panicWatch) WithGroup(string) slog.Handler            { return w }

func (w *panicWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError || !strings.Contains(r.Message, "panic") {
		return nil
	}
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.Key + "=" + a.Value.String()
		return true
	})
	w.mu.Lock()
	w.panics = append(w.panics, msg)
	w.mu.Unlock()
	return nil
}

func (w *panicWatch) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.panics
	w.panics = nil
	return p
}

// keyVersion is one API key at one version the server serves.
type keyVersion struct{ key, version int16 }

func servedVersions(s *Server) []keyVersion {
	var out []keyVersion
	for key, h := range s.handlers {
		for v := h.min; v <= h.max; v++ {
			out = append(out, keyVersion{key, v})
		}
	}
	slices.SortFunc(out, func(a, b keyVersion) int {
		if a.key != b.key {
			return int(a.key) - int(b.key)
		}
		return int(a.version) - int(b.version)
	})
	return out
}

// appendHeader appends a request header for key and version: v1, or v2
// (tagged fields) for a flexible request.
func appendHeader(dst []byte, key, version int16, corr int32) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(key))
	dst = binary.BigEndian.AppendUint16(dst, uint16(version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, 4)
	dst = append(dst, "fuzz"...)
	req := kmsg.RequestForKey(key)
	if req != nil {
		req.SetVersion(version)
		if req.IsFlexible() {
			dst = append(dst, 0)
		}
	}
	return dst
}

// seedRequest is a request worth starting from for key: one naming the
// fuzz topic where that matters, or the key's defaults.
func seedRequest(key int16) kmsg.Request {
	const topic = "fuzz"
	switch key {
	case 0:
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = -1, 1000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = topic
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: []storage.Record{{Timestamp: 1, Key: []byte("k"), Value: []byte("v")}}})
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 1:
		r := kmsg.NewPtrFetchRequest()
		r.MaxWaitMillis, r.MinBytes, r.MaxBytes = 10, 1, 1<<20
		t := kmsg.NewFetchRequestTopic()
		t.Topic = topic
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 2:
		r := kmsg.NewPtrListOffsetsRequest()
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = topic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 3:
		r := kmsg.NewPtrMetadataRequest()
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		r.Topics = append(r.Topics, t)
		return r
	case 21:
		r := kmsg.NewPtrDeleteRecordsRequest()
		t := kmsg.NewDeleteRecordsRequestTopic()
		t.Topic = topic
		t.Partitions = append(t.Partitions, kmsg.NewDeleteRecordsRequestTopicPartition())
		r.Topics = append(r.Topics, t)
		return r
	case 22:
		r := kmsg.NewPtrInitProducerIDRequest()
		r.ProducerID, r.ProducerEpoch = 0, 0
		return r
	case 24:
		r := kmsg.NewPtrAddPartitionsToTxnRequest()
		r.TransactionalID = "fuzz-txn"
		t := kmsg.NewAddPartitionsToTxnRequestTopic()
		t.Topic, t.Partitions = topic, []int32{0}
		r.Topics = append(r.Topics, t)
		return r
	case 28:
		r := kmsg.NewPtrTxnOffsetCommitRequest()
		r.TransactionalID, r.Group = "fuzz-txn", "fuzz-group"
		t := kmsg.NewTxnOffsetCommitRequestTopic()
		t.Topic = topic
		t.Partitions = append(t.Partitions, kmsg.NewTxnOffsetCommitRequestTopicPartition())
		r.Topics = append(r.Topics, t)
		return r
	case 61:
		r := kmsg.NewPtrDescribeProducersRequest()
		t := kmsg.NewDescribeProducersRequestTopic()
		t.Topic, t.Partitions = topic, []int32{0}
		r.Topics = append(r.Topics, t)
		return r
	case 23:
		r := kmsg.NewPtrOffsetForLeaderEpochRequest()
		t := kmsg.NewOffsetForLeaderEpochRequestTopic()
		t.Topic = topic
		t.Partitions = append(t.Partitions, kmsg.NewOffsetForLeaderEpochRequestTopicPartition())
		r.Topics = append(r.Topics, t)
		return r
	case 32:
		r := kmsg.NewPtrDescribeConfigsRequest()
		for _, res := range []struct {
			t    kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeTopic, topic}, {kmsg.ConfigResourceTypeBroker, "0"}} {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = res.t, res.name
			r.Resources = append(r.Resources, rr)
		}
		r.IncludeSynonyms, r.IncludeDocumentation = true, true
		return r
	case 33:
		r := kmsg.NewPtrAlterConfigsRequest()
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("86400000")
		rr.Configs = append(rr.Configs, c)
		r.Resources = append(r.Resources, rr)
		r.ValidateOnly = true
		return r
	case 37:
		r := kmsg.NewPtrCreatePartitionsRequest()
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = topic, 3
		r.Topics = append(r.Topics, t)
		r.ValidateOnly = true
		return r
	case 44:
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name, c.Value = kmsg.IncrementalAlterConfigOpAppend, "cleanup.policy", kmsg.StringPtr("delete")
		rr.Configs = append(rr.Configs, c)
		r.Resources = append(r.Resources, rr)
		return r
	}
	return kmsg.RequestForKey(key)
}

// tooCostly reports requests that would make one fuzz input slow for
// reasons of scale, not correctness: creating many partitions.
func tooCostly(key, version int16, body []byte) bool {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return false
	}
	req.SetVersion(version)
	if req.ReadFrom(body) != nil {
		return false
	}
	partitions := 0
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		for _, t := range r.Topics {
			partitions += int(max(t.NumPartitions, 1)) + len(t.ReplicaAssignment)
		}
	case *kmsg.CreatePartitionsRequest:
		for _, t := range r.Topics {
			partitions += int(max(t.Count, 0))
		}
	}
	return partitions > 8
}

// splitHeader reads the key and version of a raw request and returns its
// body, if the header is whole.
func splitHeader(frame []byte) (key, version int16, body []byte, ok bool) {
	rd := kbin.Reader{Src: frame}
	key, version = rd.Int16(), rd.Int16()
	rd.Int32()
	rd.NullableString()
	if req := kmsg.RequestForKey(key); req != nil && rd.Ok() {
		req.SetVersion(version)
		if req.IsFlexible() {
			kmsg.SkipTags(&rd)
		}
	}
	return key, version, rd.Src, rd.Ok()
}

// exchange sends one framed request on a fresh connection, half-closes it
// and reads until the server closes it, within a bound.
func exchange(addr string, frame []byte, bound time.Duration) error {
	nc, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(bound))
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
	if _, err := nc.Write(append(msg, frame...)); err != nil {
		return err
	}
	nc.(*net.TCPConn).CloseWrite()
	_, err = io.Copy(io.Discard, nc)
	return err
}

// apiVersions asks the server for its API versions on a fresh connection.
func apiVersions(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "fuzz", "1"
	frame := req.AppendTo(appendHeader(nil, 18, 3, 7))
	if _, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		return err
	}
	if len(body) < 4 || binary.BigEndian.Uint32(body) != 7 {
		return errors.New("ApiVersions answer with the wrong correlation id")
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if err := resp.ReadFrom(body[4:]); err != nil {
		return err
	}
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		return errors.New("ApiVersions failed")
	}
	return nil
}

// rawFrame marks a fuzz input whose payload is a whole request (header and
// body), not a body for the selected key and version.
const rawFrame = 0x8000

// FuzzRequest feeds arbitrary request bodies (and whole requests) for
// every key and version the server serves to a real server, and checks
// that it never panics and keeps serving other connections.
func FuzzRequest(f *testing.F) {
	watch := &panicWatch{}
	defaults := storage.DefaultLogConfig()
	defaults.Fsync = storage.FsyncNever
	ts := startServerWithDefaults(f, defaults, func(o *Options) {
		o.AutoCreateTopics = false
		o.MaxRequestBytes = 1 << 20
		o.Logger = slog.New(watch)
	})
	ctx := context.Background()
	if _, err := ts.b.CreateTopic(ctx, "fuzz", 2, nil); err != nil {
		f.Fatal(err)
	}
	part, err := ts.b.Partition("fuzz", 0)
	if err != nil {
		f.Fatal(err)
	}
	batch := storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Timestamp: 1, Value: []byte("a")}, {Timestamp: 2, Value: []byte("b")}}})
	if _, err := part.Append(ctx, batch); err != nil {
		f.Fatal(err)
	}

	table := servedVersions(ts.srv)
	for i, kv := range table {
		req := seedRequest(kv.key)
		req.SetVersion(kv.version)
		body := req.AppendTo(nil)
		f.Add(uint16(i), body)
		if kv.version == 0 || int(kv.version) == int(ts.srv.handlers[kv.key].max) {
			f.Add(uint16(rawFrame|i), req.AppendTo(appendHeader(nil, kv.key, kv.version, int32(i))))
		}
	}
	f.Add(uint16(rawFrame), []byte{0, 18})                              // truncated header
	f.Add(uint16(rawFrame), []byte{0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}) // unknown key
	f.Add(uint16(rawFrame), []byte{0, 3, 0x7f, 0, 0, 0, 0, 1, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, sel uint16, payload []byte) {
		var frame []byte
		key, version, body := int16(-1), int16(-1), payload
		if sel&rawFrame != 0 {
			frame = payload
			var ok bool
			if key, version, body, ok = splitHeader(frame); !ok {
				key = -1
			}
		} else {
			kv := table[int(sel)%len(table)]
			key, version = kv.key, kv.version
			frame = append(appendHeader(nil, key, version, int32(sel)), payload...)
		}
		if key >= 0 && tooCostly(key, version, body) {
			t.Skip("creates too many partitions")
		}
		// The exchange may end either way (an answer, or a closed
		// connection for a request the server cannot parse); what
		// matters is what follows.
		_ = exchange(ts.addr, frame, 2*time.Second)
		if p := watch.take(); len(p) > 0 {
			t.Fatalf("key %d v%d: the server panicked: %s", key, version, p[0])
		}
		if err := apiVersions(ts.addr); err != nil {
			t.Fatalf("after key %d v%d, ApiVersions on a new connection: %v", key, version, err)
		}
	})
}
