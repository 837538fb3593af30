package kafka

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/storage"
)

// startServerWithDefaults is startServer with the broker's log defaults
// changed, as the broker's startup flags change them.
func startServerWithDefaults(t testing.TB, defaults storage.LogConfig, mutate func(*Options)) *testServer {
	t.Helper()
	return startServerWith(t, t.TempDir(), defaults, mutate)
}

func strp(s string) *string { return &s }

// produceValues produces one record per value to topic/partition and waits
// for all of them.
func produceValues(t *testing.T, cl *kgo.Client, topic string, partition int32, ts time.Time, values ...string) {
	t.Helper()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v), Timestamp: ts})
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeAll reads partition from its start until it has want records.
func consumeAll(t *testing.T, ts *testServer, topic string, partition int32, want int) []*kgo.Record {
	t.Helper()
	ctx := testCtx(t)
	c, err := kgo.NewClient(kgo.SeedBrokers(ts.addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	// Closed at once, so that its next long poll does not hold up the
	// server's shutdown.
	defer c.Close()
	var got []*kgo.Record
	for len(got) < want {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume %s-%d: %v", topic, partition, err)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

func manualProducer(ts *testServer) *kgo.Client {
	return ts.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
}

func startOffset(t *testing.T, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	offs, err := adm.ListStartOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok || o.Err != nil {
		t.Fatalf("start offset of %s-%d: %v", topic, partition, o.Err)
	}
	return o.Offset
}

func TestCreatePartitions(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "grow"); err != nil {
		t.Fatal(err)
	}

	// Validate-only changes nothing.
	rs, err := adm.ValidateCreatePartitions(ctx, 4, "grow")
	if err != nil || rs["grow"].Err != nil {
		t.Fatalf("validate: %v %v", err, rs["grow"].Err)
	}
	if info, _ := ts.b.Topic("grow"); info.Partitions != 1 {
		t.Fatalf("validate-only grew the topic to %d partitions", info.Partitions)
	}

	rs, err = adm.CreatePartitions(ctx, 2, "grow")
	if err != nil || rs["grow"].Err != nil {
		t.Fatalf("create partitions: %v %v", err, rs["grow"].Err)
	}
	if info, _ := ts.b.Topic("grow"); info.Partitions != 3 {
		t.Fatalf("topic has %d partitions, want 3", info.Partitions)
	}

	// A new client sees the new partitions and can use them.
	p := manualProducer(ts)
	for part := range int32(3) {
		produceValues(t, p, "grow", part, time.Now(), fmt.Sprintf("p%d-a", part), fmt.Sprintf("p%d-b", part))
	}
	for part := range int32(3) {
		got := consumeAll(t, ts, "grow", part, 2)
		if string(got[0].Value) != fmt.Sprintf("p%d-a", part) || got[0].Offset != 0 || string(got[1].Value) != fmt.Sprintf("p%d-b", part) {
			t.Fatalf("partition %d: %q@%d %q", part, got[0].Value, got[0].Offset, got[1].Value)
		}
	}

	// Errors.
	for _, tc := range []struct {
		name  string
		set   int
		topic string
		want  *kerr.Error
	}{
		{"same count", 3, "grow", kerr.InvalidPartitions},
		{"fewer", 2, "grow", kerr.InvalidPartitions},
		{"unknown topic", 5, "nope", kerr.UnknownTopicOrPartition},
	} {
		rs, err := adm.UpdatePartitions(ctx, tc.set, tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		if r := rs[tc.topic]; !errors.Is(r.Err, tc.want) || r.ErrMessage == "" {
			t.Errorf("%s: %v (%q), want %v with a message", tc.name, r.Err, r.ErrMessage, tc.want)
		}
	}
}

func TestCreatePartitionsManualAssignment(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "assigned"); err != nil {
		t.Fatal(err)
	}
	cl := ts.client()
	send := func(count int32, assignment [][]int32, dup bool) kmsg.CreatePartitionsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "assigned", count
		for _, replicas := range assignment {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = replicas
			rt.Assignment = append(rt.Assignment, a)
		}
		req.Topics = append(req.Topics, rt)
		if dup {
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0]
	}
	if r := send(3, [][]int32{{0}}, false); r.ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("too few assignments: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := send(2, [][]int32{{1}}, false); r.ErrorCode != kerr.InvalidReplicaAssignment.Code || r.ErrorMessage == nil {
		t.Errorf("another broker: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := send(2, [][]int32{{0, 0}}, false); r.ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("two replicas: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := send(2, nil, true); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("topic twice: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if info, _ := ts.b.Topic("assigned"); info.Partitions != 1 {
		t.Fatalf("failed requests grew the topic to %d", info.Partitions)
	}
	if r := send(3, [][]int32{{0}, {0}}, false); r.ErrorCode != 0 {
		t.Fatalf("valid assignment: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	if info, _ := ts.b.Topic("assigned"); info.Partitions != 3 {
		t.Fatalf("topic has %d partitions, want 3", info.Partitions)
	}
}

func TestDeleteRecords(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "trim"); err != nil {
		t.Fatal(err)
	}
	p := manualProducer(ts)
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprint(i))
	}
	produceValues(t, p, "trim", 0, time.Now(), values...)

	del := func(partition int32, at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "trim", Partition: partition, At: at})
		rs, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := rs.Lookup("trim", partition)
		if !ok {
			t.Fatalf("no answer for partition %d", partition)
		}
		return r
	}
	if r := del(0, 4); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete to 4: low watermark %d, %v", r.LowWatermark, r.Err)
	}
	if got := startOffset(t, adm, "trim", 0); got != 4 {
		t.Fatalf("earliest offset %d after deleting to 4", got)
	}
	got := consumeAll(t, ts, "trim", 0, 6)
	if got[0].Offset != 4 || string(got[0].Value) != "4" {
		t.Fatalf("consuming from the start began at %d (%q), want 4", got[0].Offset, got[0].Value)
	}

	// Below the start: nothing changes.
	if r := del(0, 2); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete to 2: low watermark %d, %v", r.LowWatermark, r.Err)
	}
	// Past the high watermark.
	if r := del(0, 11); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past the high watermark: %v", r.Err)
	}
	// -1: up to the high watermark.
	if r := del(0, -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("delete to the high watermark: low watermark %d, %v", r.LowWatermark, r.Err)
	}
	if got := startOffset(t, adm, "trim", 0); got != 10 {
		t.Fatalf("earliest offset %d after deleting everything", got)
	}
	// An empty partition, deleted to its (zero) high watermark.
	if r := del(1, -1); r.Err != nil || r.LowWatermark != 0 {
		t.Fatalf("empty partition: %d %v", r.LowWatermark, r.Err)
	}
	// Later records are still readable.
	produceValues(t, p, "trim", 0, time.Now(), "after")
	if got := consumeAll(t, ts, "trim", 0, 1); got[0].Offset != 10 || string(got[0].Value) != "after" {
		t.Fatalf("after deleting: %d %q", got[0].Offset, got[0].Value)
	}

	// Unknown partition, at the kmsg level (kadm refuses it up front).
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "trim"
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, -7
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, ts.client())
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Topics[0].Partitions[0]; r.ErrorCode != kerr.OffsetOutOfRange.Code || r.LowWatermark != -1 {
		t.Fatalf("negative offset: %v low %d", kerr.ErrorForCode(r.ErrorCode), r.LowWatermark)
	}
}

// configOf finds a config in a kadm answer.
func configOf(t *testing.T, rc kadm.ResourceConfig, name string) kadm.Config {
	t.Helper()
	for _, c := range rc.Configs {
		if c.Key == name {
			return c
		}
	}
	t.Fatalf("%s: no config %q", rc.Name, name)
	return kadm.Config{}
}

func describeTopic(t *testing.T, adm *kadm.Client, topic string) kadm.ResourceConfig {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	return rc
}

func TestDescribeTopicConfigs(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": strp("60000")}, "described"); err != nil {
		t.Fatal(err)
	}
	rc := describeTopic(t, adm, "described")
	if len(rc.Configs) != len(broker.BuiltinTopicConfigs()) {
		t.Errorf("%d configs, want every topic config (%d)", len(rc.Configs), len(broker.BuiltinTopicConfigs()))
	}
	ret := configOf(t, rc, "retention.ms")
	if ret.MaybeValue() != "60000" || ret.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms = %q from %v", ret.MaybeValue(), ret.Source)
	}
	if len(ret.Synonyms) != 2 || ret.Synonyms[0].Key != "retention.ms" ||
		ret.Synonyms[1].Key != "log.retention.ms" || *ret.Synonyms[1].Value != "604800000" || ret.Synonyms[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("retention.ms synonyms %+v", ret.Synonyms)
	}
	seg := configOf(t, rc, "segment.bytes")
	if seg.MaybeValue() != "1073741824" || seg.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("segment.bytes = %q from %v", seg.MaybeValue(), seg.Source)
	}
	if cp := configOf(t, rc, "cleanup.policy"); cp.MaybeValue() != "delete" {
		t.Errorf("cleanup.policy = %q", cp.MaybeValue())
	}

	// A name filter, documentation and types (v3+), at the kmsg level.
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "described"
	res.ConfigNames = []string{"retention.ms", "cleanup.policy", "no.such.config"}
	req.Resources = append(req.Resources, res)
	req.IncludeDocumentation = true
	resp, err := req.RequestWith(ctx, ts.client())
	if err != nil {
		t.Fatal(err)
	}
	cs := resp.Resources[0].Configs
	if len(cs) != 2 {
		t.Fatalf("filtered to %d configs, want 2", len(cs))
	}
	for _, c := range cs {
		want := map[string]kmsg.ConfigType{"retention.ms": kmsg.ConfigTypeLong, "cleanup.policy": kmsg.ConfigTypeList}[c.Name]
		if c.ConfigType != want || c.Documentation == nil || *c.Documentation == "" || c.ReadOnly || c.ConfigSynonyms != nil {
			t.Errorf("%s: type %v, doc %v, read-only %v, synonyms %v", c.Name, c.ConfigType, c.Documentation, c.ReadOnly, c.ConfigSynonyms)
		}
	}

	// Unknown and invalid topics.
	rcs, err := adm.DescribeTopicConfigs(ctx, "missing")
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := rcs.On("missing", nil); !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %v", rc.Err)
	}
	rcs, err = adm.DescribeTopicConfigs(ctx, "bad/name")
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := rcs.On("bad/name", nil); !errors.Is(rc.Err, kerr.InvalidTopicException) {
		t.Errorf("invalid topic: %v", rc.Err)
	}
}

func TestDescribeConfigsStaticBrokerDefaults(t *testing.T) {
	defaults := storage.DefaultLogConfig()
	defaults.RetentionAge = time.Hour
	ts := startServerWithDefaults(t, defaults, func(o *Options) { o.DefaultPartitions = 3 })
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "inherits"); err != nil {
		t.Fatal(err)
	}
	ret := configOf(t, describeTopic(t, adm, "inherits"), "retention.ms")
	if ret.MaybeValue() != "3600000" || ret.Source != kmsg.ConfigSourceStaticBrokerConfig || len(ret.Synonyms) != 2 ||
		ret.Synonyms[0].Key != "log.retention.ms" || ret.Synonyms[0].Source != kmsg.ConfigSourceStaticBrokerConfig ||
		ret.Synonyms[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("retention.ms %q from %v, synonyms %+v", ret.MaybeValue(), ret.Source, ret.Synonyms)
	}

	rcs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("0", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe broker 0: %v %v", err, rc.Err)
	}
	for name, want := range map[string]string{
		"log.retention.ms": "3600000", "log.segment.bytes": "1073741824", "num.partitions": "3",
		"auto.create.topics.enable": "true", "message.max.bytes": "1048588", "log.cleanup.policy": "delete",
		"node.id": "0", "log.roll.ms": "604800000",
	} {
		if c := configOf(t, rc, name); c.MaybeValue() != want {
			t.Errorf("broker %s = %q, want %q", name, c.MaybeValue(), want)
		}
	}
	if c := configOf(t, rc, "num.partitions"); c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("num.partitions from %v", c.Source)
	}
	if c := configOf(t, rc, "log.segment.bytes"); c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("log.segment.bytes from %v", c.Source)
	}

	// The cluster default (empty name), read-only entries, and a wrong id.
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{"", "7", "x"} {
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, name
		req.Resources = append(req.Resources, res)
	}
	kresp, err := ts.client().Broker(0).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != 3 {
		t.Fatalf("%d resources", len(resp.Resources))
	}
	def := resp.Resources[0]
	if def.ErrorCode != 0 || len(def.Configs) == 0 {
		t.Fatalf("cluster default: %v, %d configs", kerr.ErrorForCode(def.ErrorCode), len(def.Configs))
	}
	for _, c := range def.Configs {
		if !c.ReadOnly {
			t.Errorf("broker config %s is not read-only", c.Name)
		}
	}
	for _, r := range resp.Resources[1:] {
		if r.ErrorCode != kerr.InvalidRequest.Code || r.ErrorMessage == nil {
			t.Errorf("broker %q: %v", r.ResourceName, kerr.ErrorForCode(r.ErrorCode))
		}
	}
}

func TestAlterTopicConfigs(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": strp("60000")}, "altered"); err != nil {
		t.Fatal(err)
	}
	explicit := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, c := range describeTopic(t, adm, "altered").Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				out[c.Key] = c.MaybeValue()
			}
		}
		return out
	}
	check := func(step string, want map[string]string) {
		t.Helper()
		got := explicit()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: explicit configs %v, want %v", step, got, want)
		}
	}
	alterOK := func(step string, rs kadm.AlterConfigsResponses, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("%s: %v (%s)", step, r.Err, r.ErrMessage)
			}
		}
	}
	alterFails := func(step string, rs kadm.AlterConfigsResponses, err error, want *kerr.Error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if len(rs) != 1 || !errors.Is(rs[0].Err, want) || rs[0].ErrMessage == "" {
			t.Fatalf("%s: %+v, want %v with a message", step, rs, want)
		}
	}

	// AlterConfigs replaces the whole set.
	rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: strp("1048576")}}, "altered")
	alterOK("replace", rs, err)
	check("replace", map[string]string{"segment.bytes": "1048576"})

	// Incremental SET and DELETE.
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("1000")},
		{Op: kadm.DeleteConfig, Name: "segment.bytes"},
		{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: strp("LogAppendTime")},
	}, "altered")
	alterOK("incremental", rs, err)
	check("incremental", map[string]string{"retention.ms": "1000", "message.timestamp.type": "LogAppendTime"})

	// APPEND of a value already in the list; SUBTRACT of one that is not.
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("delete")}}, "altered")
	alterOK("append", rs, err)
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: strp("compact")}}, "altered")
	alterOK("subtract", rs, err)
	check("list ops", map[string]string{"retention.ms": "1000", "message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete"})

	// Validate-only changes nothing, in both APIs.
	rs, err = adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("5")}}, "altered")
	alterOK("validate incremental", rs, err)
	rs, err = adm.ValidateAlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: strp("4096")}}, "altered")
	alterOK("validate replace", rs, err)
	check("validate-only", map[string]string{"retention.ms": "1000", "message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete"})

	// Invalid changes are INVALID_CONFIG and change nothing.
	for _, tc := range []struct {
		name string
		cfg  kadm.AlterConfig
	}{
		{"not a number", kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("abc")}},
		{"out of range", kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("1")}},
		{"unknown name", kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.config", Value: strp("1")}},
		{"append to a scalar", kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: strp("1")}},
		{"compaction", kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("compact")}},
		{"empty policy", kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: strp("delete")}},
	} {
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{tc.cfg}, "altered")
		alterFails(tc.name, rs, err, kerr.InvalidConfig)
	}
	rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "message.timestamp.type", Value: strp("Sometime")}}, "altered")
	alterFails("replace with a bad value", rs, err, kerr.InvalidConfig)
	check("after invalid changes", map[string]string{"retention.ms": "1000", "message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete"})

	// Unknown topics.
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("1")}}, "missing")
	alterFails("unknown topic, incremental", rs, err, kerr.UnknownTopicOrPartition)
	rs, err = adm.AlterTopicConfigsState(ctx, nil, "missing")
	alterFails("unknown topic, replace", rs, err, kerr.UnknownTopicOrPartition)

	// Broker settings are fixed at startup.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("1")}}, 0)
	alterFails("incremental broker", rs, err, kerr.InvalidRequest)
	if !strings.Contains(rs[0].ErrMessage, "starts") {
		t.Errorf("broker alter message %q does not say settings are set at startup", rs[0].ErrMessage)
	}
	rs, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: strp("3")}}, 0)
	alterFails("replace broker", rs, err, kerr.InvalidRequest)
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "log.retention.ms"}}, 0)
	alterOK("delete a broker config that was never set dynamically", rs, err)
}

func TestAlterConfigsRequestErrors(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "strict"); err != nil {
		t.Fatal(err)
	}
	cl := ts.client()
	// A resource twice, a key twice, an unknown operation, an unknown
	// resource type.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	add := func(typ kmsg.ConfigResourceType, name string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.Configs = typ, name, ops
		req.Resources = append(req.Resources, r)
	}
	op := func(o kmsg.IncrementalAlterConfigOp, name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name, c.Value = o, name, &value
		return c
	}
	add(kmsg.ConfigResourceTypeTopic, "strict", op(kmsg.IncrementalAlterConfigOpSet, "retention.ms", "1000"), op(kmsg.IncrementalAlterConfigOpSet, "retention.ms", "2000"))
	add(kmsg.ConfigResourceTypeTopic, "twice")
	add(kmsg.ConfigResourceTypeTopic, "twice")
	add(kmsg.ConfigResourceTypeTopic, "strict2", op(9, "retention.ms", "1"))
	add(kmsg.ConfigResourceTypeBrokerLogger, "0")
	// Sent to the broker as it is: the client's own routing would split a
	// request mixing broker and topic resources, and merge the answers in
	// another order.
	raw, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := raw.(*kmsg.IncrementalAlterConfigsResponse)
	if len(resp.Resources) != len(req.Resources) {
		t.Fatalf("%d resources answered, want %d", len(resp.Resources), len(req.Resources))
	}
	want := []*kerr.Error{kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest, kerr.UnknownTopicOrPartition, kerr.InvalidRequest}
	for i, r := range resp.Resources {
		if r.ErrorCode != want[i].Code {
			t.Errorf("resource %d (%s): %v, want %v", i, r.ResourceName, kerr.ErrorForCode(r.ErrorCode), want[i])
		}
	}
	if info, _ := ts.b.Topic("strict"); len(info.Configs) > 0 {
		for _, c := range info.Configs {
			if !c.IsDefault {
				t.Errorf("a refused request set %s=%s", c.Name, c.Value)
			}
		}
	}
}

func TestRetentionAfterAlteringConfigs(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "expiring"); err != nil {
		t.Fatal(err)
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("1024")},
		{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("60000")},
	}, "expiring")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs[0].Err)
	}
	// Records an hour old, each batch big enough to fill a segment, then
	// fresh ones that retention must keep.
	p := manualProducer(ts)
	old := time.Now().Add(-time.Hour)
	big := strings.Repeat("x", 700)
	for range 6 {
		produceValues(t, p, "expiring", 0, old, big)
	}
	produceValues(t, p, "expiring", 0, time.Now(), "fresh-1", "fresh-2")
	if got := startOffset(t, adm, "expiring", 0); got != 0 {
		t.Fatalf("start offset %d before retention ran", got)
	}
	ts.b.ApplyRetention()
	start := startOffset(t, adm, "expiring", 0)
	if start < 5 || start > 6 {
		t.Fatalf("start offset %d after retention, want the old segments (offsets 0-5) gone", start)
	}
	got := consumeAll(t, ts, "expiring", 0, int(8-start))
	if last := got[len(got)-1]; string(last.Value) != "fresh-2" || last.Offset != 7 {
		t.Fatalf("last record %q at %d", last.Value, last.Offset)
	}
}

func TestDescribeCluster(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.NodeID = 3 })
	ctx := testCtx(t)
	for _, v := range []int16{0, 1} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeClusterAuthorizedOperations = v == 1
		resp, err := pinned(ctx, ts, req, v)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.DescribeClusterResponse)
		host, port, _ := net.SplitHostPort(ts.addr)
		if r.ErrorCode != 0 || r.ClusterID != ts.b.ClusterID() || r.ControllerID != 3 || len(r.Brokers) != 1 ||
			r.Brokers[0].NodeID != 3 || r.Brokers[0].Host != host || fmt.Sprint(r.Brokers[0].Port) != port {
			t.Fatalf("v%d: %+v", v, r)
		}
		if (r.ClusterAuthorizedOperations == clusterOperations) != (v == 1) {
			t.Fatalf("v%d: authorized operations %d", v, r.ClusterAuthorizedOperations)
		}
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2
	resp, err := pinned(ctx, ts, req, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.(*kmsg.DescribeClusterResponse); r.ErrorCode != kerr.UnsupportedEndpointType.Code || r.ErrorMessage == nil {
		t.Fatalf("controller endpoints: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "epochs"); err != nil {
		t.Fatal(err)
	}
	produceValues(t, manualProducer(ts), "epochs", 0, time.Now(), "a", "b", "c")
	var req kadm.OffsetForLeaderEpochRequest
	req.Add("epochs", 0, 0)
	rs, err := adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["epochs"][0]; r.Err != nil || r.LeaderEpoch != 0 || r.EndOffset != 3 {
		t.Fatalf("epoch 0: %+v", r)
	}
	req = nil
	req.Add("epochs", 0, 5)
	rs, err = adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["epochs"][0]; r.Err != nil || r.LeaderEpoch != -1 || r.EndOffset != -1 {
		t.Fatalf("epoch 5: %+v", r)
	}

	// Current leader epoch fencing and unknown partitions, at the kmsg level.
	kreq := kmsg.NewPtrOffsetForLeaderEpochRequest()
	kreq.ReplicaID = -1
	kt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	kt.Topic = "epochs"
	for _, c := range []struct{ partition, current int32 }{{0, 1}, {0, -3}, {0, 0}, {9, -1}} {
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = c.partition, c.current, 0
		kt.Partitions = append(kt.Partitions, p)
	}
	kreq.Topics = append(kreq.Topics, kt)
	resp, err := ts.client().Broker(0).Request(ctx, kreq)
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions
	want := []int16{kerr.UnknownLeaderEpoch.Code, kerr.FencedLeaderEpoch.Code, 0, kerr.UnknownTopicOrPartition.Code}
	for i, p := range ps {
		if p.ErrorCode != want[i] {
			t.Errorf("partition entry %d: %v, want %v", i, kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(want[i]))
		}
	}
	if ps[2].EndOffset != 3 || ps[2].LeaderEpoch != 0 {
		t.Errorf("current epoch 0: %+v", ps[2])
	}
}
