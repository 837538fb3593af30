package gateway

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// restFetchedBody is a fetch response as a client decodes it.
type restFetchedBody struct {
	Topic          string           `json:"topic"`
	Partition      int32            `json:"partition"`
	Records        []map[string]any `json:"records"`
	NextOffset     int64            `json:"next_offset"`
	HighWatermark  int64            `json:"high_watermark"`
	LogStartOffset int64            `json:"log_start_offset"`
}

func TestRESTTopicAdmin(t *testing.T) {
	e := newRESTEnv(t)
	var created restTopic
	e.must(t, http.StatusCreated, http.MethodPost, "/api/v1/topics",
		map[string]any{"name": "orders", "partitions": 3, "configs": map[string]string{"retention.ms": "60000"}}, &created)
	if created.Name != "orders" || len(created.Partitions) != 3 || len(created.ID) != 32 {
		t.Fatalf("created: %+v", created)
	}
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodPost, "/api/v1/topics", map[string]any{"name": "orders"})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/topics", map[string]any{"name": "bad name!"})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/topics", map[string]any{"name": "x", "partitions": 0})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/topics", map[string]any{"name": "x", "configs": map[string]string{"no.such": "1"}})
	e.must(t, http.StatusCreated, http.MethodPost, "/api/v1/topics", map[string]any{"name": "one"}, nil)

	var list struct{ Topics []restTopicSummary }
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics", nil, &list)
	if len(list.Topics) != 2 || list.Topics[0].Name != "one" || list.Topics[0].Partitions != 1 || list.Topics[1].Name != "orders" || list.Topics[1].Partitions != 3 {
		t.Fatalf("list: %+v", list)
	}

	// Describe: partitions with offsets, configs with defaults marked.
	if _, err := e.svc.Produce(t.Context(), "orders", []service.ProduceRecord{{Partition: 1, Value: []byte("a")}, {Partition: 1, Value: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	var d restTopic
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/orders", nil, &d)
	if d.Partitions[1] != (restPartitionState{Partition: 1, LogStartOffset: 0, HighWatermark: 2}) || d.Partitions[0].HighWatermark != 0 {
		t.Fatalf("partitions: %+v", d.Partitions)
	}
	config := func(cs []restConfig, name string) restConfig {
		for _, c := range cs {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no config %s in %+v", name, cs)
		return restConfig{}
	}
	if c := config(d.Configs, "retention.ms"); c.Value != "60000" || c.IsDefault {
		t.Fatalf("retention.ms: %+v", c)
	}
	if c := config(d.Configs, "segment.bytes"); !c.IsDefault {
		t.Fatalf("segment.bytes: %+v", c)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/topics/nope", nil)

	// Configs: PATCH sets and deletes single keys, PUT replaces them all.
	var cs struct{ Configs []restConfig }
	e.must(t, http.StatusOK, http.MethodPatch, "/api/v1/topics/orders/configs",
		map[string]any{"set": map[string]string{"retention.bytes": "1000000"}}, &cs)
	if config(cs.Configs, "retention.bytes").Value != "1000000" || config(cs.Configs, "retention.ms").Value != "60000" {
		t.Fatalf("after PATCH set: %+v", cs)
	}
	e.must(t, http.StatusOK, http.MethodPatch, "/api/v1/topics/orders/configs", map[string]any{"delete": []string{"retention.ms"}}, &cs)
	if c := config(cs.Configs, "retention.ms"); !c.IsDefault {
		t.Fatalf("after PATCH delete: %+v", c)
	}
	e.must(t, http.StatusOK, http.MethodPut, "/api/v1/topics/orders/configs", map[string]any{"configs": map[string]string{"segment.ms": "3600000"}}, &cs)
	if !config(cs.Configs, "retention.bytes").IsDefault || config(cs.Configs, "segment.ms").Value != "3600000" {
		t.Fatalf("after PUT: %+v", cs)
	}
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/orders/configs", nil, &cs)
	if config(cs.Configs, "segment.ms").IsDefault {
		t.Fatalf("GET configs: %+v", cs)
	}
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPatch, "/api/v1/topics/orders/configs", map[string]any{"set": map[string]string{"retention.ms": "soon"}})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPatch, "/api/v1/topics/orders/configs",
		map[string]any{"set": map[string]string{"retention.ms": "1"}, "delete": []string{"retention.ms"}})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPut, "/api/v1/topics/nope/configs", map[string]any{"configs": map[string]string{}})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/topics/nope/configs", nil)

	// Partitions grow, never shrink.
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/topics/orders/partitions", map[string]any{"count": 5}, &d)
	if len(d.Partitions) != 5 {
		t.Fatalf("after growing: %+v", d.Partitions)
	}
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/topics/orders/partitions", map[string]any{"count": 2})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/topics/orders/partitions", map[string]any{})
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPost, "/api/v1/topics/nope/partitions", map[string]any{"count": 2})

	var del restDeleted
	e.must(t, http.StatusOK, http.MethodDelete, "/api/v1/topics/orders", nil, &del)
	if del.Deleted != "orders" {
		t.Fatalf("delete: %+v", del)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, "/api/v1/topics/orders", nil)
	if _, ok := e.b.Topic("orders"); ok {
		t.Fatal("topic still there")
	}
}

func TestRESTProduceFetch(t *testing.T) {
	e := newRESTEnv(t)
	e.must(t, http.StatusCreated, http.MethodPost, "/api/v1/topics", map[string]any{"name": "events", "partitions": 4}, nil)

	binary := []byte{0, 1, 2, 0xff, 0xfe, 'x'}
	b64 := base64.StdEncoding.EncodeToString(binary)
	var prod struct{ Offsets []restOffset }
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/topics/events/records", map[string]any{"records": []map[string]any{
		{"key": "user-1", "value": "hello", "headers": []map[string]any{
			{"key": "source", "value": "web"}, {"key": "raw", "value_b64": b64}, {"key": "nothing"},
		}, "partition": 2, "timestamp": 1764806400000},
		{"key_b64": b64, "value_b64": b64, "partition": 2},
		{"key": "tombstone", "partition": 2},
		{"value": "no key", "partition": 2},
	}}, &prod)
	if len(prod.Offsets) != 4 {
		t.Fatalf("offsets: %+v", prod.Offsets)
	}
	for i, o := range prod.Offsets {
		if o != (restOffset{Partition: 2, Offset: int64(i)}) {
			t.Fatalf("offset %d: %+v", i, o)
		}
	}

	var f restFetchedBody
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/events/partitions/2/records?offset=0", nil, &f)
	if f.Topic != "events" || f.Partition != 2 || len(f.Records) != 4 || f.NextOffset != 4 || f.HighWatermark != 4 || f.LogStartOffset != 0 {
		t.Fatalf("fetch: %+v", f)
	}
	r0 := f.Records[0]
	if r0["topic"] != "events" || r0["partition"] != 2.0 || r0["offset"] != 0.0 || r0["timestamp"] != 1764806400000.0 ||
		r0["key"] != "user-1" || r0["value"] != "hello" || r0["null_value"] != nil {
		t.Fatalf("record 0: %v", r0)
	}
	hs := r0["headers"].([]any)
	if len(hs) != 3 || fmt.Sprint(hs[0]) != "map[key:source value:web]" || fmt.Sprint(hs[1]) != "map[key:raw value_b64:"+b64+"]" ||
		fmt.Sprint(hs[2]) != "map[key:nothing]" {
		t.Fatalf("headers: %v", hs)
	}
	r1 := f.Records[1]
	if r1["key_b64"] != b64 || r1["value_b64"] != b64 || r1["key"] != nil || r1["value"] != nil {
		t.Fatalf("record 1: %v", r1)
	}
	if ts := r1["timestamp"].(float64); ts <= 0 {
		t.Fatalf("record 1 timestamp %v: want now", ts)
	}
	if r2 := f.Records[2]; r2["null_value"] != true || r2["value"] != nil || r2["value_b64"] != nil || r2["key"] != "tombstone" {
		t.Fatalf("record 2: %v", r2)
	}
	if r3 := f.Records[3]; r3["key"] != nil || r3["key_b64"] != nil || r3["value"] != "no key" {
		t.Fatalf("record 3: %v", r3)
	}

	// From the middle, with earliest and latest, and at the end.
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/events/partitions/2/records?offset=3", nil, &f)
	if len(f.Records) != 1 || f.Records[0]["offset"] != 3.0 || f.NextOffset != 4 {
		t.Fatalf("from 3: %+v", f)
	}
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/events/partitions/2/records", nil, &f)
	if len(f.Records) != 4 {
		t.Fatalf("default (earliest): %+v", f)
	}
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/events/partitions/2/records?offset=latest", nil, &f)
	if len(f.Records) != 0 || f.NextOffset != 4 || f.Records == nil {
		t.Fatalf("latest: %+v", f)
	}
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/events/partitions/2/records?offset=4", nil, &f)
	if len(f.Records) != 0 || f.NextOffset != 4 {
		t.Fatalf("at the end: %+v", f)
	}
	// max_bytes bounds a fetch but always returns a batch.
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/events/partitions/2/records?offset=0&max_bytes=1", nil, &f)
	if len(f.Records) == 0 {
		t.Fatalf("max_bytes=1: %+v", f)
	}

	// Errors.
	e.wantErr(t, http.StatusRequestedRangeNotSatisfiable, service.CodeOutOfRange, http.MethodGet, "/api/v1/topics/events/partitions/2/records?offset=5", nil)
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/topics/events/partitions/9/records", nil)
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/topics/nope/partitions/0/records", nil)
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodGet, "/api/v1/topics/events/partitions/x/records", nil)
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodGet, "/api/v1/topics/events/partitions/2/records?offset=soon", nil)
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodGet, "/api/v1/topics/events/partitions/2/records?max_bytes=0", nil)
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodGet, "/api/v1/topics/events/partitions/2/records?wait_ms=30001", nil)
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPost, "/api/v1/topics/events/records", map[string]any{"records": []map[string]any{{"value": "x", "partition": 4}}})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/topics/events/records", map[string]any{"records": []map[string]any{{"value": "x", "partition": -2}}})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/topics/events/records", map[string]any{"records": []map[string]any{{"value": "x", "timestamp": -1}}})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/topics/events/records", map[string]any{"records": []map[string]any{{"headers": []map[string]any{{"value": "no key"}}}}})

	// Without a partition, a key goes where Kafka's clients would put it.
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/topics/events/records", map[string]any{"records": []map[string]any{
		{"key": "k1", "value": "a"}, {"key": "k2", "value": "b"}, {"key": "k1", "value": "c"},
	}}, &prod)
	for i, k := range []string{"k1", "k2", "k1"} {
		if want := broker.PartitionForKey([]byte(k), 4); prod.Offsets[i].Partition != want {
			t.Fatalf("key %s went to %d, want %d", k, prod.Offsets[i].Partition, want)
		}
	}

	// An unknown topic is created on its first produce.
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/topics/fresh/records", map[string]any{"records": []map[string]any{{"value": "first"}}}, &prod)
	if prod.Offsets[0] != (restOffset{Partition: 0, Offset: 0}) {
		t.Fatalf("fresh: %+v", prod.Offsets)
	}
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/fresh/partitions/0/records?offset=0", nil, &f)
	if len(f.Records) != 1 || f.Records[0]["value"] != "first" {
		t.Fatalf("fresh fetch: %+v", f)
	}
}

// TestRESTFetchLongPoll checks that a fetch with wait_ms answers with a
// record produced while it waits, and with nothing when none comes.
func TestRESTFetchLongPoll(t *testing.T) {
	e := newRESTEnv(t)
	e.must(t, http.StatusCreated, http.MethodPost, "/api/v1/topics", map[string]any{"name": "poll"}, nil)

	// Nothing comes: an empty answer once wait_ms has passed.
	var f restFetchedBody
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/topics/poll/partitions/0/records?offset=latest&wait_ms=20", nil, &f)
	if len(f.Records) != 0 || f.NextOffset != 0 {
		t.Fatalf("empty poll: %+v", f)
	}

	// A record comes while the fetch waits (or before it starts: either
	// way it is the answer, since the fetch asks for offset 0).
	got := make(chan restResp, 1)
	go func() {
		got <- e.do(t, http.MethodGet, "/api/v1/topics/poll/partitions/0/records?offset=0&wait_ms=30000", nil)
	}()
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/topics/poll/records", map[string]any{"records": []map[string]any{{"value": "ding"}}}, nil)
	r := waitDone(t, got)
	if r.status != http.StatusOK {
		t.Fatalf("long poll: %d %s", r.status, r.body)
	}
	r.json(t, &f)
	if len(f.Records) != 1 || f.Records[0]["value"] != "ding" || f.NextOffset != 1 {
		t.Fatalf("long poll: %+v", f)
	}
}

func TestRESTGroups(t *testing.T) {
	e := newRESTEnv(t)
	e.must(t, http.StatusCreated, http.MethodPost, "/api/v1/topics", map[string]any{"name": "t", "partitions": 2}, nil)
	var prod struct{ Offsets []restOffset }
	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/topics/t/records", map[string]any{"records": []map[string]any{
		{"value": "a", "partition": 0}, {"value": "b", "partition": 0}, {"value": "c", "partition": 0}, {"value": "d", "partition": 1},
	}}, &prod)

	type offsetsBody struct {
		Group   string
		Offsets []map[string]any
	}
	var ob offsetsBody
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/groups/g1/offsets", nil, &ob)
	if ob.Group != "g1" || len(ob.Offsets) != 0 {
		t.Fatalf("before commit: %+v", ob)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/groups/g1", nil)

	e.must(t, http.StatusOK, http.MethodPost, "/api/v1/groups/g1/offsets", map[string]any{"offsets": []map[string]any{
		{"topic": "t", "partition": 0, "offset": 1, "metadata": "md"}, {"topic": "t", "partition": 1, "offset": 1},
	}}, &ob)
	if len(ob.Offsets) != 2 || ob.Offsets[0]["offset"] != 1.0 || ob.Offsets[0]["metadata"] != "md" || ob.Offsets[0]["lag"] != 2.0 ||
		ob.Offsets[0]["high_watermark"] != 3.0 || ob.Offsets[1]["lag"] != 0.0 {
		t.Fatalf("after commit: %+v", ob)
	}
	// The broker sees the commit, as a Kafka OffsetFetch would.
	if co := e.b.CommittedOffsets("g1")[broker.TopicPartition{Topic: "t", Partition: 0}]; co.Offset != 1 || co.Metadata != "md" {
		t.Fatalf("broker: %+v", co)
	}

	var g restGroup
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/groups/g1", nil, &g)
	if g.Group != "g1" || g.State != "Empty" || len(g.Members) != 0 || len(g.Offsets) != 2 || *g.Offsets[0].Lag != 2 || *g.Offsets[0].HighWatermark != 3 {
		t.Fatalf("describe: %+v", g)
	}
	var gl struct{ Groups []restGroupSummary }
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/groups", nil, &gl)
	if len(gl.Groups) != 1 || gl.Groups[0].Group != "g1" || gl.Groups[0].State != "Empty" {
		t.Fatalf("list: %+v", gl)
	}

	// A partition that does not exist commits nothing.
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodPost, "/api/v1/groups/g1/offsets", map[string]any{"offsets": []map[string]any{
		{"topic": "t", "partition": 0, "offset": 3}, {"topic": "t", "partition": 7, "offset": 0},
	}})
	if co := e.b.CommittedOffsets("g1")[broker.TopicPartition{Topic: "t", Partition: 0}]; co.Offset != 1 {
		t.Fatalf("a refused commit committed: %+v", co)
	}
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/groups/g1/offsets", map[string]any{"offsets": []map[string]any{}})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/groups/g1/offsets", map[string]any{"offsets": []map[string]any{{"topic": "t", "partition": 0}}})
	e.wantErr(t, http.StatusBadRequest, service.CodeInvalid, http.MethodPost, "/api/v1/groups/g1/offsets", map[string]any{"offsets": []map[string]any{{"topic": "t", "partition": 0, "offset": -1}}})

	// A group with members takes commits from its members only.
	join := <-e.b.JoinGroup(broker.JoinGroupRequest{Group: "live", ClientID: "c1", ClientHost: "/127.0.0.1", SessionTimeout: time.Minute, RebalanceTimeout: time.Minute,
		ProtocolType: "consumer", Protocols: []broker.GroupProtocol{{Name: "range"}}})
	if join.Err != nil {
		t.Fatal(join.Err)
	}
	if res := <-e.b.SyncGroup(broker.SyncGroupRequest{Group: "live", MemberID: join.MemberID, Generation: join.Generation,
		Assignments: map[string][]byte{join.MemberID: nil}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodPost, "/api/v1/groups/live/offsets", map[string]any{"offsets": []map[string]any{{"topic": "t", "partition": 0, "offset": 1}}})
	e.must(t, http.StatusOK, http.MethodGet, "/api/v1/groups/live", nil, &g)
	if g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "range" || len(g.Members) != 1 || g.Members[0].MemberID != join.MemberID || g.Members[0].ClientID != "c1" {
		t.Fatalf("live group: %+v", g)
	}
	e.wantErr(t, http.StatusConflict, service.CodeConflict, http.MethodDelete, "/api/v1/groups/live", nil)
	if _, err := e.b.LeaveGroup("live", []broker.LeavingMember{{MemberID: join.MemberID}}); err != nil {
		t.Fatal(err)
	}

	var del restDeleted
	e.must(t, http.StatusOK, http.MethodDelete, "/api/v1/groups/g1", nil, &del)
	if del.Deleted != "g1" || len(e.b.CommittedOffsets("g1")) != 0 {
		t.Fatalf("delete: %+v", del)
	}
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodGet, "/api/v1/groups/g1", nil)
	e.wantErr(t, http.StatusNotFound, service.CodeNotFound, http.MethodDelete, "/api/v1/groups/g1", nil)
}
