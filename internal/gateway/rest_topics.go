package gateway

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// Limits of a fetch.
const (
	restDefaultFetchBytes = 1 << 20
	restMaxFetchBytes     = 64 << 20
	restMaxWait           = 30 * time.Second
)

// restTopicSummary is one topic of GET /api/v1/topics.
type restTopicSummary struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Partitions int32  `json:"partitions"`
}

// restTopic describes a topic: its partitions' offsets and its configs.
type restTopic struct {
	Name       string               `json:"name"`
	ID         string               `json:"id"`
	Partitions []restPartitionState `json:"partitions"`
	Configs    []restConfig         `json:"configs"`
}

type restPartitionState struct {
	Partition      int32 `json:"partition"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
}

type restConfig struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	IsDefault bool   `json:"is_default"`
}

func restConfigs(entries []broker.ConfigEntry) []restConfig {
	out := make([]restConfig, len(entries))
	for i, e := range entries {
		out[i] = restConfig{Name: e.Name, Value: e.Value, IsDefault: e.IsDefault}
	}
	return out
}

func (a *restAPI) listTopics(w http.ResponseWriter, r *http.Request) error {
	topics := a.b.Topics()
	out := make([]restTopicSummary, len(topics))
	for i, t := range topics {
		out[i] = restTopicSummary{Name: t.Name, ID: t.ID.String(), Partitions: t.Partitions}
	}
	return a.reply(w, http.StatusOK, struct {
		Topics []restTopicSummary `json:"topics"`
	}{out})
}

// topicInfo describes a topic with its partitions' offsets.
func (a *restAPI) topicInfo(name string) (restTopic, error) {
	info, ok := a.b.Topic(name)
	if !ok {
		return restTopic{}, service.Errorf(service.CodeNotFound, "no topic '%s'", name)
	}
	t := restTopic{Name: info.Name, ID: info.ID.String(), Partitions: make([]restPartitionState, 0, info.Partitions), Configs: restConfigs(info.Configs)}
	for p := range info.Partitions {
		start, hw, err := a.svc.Offsets(name, p)
		if err != nil {
			return restTopic{}, err
		}
		t.Partitions = append(t.Partitions, restPartitionState{Partition: p, LogStartOffset: start, HighWatermark: hw})
	}
	return t, nil
}

func (a *restAPI) describeTopic(w http.ResponseWriter, r *http.Request) error {
	t, err := a.topicInfo(r.PathValue("topic"))
	if err != nil {
		return err
	}
	return a.reply(w, http.StatusOK, t)
}

func (a *restAPI) createTopic(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name       string            `json:"name"`
		Partitions *int32            `json:"partitions"`
		Configs    map[string]string `json:"configs"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if err := a.access.Topic(requestUser(r), auth.Configure, req.Name); err != nil {
		return err
	}
	partitions := int32(1)
	if req.Partitions != nil {
		partitions = *req.Partitions
	}
	if _, err := a.b.CreateTopic(r.Context(), req.Name, partitions, req.Configs); err != nil {
		return fmt.Errorf("creating topic '%s': %w", req.Name, err)
	}
	a.logger.Info("topic created over REST", "topic", req.Name, "partitions", partitions)
	t, err := a.topicInfo(req.Name)
	if err != nil {
		return err
	}
	return a.reply(w, http.StatusCreated, t)
}

func (a *restAPI) deleteTopic(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("topic")
	if err := a.b.DeleteTopic(r.Context(), name); err != nil {
		return fmt.Errorf("deleting topic '%s': %w", name, err)
	}
	a.logger.Info("topic deleted over REST", "topic", name)
	return a.reply(w, http.StatusOK, restDeleted{Deleted: name})
}

// restDeleted is the body of a successful DELETE.
type restDeleted struct {
	Deleted string `json:"deleted"`
	// Messages is, for a queue, how many ready messages went with it.
	Messages *int `json:"messages,omitempty"`
}

func (a *restAPI) topicConfigs(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("topic")
	info, ok := a.b.Topic(name)
	if !ok {
		return service.Errorf(service.CodeNotFound, "no topic '%s'", name)
	}
	return a.replyConfigs(w, info)
}

func (a *restAPI) replyConfigs(w http.ResponseWriter, info broker.TopicInfo) error {
	return a.reply(w, http.StatusOK, struct {
		Configs []restConfig `json:"configs"`
	}{restConfigs(info.Configs)})
}

// replaceTopicConfigs sets a topic's explicit configs to exactly those
// given (Kafka's AlterConfigs); the others return to their defaults.
func (a *restAPI) replaceTopicConfigs(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Configs map[string]string `json:"configs"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	name := r.PathValue("topic")
	if req.Configs == nil {
		req.Configs = map[string]string{}
	}
	if err := a.b.SetTopicConfig(r.Context(), name, req.Configs); err != nil {
		return fmt.Errorf("setting the configs of topic '%s': %w", name, err)
	}
	return a.topicConfigs(w, r)
}

// alterTopicConfigs sets and removes single configs, leaving the others
// (Kafka's IncrementalAlterConfigs).
func (a *restAPI) alterTopicConfigs(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Set    map[string]string `json:"set"`
		Delete []string          `json:"delete"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	for _, k := range req.Delete {
		if _, ok := req.Set[k]; ok {
			return invalid("config %q is both set and deleted", k)
		}
	}
	name := r.PathValue("topic")
	err := a.b.UpdateTopicConfig(r.Context(), name, false, func(cur map[string]string) (map[string]string, error) {
		next := make(map[string]string, len(cur)+len(req.Set))
		for k, v := range cur {
			next[k] = v
		}
		for _, k := range req.Delete {
			delete(next, k)
		}
		for k, v := range req.Set {
			next[k] = v
		}
		return next, nil
	})
	if err != nil {
		return fmt.Errorf("altering the configs of topic '%s': %w", name, err)
	}
	return a.topicConfigs(w, r)
}

// createPartitions grows a topic to a new partition count.
func (a *restAPI) createPartitions(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Count *int32 `json:"count"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Count == nil {
		return invalid("missing count: the topic's new number of partitions")
	}
	name := r.PathValue("topic")
	if err := a.b.CreatePartitions(r.Context(), name, *req.Count); err != nil {
		return fmt.Errorf("growing topic '%s' to %d partitions: %w", name, *req.Count, err)
	}
	t, err := a.topicInfo(name)
	if err != nil {
		return err
	}
	return a.reply(w, http.StatusOK, t)
}

// restHeaderIn is a record header in a request.
type restHeaderIn struct {
	Key      *string `json:"key"`
	Value    *string `json:"value"`
	ValueB64 *string `json:"value_b64"`
}

// restRecordIn is a record to produce.
type restRecordIn struct {
	Key       *string        `json:"key"`
	KeyB64    *string        `json:"key_b64"`
	Value     *string        `json:"value"`
	ValueB64  *string        `json:"value_b64"`
	Headers   []restHeaderIn `json:"headers"`
	Partition *int32         `json:"partition"`
	Timestamp *int64         `json:"timestamp"`
}

// bytesIn reads a byte field given as text or base64 (not both); present
// is false when neither is given.
func bytesIn(field string, text, b64 *string) (v []byte, present bool, err error) {
	switch {
	case text != nil && b64 != nil:
		return nil, false, invalid("give %s or %s_b64, not both", field, field)
	case text != nil:
		return []byte(*text), true, nil
	case b64 != nil:
		v, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, false, invalid("%s_b64 is not base64: %v", field, err)
		}
		return v, true, nil
	}
	return nil, false, nil
}

func (rec *restRecordIn) toService(i int) (service.ProduceRecord, error) {
	out := service.ProduceRecord{Partition: -1}
	if rec.Partition != nil {
		if *rec.Partition < -1 {
			return out, invalid("record %d: partition %d: give -1 or a partition index", i, *rec.Partition)
		}
		out.Partition = *rec.Partition
	}
	if rec.Timestamp != nil {
		if *rec.Timestamp < 0 {
			return out, invalid("record %d: timestamp %d is negative", i, *rec.Timestamp)
		}
		out.Timestamp = *rec.Timestamp
	}
	var err error
	if out.Key, _, err = bytesIn("key", rec.Key, rec.KeyB64); err != nil {
		return out, invalid("record %d: %v", i, err)
	}
	// A record without a value has a null value (a tombstone).
	if out.Value, _, err = bytesIn("value", rec.Value, rec.ValueB64); err != nil {
		return out, invalid("record %d: %v", i, err)
	}
	for j, h := range rec.Headers {
		if h.Key == nil {
			return out, invalid("record %d: header %d has no key", i, j)
		}
		v, _, err := bytesIn("value", h.Value, h.ValueB64)
		if err != nil {
			return out, invalid("record %d: header %q: %v", i, *h.Key, err)
		}
		out.Headers = append(out.Headers, broker.Header{Key: *h.Key, Value: v})
	}
	return out, nil
}

// restOffset is where a produced record went.
type restOffset struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// produce appends records to a topic and answers once they are durable.
func (a *restAPI) produce(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Records []restRecordIn `json:"records"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Records) == 0 {
		return invalid("no records: give at least one in records")
	}
	recs := make([]service.ProduceRecord, len(req.Records))
	for i := range req.Records {
		rec, err := req.Records[i].toService(i)
		if err != nil {
			return err
		}
		recs[i] = rec
	}
	produced, err := a.svc.Produce(r.Context(), r.PathValue("topic"), recs)
	if err != nil {
		return err
	}
	out := make([]restOffset, len(produced))
	for i, p := range produced {
		out[i] = restOffset{Partition: p.Partition, Offset: p.Offset}
	}
	return a.reply(w, http.StatusOK, struct {
		Offsets []restOffset `json:"offsets"`
	}{out})
}

// restHeaderOut is a record header in a response.
type restHeaderOut struct {
	Key      string  `json:"key"`
	Value    *string `json:"value,omitempty"`
	ValueB64 *string `json:"value_b64,omitempty"`
}

// restRecord is a fetched record, shaped as the WebSocket protocol's
// record frames (docs/websocket.md) without their type and sub.
type restRecord struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Timestamp int64           `json:"timestamp"`
	Key       *string         `json:"key,omitempty"`
	KeyB64    *string         `json:"key_b64,omitempty"`
	Value     *string         `json:"value,omitempty"`
	ValueB64  *string         `json:"value_b64,omitempty"`
	Null      bool            `json:"null_value,omitempty"`
	Headers   []restHeaderOut `json:"headers,omitempty"`
	// Exchange and Properties are those of a record written from an AMQP
	// message (service.FetchedRecord).
	Exchange   string              `json:"exchange,omitempty"`
	Properties *service.Properties `json:"properties,omitempty"`
}

// bytesOut gives bytes as text when they are valid UTF-8 and as base64
// otherwise; neither for nil.
func bytesOut(b []byte) (text, b64 *string) {
	if b == nil {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

func restRecordOf(f service.FetchedRecord) restRecord {
	out := restRecord{Topic: f.Topic, Partition: f.Partition, Offset: f.Offset, Timestamp: f.Timestamp, Null: f.Value == nil,
		Exchange: f.Exchange, Properties: f.Properties}
	out.Key, out.KeyB64 = bytesOut(f.Key)
	out.Value, out.ValueB64 = bytesOut(f.Value)
	for _, h := range f.Headers {
		ho := restHeaderOut{Key: h.Key}
		ho.Value, ho.ValueB64 = bytesOut(h.Value)
		out.Headers = append(out.Headers, ho)
	}
	return out
}

// restFetched is the body of a fetch.
type restFetched struct {
	Topic          string       `json:"topic"`
	Partition      int32        `json:"partition"`
	Records        []restRecord `json:"records"`
	NextOffset     int64        `json:"next_offset"`
	HighWatermark  int64        `json:"high_watermark"`
	LogStartOffset int64        `json:"log_start_offset"`
}

// fetch reads records of a partition from an offset. With wait_ms, a fetch
// that finds nothing new waits up to that long for a record to arrive.
func (a *restAPI) fetch(w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	p64, err := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	if err != nil || p64 < 0 {
		return invalid("partition %q is not a partition index", r.PathValue("partition"))
	}
	partition := int32(p64)
	maxBytes, err := queryInt(r, "max_bytes", restDefaultFetchBytes, 1, restMaxFetchBytes)
	if err != nil {
		return err
	}
	waitMS, err := queryInt(r, "wait_ms", 0, 0, restMaxWait.Milliseconds())
	if err != nil {
		return err
	}
	start, hw, err := a.svc.Offsets(topic, partition)
	if err != nil {
		return err
	}
	var offset int64
	switch s := r.URL.Query().Get("offset"); s {
	case "", "earliest":
		offset = start
	case "latest":
		offset = hw
	default:
		offset, err = strconv.ParseInt(s, 10, 64)
		if err != nil {
			return invalid("query parameter offset=%q: give an offset, earliest or latest", s)
		}
		if offset < start || offset > hw {
			return service.Errorf(service.CodeOutOfRange, "offset %d is outside %s-%d, which holds offsets %d to %d (the high watermark)", offset, topic, partition, start, hw)
		}
	}

	ctx := r.Context()
	if waitMS > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(waitMS)*time.Millisecond)
		defer cancel()
	}
	next := offset
	var recs []service.FetchedRecord
	for {
		recs, next, err = a.svc.Fetch(topic, partition, next, int(maxBytes))
		if err != nil || len(recs) > 0 || waitMS == 0 {
			break
		}
		// Nothing (or only control batches) yet: wait for the high
		// watermark to pass next, or for the time to run out.
		if werr := a.svc.Wait(ctx, topic, partition, next); werr != nil {
			if ctx.Err() != nil && r.Context().Err() == nil {
				break // wait_ms ran out: an empty answer
			}
			err = werr
			break
		}
	}
	if err != nil {
		return err
	}
	start, hw, err = a.svc.Offsets(topic, partition)
	if err != nil {
		return err
	}
	out := restFetched{Topic: topic, Partition: partition, Records: make([]restRecord, len(recs)), NextOffset: next, HighWatermark: hw, LogStartOffset: start}
	for i, f := range recs {
		out.Records[i] = restRecordOf(f)
	}
	return a.reply(w, http.StatusOK, out)
}

// restGroupSummary is one group of GET /api/v1/groups.
type restGroupSummary struct {
	Group        string `json:"group"`
	ProtocolType string `json:"protocol_type"`
	State        string `json:"state"`
}

func (a *restAPI) listGroups(w http.ResponseWriter, r *http.Request) error {
	groups := a.b.ListGroups()
	out := make([]restGroupSummary, len(groups))
	for i, g := range groups {
		out[i] = restGroupSummary{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State}
	}
	return a.reply(w, http.StatusOK, struct {
		Groups []restGroupSummary `json:"groups"`
	}{out})
}

type restMember struct {
	MemberID   string `json:"member_id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	ClientHost string `json:"client_host"`
}

// restGroupOffset is a group's committed offset on one partition, with the
// partition's high watermark and the lag when the partition still exists.
type restGroupOffset struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	Offset        int64  `json:"offset"`
	Metadata      string `json:"metadata"`
	CommitTime    int64  `json:"commit_time"`
	HighWatermark *int64 `json:"high_watermark,omitempty"`
	Lag           *int64 `json:"lag,omitempty"`
}

type restGroup struct {
	Group        string            `json:"group"`
	State        string            `json:"state"`
	ProtocolType string            `json:"protocol_type"`
	Protocol     string            `json:"protocol"`
	Members      []restMember      `json:"members"`
	Offsets      []restGroupOffset `json:"offsets"`
}

// committed lists a group's committed offsets, by topic and partition,
// with each partition's high watermark and the group's lag on it.
func (a *restAPI) committed(group string) []restGroupOffset {
	offs := a.b.CommittedOffsets(group)
	out := make([]restGroupOffset, 0, len(offs))
	for tp, co := range offs {
		o := restGroupOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: co.Offset, Metadata: co.Metadata, CommitTime: co.CommitTime.UnixMilli()}
		if _, hw, err := a.svc.Offsets(tp.Topic, tp.Partition); err == nil {
			o.HighWatermark = &hw
			if co.Offset >= 0 {
				lag := max(0, hw-co.Offset)
				o.Lag = &lag
			}
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(x, y restGroupOffset) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return out
}

func (a *restAPI) describeGroup(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("group")
	d := a.b.DescribeGroup(name)
	offsets := a.committed(name)
	if d.State == "Dead" && len(offsets) == 0 {
		return service.Errorf(service.CodeNotFound, "no group '%s'", name)
	}
	g := restGroup{Group: name, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol, Members: make([]restMember, len(d.Members)), Offsets: offsets}
	for i, m := range d.Members {
		g.Members[i] = restMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost}
	}
	return a.reply(w, http.StatusOK, g)
}

// deleteGroup deletes a group without members, with its offsets.
func (a *restAPI) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("group")
	errs, persisted := a.b.DeleteGroups([]string{name})
	if errs[0] != nil {
		return fmt.Errorf("deleting group '%s': %w", name, errs[0])
	}
	if err := persisted.Wait(r.Context()); err != nil {
		return fmt.Errorf("deleting group '%s': %w", name, err)
	}
	return a.reply(w, http.StatusOK, restDeleted{Deleted: name})
}

func (a *restAPI) groupOffsets(w http.ResponseWriter, r *http.Request) error {
	return a.reply(w, http.StatusOK, struct {
		Group   string            `json:"group"`
		Offsets []restGroupOffset `json:"offsets"`
	}{r.PathValue("group"), a.committed(r.PathValue("group"))})
}

// commitOffsets commits offsets for a group as a "simple" consumer
// (generation -1, no member id), which Kafka allows only while the group
// has no members; it answers once the commit is durable, with the group's
// committed offsets.
func (a *restAPI) commitOffsets(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Offsets []struct {
			Topic     string `json:"topic"`
			Partition *int32 `json:"partition"`
			Offset    *int64 `json:"offset"`
			Metadata  string `json:"metadata"`
		} `json:"offsets"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	for _, o := range req.Offsets {
		if err := a.access.Topic(requestUser(r), auth.Read, o.Topic); err != nil {
			return err
		}
	}
	if len(req.Offsets) == 0 {
		return invalid("no offsets: give at least one in offsets")
	}
	group := r.PathValue("group")
	breq := broker.OffsetCommitRequest{Group: group, Generation: -1}
	for i, o := range req.Offsets {
		if o.Topic == "" || o.Partition == nil || o.Offset == nil {
			return invalid("offset %d: give topic, partition and offset", i)
		}
		if *o.Offset < 0 {
			return invalid("offset %d: offset %d is negative", i, *o.Offset)
		}
		// Check every partition first, so that a commit naming one that
		// does not exist commits nothing.
		if _, _, err := a.svc.Offsets(o.Topic, *o.Partition); err != nil {
			return err
		}
		breq.Offsets = append(breq.Offsets, broker.OffsetCommit{Topic: o.Topic, Partition: *o.Partition, Offset: *o.Offset, LeaderEpoch: -1, Metadata: o.Metadata})
	}
	errs, persisted := a.b.CommitOffsets(breq)
	if err := persisted.Wait(r.Context()); err != nil {
		return fmt.Errorf("committing offsets for group '%s': %w", group, err)
	}
	if err := firstError(errs); err != nil {
		return fmt.Errorf("committing offsets for group '%s': %w", group, err)
	}
	return a.groupOffsets(w, r)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
