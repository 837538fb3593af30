package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/wharfmq/wharf/internal/auth"
)

// authzServer requires SASL and knows:
//   - writer: configure and write on topics starting with "w-", no read;
//   - reader: read on everything, nothing else;
//   - nobody: no permissions on vhost "/";
//   - topics: read on topic (or group) "shared" only;
//   - guest: the administrator with every permission.
func authzServer(t *testing.T) *testServer {
	t.Helper()
	users := auth.NewDefaultStore()
	for name, p := range map[string]*auth.Permission{
		"writer": {Configure: "^w-", Write: "^w-"},
		"reader": {Read: ".*"},
		"nobody": nil,
		"topics": {Read: "^shared$"},
	} {
		if err := users.Put(name, name+"-pw", false); err != nil {
			t.Fatal(err)
		}
		if p != nil {
			if err := users.SetPermission(name, "/", *p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return startServer(t, func(o *Options) { o.Users, o.RequireSASL = users, true })
}

func (ts *testServer) as(user string, opts ...kgo.Opt) *kgo.Client {
	pass := user + "-pw"
	if user == "guest" {
		pass = "guest"
	}
	return ts.client(append([]kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()),
		kgo.RequestRetries(0), kgo.RecordRetries(0)}, opts...)...)
}

func TestAuthorizationProduceAndFetch(t *testing.T) {
	ts := authzServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	writer := ts.as("writer", kgo.AllowAutoTopicCreation())
	if err := writer.ProduceSync(ctx, &kgo.Record{Topic: "w-orders", Value: []byte("one")}).FirstErr(); err != nil {
		t.Fatalf("writer producing to w-orders (created on the way): %v", err)
	}
	if err := writer.ProduceSync(ctx, &kgo.Record{Topic: "secret", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("writer producing to secret: %v", err)
	}
	if _, ok := ts.b.Topic("secret"); ok {
		t.Error("a denied produce created a topic")
	}

	// The reader may read with a group but not write.
	reader := ts.as("reader", kgo.ConsumeTopics("w-orders"), kgo.ConsumerGroup("readers"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := ""
	for got == "" {
		fs := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("reader read nothing")
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("reader: %v", errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = string(r.Value) })
	}
	if got != "one" {
		t.Fatalf("reader read %q", got)
	}
	if err := reader.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("reader commit: %v", err)
	}
	if err := reader.ProduceSync(ctx, &kgo.Record{Topic: "w-orders", Value: []byte("forged")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("reader producing: %v", err)
	}

	// The writer may not fetch.
	wfetch := ts.as("writer", kgo.ConsumeTopics("w-orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := wfetch.PollFetches(ctx)
	var fetchErr error
	if errs := fs.Errors(); len(errs) > 0 {
		fetchErr = errs[0].Err
	}
	if !errors.Is(fetchErr, kerr.TopicAuthorizationFailed) {
		t.Errorf("writer fetching: %v", fetchErr)
	}

	// Stored data is what the allowed producer wrote, nothing more.
	p, err := ts.b.Partition("w-orders", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, hw, _ := p.Offsets(); hw != 1 {
		t.Errorf("w-orders holds %d records, want 1", hw)
	}
}

func TestAuthorizationGroupsAndAdmin(t *testing.T) {
	ts := authzServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := kadm.NewClient(ts.as("guest"))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "shared"); err != nil {
		t.Fatal(err)
	}

	// nobody sees no topics and may use no group.
	nobody := kadm.NewClient(ts.as("nobody"))
	md, err := nobody.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 0 {
		t.Errorf("nobody sees topics %v", md.Topics.Names())
	}
	md, err = nobody.Metadata(ctx, "shared")
	if err == nil {
		err = md.Topics["shared"].Err
	}
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("nobody's metadata for shared: %v", err)
	}
	cl := ts.as("topics", kgo.ConsumeTopics("shared"), kgo.ConsumerGroup("g"))
	fs := cl.PollFetches(ctx)
	var groupErr error
	if errs := fs.Errors(); len(errs) > 0 {
		groupErr = errs[0].Err
	}
	if !errors.Is(groupErr, kerr.GroupAuthorizationFailed) {
		t.Errorf("joining a group without read on it: %v", groupErr)
	}

	// The reader may not create, delete or reconfigure topics, nor read
	// broker configs; the administrator may.
	reader := kadm.NewClient(ts.as("reader"))
	if r, err := reader.CreateTopic(ctx, 1, 1, nil, "made-by-reader"); !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(r.Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("reader creating a topic: %v / %v", err, r.Err)
	}
	dr, err := reader.DeleteTopics(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dr["shared"].Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("reader deleting shared: %v", dr["shared"].Err)
	}
	if _, ok := ts.b.Topic("shared"); !ok {
		t.Fatal("a denied delete removed the topic")
	}
	if rc, err := reader.DescribeBrokerConfigs(ctx); err == nil {
		if len(rc) == 0 || !errors.Is(rc[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("reader describing broker configs: %+v", rc)
		}
	} else if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("reader describing broker configs: %v", err)
	}
	if rc, err := reader.DescribeTopicConfigs(ctx, "shared"); err != nil || rc[0].Err != nil {
		t.Errorf("reader describing topic configs: %v %v", err, rc)
	}
	ac, err := admin.DescribeBrokerConfigs(ctx)
	if err != nil || len(ac) == 0 || ac[0].Err != nil {
		t.Errorf("administrator describing broker configs: %v %+v", err, ac)
	}
	groups, err := nobody.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 0 {
		t.Errorf("nobody lists groups %v", groups.Groups())
	}
}
