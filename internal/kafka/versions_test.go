package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// pinned sends req at exactly version v, with a client pinned to it, to
// the server's node.
func pinned(ctx context.Context, ts *testServer, req kmsg.Request, v int16) (kmsg.Response, error) {
	maxV := kversion.Stable()
	maxV.SetMaxKeyVersion(req.Key(), v)
	minV := new(kversion.Versions)
	minV.SetMaxKeyVersion(req.Key(), v)
	cl := ts.client(kgo.MaxVersions(maxV), kgo.MinVersions(minV))
	resp, err := cl.Broker(int(ts.srv.opts.NodeID)).Request(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.GetVersion() != v {
		return nil, fmt.Errorf("sent key %d at v%d, want v%d", req.Key(), resp.GetVersion(), v)
	}
	return resp, nil
}

// TestAdminKeysAtEveryAdvertisedBound sends each admin key at the lowest
// and the highest version the server advertises and checks the answer.
func TestAdminKeysAtEveryAdvertisedBound(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "v"); err != nil {
		t.Fatal(err)
	}
	produceValues(t, manualProducer(ts), "v", 0, time.Now(), "a", "b", "c", "d")

	type check func(t *testing.T, v int16, resp kmsg.Response)
	cases := []struct {
		key   int16
		build func(v int16) kmsg.Request
		check check
	}{
		{21, func(v int16) kmsg.Request {
			req := kmsg.NewPtrDeleteRecordsRequest()
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = "v"
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Offset = int64(v) // 0, then 2
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}, func(t *testing.T, v int16, resp kmsg.Response) {
			p := resp.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.LowWatermark != int64(v) {
				t.Fatalf("%v, low watermark %d", kerr.ErrorForCode(p.ErrorCode), p.LowWatermark)
			}
		}},
		{22, func(int16) kmsg.Request { return kmsg.NewPtrInitProducerIDRequest() },
			func(t *testing.T, _ int16, resp kmsg.Response) {
				r := resp.(*kmsg.InitProducerIDResponse)
				if r.ErrorCode != 0 || r.ProducerID < 0 || r.ProducerEpoch != 0 {
					t.Fatalf("%v id %d epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerID, r.ProducerEpoch)
				}
			}},
		{23, func(int16) kmsg.Request {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "v"
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.LeaderEpoch = 0
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}, func(t *testing.T, v int16, resp kmsg.Response) {
			p := resp.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
			wantEpoch := int32(0)
			if v == 0 {
				wantEpoch = -1 // not in a v0 answer
			}
			if p.ErrorCode != 0 || p.EndOffset != 4 || p.LeaderEpoch != wantEpoch {
				t.Fatalf("%v, epoch %d end %d", kerr.ErrorForCode(p.ErrorCode), p.LeaderEpoch, p.EndOffset)
			}
		}},
		{32, func(int16) kmsg.Request {
			req := kmsg.NewPtrDescribeConfigsRequest()
			res := kmsg.NewDescribeConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "v"
			req.Resources = append(req.Resources, res)
			req.IncludeSynonyms, req.IncludeDocumentation = true, true
			return req
		}, func(t *testing.T, v int16, resp kmsg.Response) {
			r := resp.(*kmsg.DescribeConfigsResponse).Resources[0]
			if r.ErrorCode != 0 || len(r.Configs) == 0 {
				t.Fatalf("%v, %d configs", kerr.ErrorForCode(r.ErrorCode), len(r.Configs))
			}
			for _, c := range r.Configs {
				if c.Name != "retention.ms" {
					continue
				}
				switch {
				case c.Value == nil || *c.Value != "604800000":
					t.Fatalf("retention.ms = %v", c.Value)
				case v == 0 && !c.IsDefault:
					t.Fatal("v0: retention.ms is not marked default")
				case v >= 1 && (c.Source != kmsg.ConfigSourceDefaultConfig || len(c.ConfigSynonyms) != 1):
					t.Fatalf("source %v synonyms %v", c.Source, c.ConfigSynonyms)
				case v >= 3 && (c.ConfigType != kmsg.ConfigTypeLong || c.Documentation == nil):
					t.Fatalf("type %v documentation %v", c.ConfigType, c.Documentation)
				}
				return
			}
			t.Fatal("no retention.ms")
		}},
		{33, func(v int16) kmsg.Request {
			req := kmsg.NewPtrAlterConfigsRequest()
			res := kmsg.NewAlterConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "v"
			c := kmsg.NewAlterConfigsRequestResourceConfig()
			c.Name, c.Value = "retention.bytes", strp(fmt.Sprint(1000+int(v)))
			res.Configs = append(res.Configs, c)
			req.Resources = append(req.Resources, res)
			return req
		}, func(t *testing.T, v int16, resp kmsg.Response) {
			r := resp.(*kmsg.AlterConfigsResponse).Resources[0]
			if r.ErrorCode != 0 {
				t.Fatalf("%v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
			}
			if got := explicitConfig(ts, "v", "retention.bytes"); got != fmt.Sprint(1000+int(v)) {
				t.Fatalf("retention.bytes = %q", got)
			}
		}},
		{37, func(v int16) kmsg.Request {
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = "v", 2+int32(v) // 2, then 5
			req.Topics = append(req.Topics, rt)
			return req
		}, func(t *testing.T, v int16, resp kmsg.Response) {
			r := resp.(*kmsg.CreatePartitionsResponse).Topics[0]
			if r.ErrorCode != 0 {
				t.Fatalf("%v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
			}
			if info, _ := ts.b.Topic("v"); info.Partitions != 2+int32(v) {
				t.Fatalf("%d partitions", info.Partitions)
			}
		}},
		{44, func(v int16) kmsg.Request {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			res := kmsg.NewIncrementalAlterConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "v"
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Op, c.Name, c.Value = kmsg.IncrementalAlterConfigOpSet, "segment.ms", strp(fmt.Sprint(3_600_000+int(v)))
			res.Configs = append(res.Configs, c)
			req.Resources = append(req.Resources, res)
			return req
		}, func(t *testing.T, v int16, resp kmsg.Response) {
			r := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
			if r.ErrorCode != 0 {
				t.Fatalf("%v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
			}
			if got := explicitConfig(ts, "v", "segment.ms"); got != fmt.Sprint(3_600_000+int(v)) {
				t.Fatalf("segment.ms = %q", got)
			}
		}},
		{60, func(int16) kmsg.Request { return kmsg.NewPtrDescribeClusterRequest() },
			func(t *testing.T, _ int16, resp kmsg.Response) {
				r := resp.(*kmsg.DescribeClusterResponse)
				if r.ErrorCode != 0 || r.ClusterID != ts.b.ClusterID() || len(r.Brokers) != 1 || r.ControllerID != 0 {
					t.Fatalf("%+v", r)
				}
			}},
	}
	for _, c := range cases {
		h, ok := ts.srv.handlers[c.key]
		if !ok {
			t.Fatalf("key %d is not served", c.key)
		}
		for _, v := range []int16{h.min, h.max} {
			t.Run(fmt.Sprintf("key%d/v%d", c.key, v), func(t *testing.T) {
				resp, err := pinned(ctx, ts, c.build(v), v)
				if err != nil {
					t.Fatal(err)
				}
				c.check(t, v, resp)
			})
		}
	}
}

// explicitConfig is a topic's explicit value of a config, or "".
func explicitConfig(ts *testServer, topic, name string) string {
	info, _ := ts.b.Topic(topic)
	for _, c := range info.Configs {
		if c.Name == name && !c.IsDefault {
			return c.Value
		}
	}
	return ""
}
