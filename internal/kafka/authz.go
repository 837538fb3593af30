package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/auth"
)

// Authorization: a connection that logged in with SASL may touch a topic or
// a consumer group only as the user's permissions in the Kafka vhost
// (Options.Vhost, "/" by default) allow, RabbitMQ style:
//
//   - configure: create, delete or reconfigure a topic (CreateTopics,
//     DeleteTopics, DeleteRecords, CreatePartitions, AlterConfigs,
//     IncrementalAlterConfigs, auto-creation by Metadata or Produce), and
//     delete a group or its offsets (DeleteGroups, OffsetDelete);
//   - write: produce to a topic;
//   - read: fetch from a topic, list its offsets, read its leader epochs and
//     configs, commit or fetch a group's offsets for it, and use a group at
//     all (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//     DescribeGroups, ListGroups, OffsetCommit, OffsetFetch,
//     AddOffsetsToTxn, TxnOffsetCommit);
//   - a topic appears in Metadata when any of the three matches its name.
//
// Broker configs (DescribeConfigs, AlterConfigs) need the administrator
// tag. A denied topic is TOPIC_AUTHORIZATION_FAILED, a denied group
// GROUP_AUTHORIZATION_FAILED, broker configs CLUSTER_AUTHORIZATION_FAILED,
// each in the entry that names it, as Kafka answers; the rest of the
// request is served. A request whose every entry is denied is answered at
// once, without reaching its handler. A connection that has not logged in
// (possible only without RequireSASL) is not restricted.
//
// Each check runs before the handler: authorize removes the denied entries
// from the request and returns a patch that adds their errors to the
// response.

// accessCheck answers permission questions for one connection.
type accessCheck struct {
	users *auth.Store
	user  string
	vhost string
}

func (a accessCheck) may(x auth.Access, name string) bool {
	return a.users.Allowed(a.user, a.vhost, x, name)
}

// describe: any permission on the name.
func (a accessCheck) describe(name string) bool {
	return a.may(auth.Configure, name) || a.may(auth.Write, name) || a.may(auth.Read, name)
}

func (a accessCheck) admin() bool {
	u, ok := a.users.Lookup(a.user)
	return ok && u.HasTag(auth.TagAdministrator)
}

// access returns the connection's checker, or false when the connection is
// not restricted.
func (c *conn) access() (accessCheck, bool) {
	if !c.sasl.done || c.s.opts.Users == nil {
		return accessCheck{}, false
	}
	v := c.s.opts.Vhost
	if v == "" {
		v = auth.DefaultVhost
	}
	return accessCheck{users: c.s.opts.Users, user: c.sasl.user, vhost: v}, true
}

// authorize filters a decoded request. It returns deny, a complete answer
// when nothing in the request is allowed, or patch, to run on the
// handler's response; both nil when everything is allowed.
func (c *conn) authorize(r *request) (deny kmsg.Response, patch func(kmsg.Response)) {
	a, ok := c.access()
	if !ok {
		return nil, nil
	}
	switch req := r.kreq.(type) {
	case *kmsg.ProduceRequest:
		return c.authzProduce(a, req)
	case *kmsg.FetchRequest:
		return c.authzFetch(a, req)
	case *kmsg.ListOffsetsRequest:
		return authzListOffsets(a, req)
	case *kmsg.MetadataRequest:
		return c.authzMetadata(a, req)
	case *kmsg.OffsetCommitRequest:
		return authzOffsetCommit(a, req)
	case *kmsg.OffsetFetchRequest:
		return authzOffsetFetch(a, req)
	case *kmsg.FindCoordinatorRequest:
		return authzFindCoordinator(a, req)
	case *kmsg.JoinGroupRequest:
		return groupOnly(a, req.Group, req, func(resp kmsg.Response) {
			resp.(*kmsg.JoinGroupResponse).ErrorCode = kerr.GroupAuthorizationFailed.Code
		})
	case *kmsg.SyncGroupRequest:
		return groupOnly(a, req.Group, req, func(resp kmsg.Response) {
			resp.(*kmsg.SyncGroupResponse).ErrorCode = kerr.GroupAuthorizationFailed.Code
		})
	case *kmsg.HeartbeatRequest:
		return groupOnly(a, req.Group, req, func(resp kmsg.Response) {
			resp.(*kmsg.HeartbeatResponse).ErrorCode = kerr.GroupAuthorizationFailed.Code
		})
	case *kmsg.LeaveGroupRequest:
		return groupOnly(a, req.Group, req, func(resp kmsg.Response) {
			resp.(*kmsg.LeaveGroupResponse).ErrorCode = kerr.GroupAuthorizationFailed.Code
		})
	case *kmsg.DescribeGroupsRequest:
		return authzDescribeGroups(a, req)
	case *kmsg.ListGroupsRequest:
		return nil, func(resp kmsg.Response) {
			lr := resp.(*kmsg.ListGroupsResponse)
			lr.Groups = slices.DeleteFunc(lr.Groups, func(g kmsg.ListGroupsResponseGroup) bool { return !a.may(auth.Read, g.Group) })
		}
	case *kmsg.CreateTopicsRequest:
		return authzCreateTopics(a, req)
	case *kmsg.DeleteTopicsRequest:
		return c.authzDeleteTopics(a, req)
	case *kmsg.DeleteRecordsRequest:
		return authzDeleteRecords(a, req)
	case *kmsg.OffsetForLeaderEpochRequest:
		return authzLeaderEpoch(a, req)
	case *kmsg.DescribeConfigsRequest:
		return authzDescribeConfigs(a, req)
	case *kmsg.AlterConfigsRequest:
		return authzAlterConfigs(a, req)
	case *kmsg.IncrementalAlterConfigsRequest:
		return authzIncrementalAlterConfigs(a, req)
	case *kmsg.CreatePartitionsRequest:
		return authzCreatePartitions(a, req)
	case *kmsg.DeleteGroupsRequest:
		return authzDeleteGroups(a, req)
	case *kmsg.AddOffsetsToTxnRequest:
		return groupOnly(a, req.Group, req, func(resp kmsg.Response) {
			resp.(*kmsg.AddOffsetsToTxnResponse).ErrorCode = kerr.GroupAuthorizationFailed.Code
		})
	case *kmsg.TxnOffsetCommitRequest:
		if !a.may(auth.Read, req.Group) {
			return answer(req, func(resp kmsg.Response) {
				tr := resp.(*kmsg.TxnOffsetCommitResponse)
				for _, t := range req.Topics {
					rt := kmsg.NewTxnOffsetCommitResponseTopic()
					rt.Topic = t.Topic
					for _, p := range t.Partitions {
						rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
						rp.Partition, rp.ErrorCode = p.Partition, kerr.GroupAuthorizationFailed.Code
						rt.Partitions = append(rt.Partitions, rp)
					}
					tr.Topics = append(tr.Topics, rt)
				}
			}), nil
		}
	case *kmsg.OffsetDeleteRequest:
		if !a.may(auth.Configure, req.Group) {
			resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
			return resp, nil
		}
	}
	return nil, nil
}

// answer makes a deny response: the request's response kind with patch
// applied to it.
func answer(req kmsg.Request, patch func(kmsg.Response)) kmsg.Response {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	patch(resp)
	return resp
}

// result is what authorize returns after filtering: deny when nothing is
// left, else the patch (nil when nothing was denied).
func result(req kmsg.Request, left int, denied bool, patch func(kmsg.Response)) (kmsg.Response, func(kmsg.Response)) {
	switch {
	case !denied:
		return nil, nil
	case left == 0:
		return answer(req, patch), nil
	}
	return nil, patch
}

// groupOnly denies a request about one group without read on it.
func groupOnly(a accessCheck, group string, req kmsg.Request, set func(kmsg.Response)) (kmsg.Response, func(kmsg.Response)) {
	if a.may(auth.Read, group) {
		return nil, nil
	}
	return answer(req, set), nil
}

// topicWanted tells whether a topic-level access is allowed, also needing
// configure when the topic does not exist and would be created.
func (c *conn) topicWanted(a accessCheck, x auth.Access, topic string) bool {
	if !a.may(x, topic) {
		return false
	}
	if _, exists := c.s.b.Topic(topic); !exists && c.s.opts.AutoCreateTopics {
		return a.may(auth.Configure, topic)
	}
	return true
}

func (c *conn) authzProduce(a accessCheck, req *kmsg.ProduceRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []kmsg.ProduceRequestTopic
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.ProduceRequestTopic) bool {
		if c.topicWanted(a, auth.Write, t.Topic) {
			return false
		}
		denied = append(denied, t)
		return true
	})
	patch := func(resp kmsg.Response) {
		pr := resp.(*kmsg.ProduceResponse)
		for _, t := range denied {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			pr.Topics = append(pr.Topics, rt)
		}
	}
	if len(denied) > 0 && len(req.Topics) == 0 && req.Acks == 0 {
		return nil, nil // nothing left to write and nothing to answer
	}
	return result(req, len(req.Topics), len(denied) > 0, patch)
}

func (c *conn) authzFetch(a accessCheck, req *kmsg.FetchRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []kmsg.FetchRequestTopic
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.FetchRequestTopic) bool {
		name := t.Topic
		if req.Version >= 13 {
			n, known := c.s.b.TopicByID(t.TopicID)
			if !known {
				return false // the handler answers UNKNOWN_TOPIC_ID
			}
			name = n
		}
		if a.may(auth.Read, name) {
			return false
		}
		denied = append(denied, t)
		return true
	})
	patch := func(resp kmsg.Response) {
		fr := resp.(*kmsg.FetchResponse)
		for _, t := range denied {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			fr.Topics = append(fr.Topics, rt)
		}
	}
	return result(req, len(req.Topics), len(denied) > 0, patch)
}

func authzListOffsets(a accessCheck, req *kmsg.ListOffsetsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []kmsg.ListOffsetsRequestTopic
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.ListOffsetsRequestTopic) bool {
		if a.may(auth.Read, t.Topic) {
			return false
		}
		denied = append(denied, t)
		return true
	})
	patch := func(resp kmsg.Response) {
		lr := resp.(*kmsg.ListOffsetsResponse)
		for _, t := range denied {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			lr.Topics = append(lr.Topics, rt)
		}
	}
	return result(req, len(req.Topics), len(denied) > 0, patch)
}

func (c *conn) authzMetadata(a accessCheck, req *kmsg.MetadataRequest) (kmsg.Response, func(kmsg.Response)) {
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		// All topics: those the user may not see are left out.
		return nil, func(resp kmsg.Response) {
			mr := resp.(*kmsg.MetadataResponse)
			mr.Topics = slices.DeleteFunc(mr.Topics, func(t kmsg.MetadataResponseTopic) bool {
				return t.Topic != nil && !a.describe(*t.Topic)
			})
		}
	}
	var denied, unknown []string
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.MetadataRequestTopic) bool {
		if t.Topic == nil {
			return false
		}
		switch name := *t.Topic; {
		case !a.describe(name):
			denied = append(denied, name)
		default:
			if _, exists := c.s.b.Topic(name); !exists && !a.may(auth.Configure, name) {
				unknown = append(unknown, name) // may see it, may not create it
				return true
			}
			return false
		}
		return true
	})
	patch := func(resp kmsg.Response) {
		mr := resp.(*kmsg.MetadataResponse)
		for _, names := range []struct {
			list []string
			code int16
		}{{denied, kerr.TopicAuthorizationFailed.Code}, {unknown, kerr.UnknownTopicOrPartition.Code}} {
			for _, name := range names.list {
				t := kmsg.NewMetadataResponseTopic()
				t.Topic, t.ErrorCode = kmsg.StringPtr(name), names.code
				mr.Topics = append(mr.Topics, t)
			}
		}
	}
	if len(denied)+len(unknown) == 0 {
		return nil, nil
	}
	// An emptied topic list would mean "all topics" from v1: answer here
	// (brokers included, from the handler) instead.
	return nil, func(resp kmsg.Response) {
		mr := resp.(*kmsg.MetadataResponse)
		if len(req.Topics) == 0 {
			mr.Topics = nil
		}
		patch(resp)
	}
}

func authzOffsetCommit(a accessCheck, req *kmsg.OffsetCommitRequest) (kmsg.Response, func(kmsg.Response)) {
	all := !a.may(auth.Read, req.Group)
	var denied []kmsg.OffsetCommitRequestTopic
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.OffsetCommitRequestTopic) bool {
		if !all && a.may(auth.Read, t.Topic) {
			return false
		}
		denied = append(denied, t)
		return true
	})
	code := kerr.TopicAuthorizationFailed.Code
	if all {
		code = kerr.GroupAuthorizationFailed.Code
	}
	patch := func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetCommitResponse)
		for _, t := range denied {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			or.Topics = append(or.Topics, rt)
		}
	}
	return result(req, len(req.Topics), len(denied) > 0, patch)
}

func authzOffsetFetch(a accessCheck, req *kmsg.OffsetFetchRequest) (kmsg.Response, func(kmsg.Response)) {
	if req.Version >= 8 {
		var denied []string
		req.Groups = slices.DeleteFunc(req.Groups, func(g kmsg.OffsetFetchRequestGroup) bool {
			if a.may(auth.Read, g.Group) {
				return false
			}
			denied = append(denied, g.Group)
			return true
		})
		patch := func(resp kmsg.Response) {
			or := resp.(*kmsg.OffsetFetchResponse)
			for i := range or.Groups {
				or.Groups[i].Topics = slices.DeleteFunc(or.Groups[i].Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool {
					return !a.may(auth.Read, t.Topic)
				})
			}
			for _, g := range denied {
				rg := kmsg.NewOffsetFetchResponseGroup()
				rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
				or.Groups = append(or.Groups, rg)
			}
		}
		if len(req.Groups) == 0 && len(denied) > 0 {
			return answer(req, patch), nil
		}
		return nil, patch
	}
	if !a.may(auth.Read, req.Group) {
		return answer(req, func(resp kmsg.Response) {
			or := resp.(*kmsg.OffsetFetchResponse)
			or.ErrorCode = kerr.GroupAuthorizationFailed.Code
			for _, t := range req.Topics {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p, kerr.GroupAuthorizationFailed.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				or.Topics = append(or.Topics, rt)
			}
		}), nil
	}
	return nil, func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetFetchResponse)
		or.Topics = slices.DeleteFunc(or.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return !a.may(auth.Read, t.Topic) })
	}
}

func authzFindCoordinator(a accessCheck, req *kmsg.FindCoordinatorRequest) (kmsg.Response, func(kmsg.Response)) {
	if req.CoordinatorType != 0 {
		return nil, nil
	}
	if req.Version < 4 {
		if a.may(auth.Read, req.CoordinatorKey) {
			return nil, nil
		}
		return answer(req, func(resp kmsg.Response) {
			fr := resp.(*kmsg.FindCoordinatorResponse)
			fr.ErrorCode, fr.NodeID, fr.Port = kerr.GroupAuthorizationFailed.Code, -1, -1
		}), nil
	}
	var denied []string
	req.CoordinatorKeys = slices.DeleteFunc(req.CoordinatorKeys, func(k string) bool {
		if a.may(auth.Read, k) {
			return false
		}
		denied = append(denied, k)
		return true
	})
	patch := func(resp kmsg.Response) {
		fr := resp.(*kmsg.FindCoordinatorResponse)
		for _, k := range denied {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.NodeID, c.Port, c.ErrorCode = k, -1, -1, kerr.GroupAuthorizationFailed.Code
			fr.Coordinators = append(fr.Coordinators, c)
		}
	}
	return result(req, len(req.CoordinatorKeys), len(denied) > 0, patch)
}

func authzDescribeGroups(a accessCheck, req *kmsg.DescribeGroupsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []string
	req.Groups = slices.DeleteFunc(req.Groups, func(g string) bool {
		if a.may(auth.Read, g) {
			return false
		}
		denied = append(denied, g)
		return true
	})
	patch := func(resp kmsg.Response) {
		dr := resp.(*kmsg.DescribeGroupsResponse)
		for _, g := range denied {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			dr.Groups = append(dr.Groups, rg)
		}
	}
	return result(req, len(req.Groups), len(denied) > 0, patch)
}

func authzCreateTopics(a accessCheck, req *kmsg.CreateTopicsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []string
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.CreateTopicsRequestTopic) bool {
		if a.may(auth.Configure, t.Topic) {
			return false
		}
		denied = append(denied, t.Topic)
		return true
	})
	patch := func(resp kmsg.Response) {
		cr := resp.(*kmsg.CreateTopicsResponse)
		for _, name := range denied {
			t := kmsg.NewCreateTopicsResponseTopic()
			t.Topic, t.ErrorCode = name, kerr.TopicAuthorizationFailed.Code
			t.ErrorMessage = kmsg.StringPtr("not authorized to create topic '" + name + "'")
			cr.Topics = append(cr.Topics, t)
		}
	}
	return result(req, len(req.Topics), len(denied) > 0, patch)
}

func (c *conn) authzDeleteTopics(a accessCheck, req *kmsg.DeleteTopicsRequest) (kmsg.Response, func(kmsg.Response)) {
	type deniedTopic struct {
		name string
		id   [16]byte
		byID bool
	}
	var denied []deniedTopic
	if req.Version < 6 {
		req.TopicNames = slices.DeleteFunc(req.TopicNames, func(n string) bool {
			if a.may(auth.Configure, n) {
				return false
			}
			denied = append(denied, deniedTopic{name: n})
			return true
		})
	} else {
		req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.DeleteTopicsRequestTopic) bool {
			name, byID := "", t.Topic == nil
			if byID {
				n, known := c.s.b.TopicByID(t.TopicID)
				if !known {
					return false
				}
				name = n
			} else {
				name = *t.Topic
			}
			if a.may(auth.Configure, name) {
				return false
			}
			denied = append(denied, deniedTopic{name: name, id: t.TopicID, byID: byID})
			return true
		})
	}
	patch := func(resp kmsg.Response) {
		dr := resp.(*kmsg.DeleteTopicsResponse)
		for _, d := range denied {
			t := kmsg.NewDeleteTopicsResponseTopic()
			t.ErrorCode = kerr.TopicAuthorizationFailed.Code
			if d.byID {
				t.TopicID = d.id
			} else {
				t.Topic = kmsg.StringPtr(d.name)
			}
			dr.Topics = append(dr.Topics, t)
		}
	}
	return result(req, len(req.TopicNames)+len(req.Topics), len(denied) > 0, patch)
}

func authzDeleteRecords(a accessCheck, req *kmsg.DeleteRecordsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []kmsg.DeleteRecordsRequestTopic
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.DeleteRecordsRequestTopic) bool {
		if a.may(auth.Configure, t.Topic) {
			return false
		}
		denied = append(denied, t)
		return true
	})
	patch := func(resp kmsg.Response) {
		dr := resp.(*kmsg.DeleteRecordsResponse)
		for _, t := range denied {
			rt := kmsg.NewDeleteRecordsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDeleteRecordsResponseTopicPartition()
				rp.Partition, rp.LowWatermark, rp.ErrorCode = p.Partition, -1, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			dr.Topics = append(dr.Topics, rt)
		}
	}
	return result(req, len(req.Topics), len(denied) > 0, patch)
}

func authzLeaderEpoch(a accessCheck, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []kmsg.OffsetForLeaderEpochRequestTopic
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.OffsetForLeaderEpochRequestTopic) bool {
		if a.may(auth.Read, t.Topic) {
			return false
		}
		denied = append(denied, t)
		return true
	})
	patch := func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetForLeaderEpochResponse)
		for _, t := range denied {
			rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = p.Partition, kerr.TopicAuthorizationFailed.Code, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			or.Topics = append(or.Topics, rt)
		}
	}
	return result(req, len(req.Topics), len(denied) > 0, patch)
}

// Config resource types.
const (
	resourceTopic  = 2
	resourceBroker = 4
)

// configAllowed decides one config resource: topics by access x, broker
// resources by the administrator tag. It returns the error code when
// denied.
func configAllowed(a accessCheck, x auth.Access, typ int8, name string) (int16, bool) {
	if typ == resourceTopic {
		return kerr.TopicAuthorizationFailed.Code, a.may(x, name)
	}
	return kerr.ClusterAuthorizationFailed.Code, a.admin()
}

type deniedResource struct {
	typ  int8
	name string
	code int16
}

func authzDescribeConfigs(a accessCheck, req *kmsg.DescribeConfigsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []deniedResource
	req.Resources = slices.DeleteFunc(req.Resources, func(r kmsg.DescribeConfigsRequestResource) bool {
		code, ok := configAllowed(a, auth.Read, int8(r.ResourceType), r.ResourceName)
		if !ok {
			denied = append(denied, deniedResource{int8(r.ResourceType), r.ResourceName, code})
		}
		return !ok
	})
	patch := func(resp kmsg.Response) {
		dr := resp.(*kmsg.DescribeConfigsResponse)
		for _, d := range denied {
			r := kmsg.NewDescribeConfigsResponseResource()
			r.ResourceType, r.ResourceName, r.ErrorCode = kmsg.ConfigResourceType(d.typ), d.name, d.code
			dr.Resources = append(dr.Resources, r)
		}
	}
	return result(req, len(req.Resources), len(denied) > 0, patch)
}

func authzAlterConfigs(a accessCheck, req *kmsg.AlterConfigsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []deniedResource
	req.Resources = slices.DeleteFunc(req.Resources, func(r kmsg.AlterConfigsRequestResource) bool {
		code, ok := configAllowed(a, auth.Configure, int8(r.ResourceType), r.ResourceName)
		if !ok {
			denied = append(denied, deniedResource{int8(r.ResourceType), r.ResourceName, code})
		}
		return !ok
	})
	patch := func(resp kmsg.Response) {
		ar := resp.(*kmsg.AlterConfigsResponse)
		for _, d := range denied {
			r := kmsg.NewAlterConfigsResponseResource()
			r.ResourceType, r.ResourceName, r.ErrorCode = kmsg.ConfigResourceType(d.typ), d.name, d.code
			ar.Resources = append(ar.Resources, r)
		}
	}
	return result(req, len(req.Resources), len(denied) > 0, patch)
}

func authzIncrementalAlterConfigs(a accessCheck, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []deniedResource
	req.Resources = slices.DeleteFunc(req.Resources, func(r kmsg.IncrementalAlterConfigsRequestResource) bool {
		code, ok := configAllowed(a, auth.Configure, int8(r.ResourceType), r.ResourceName)
		if !ok {
			denied = append(denied, deniedResource{int8(r.ResourceType), r.ResourceName, code})
		}
		return !ok
	})
	patch := func(resp kmsg.Response) {
		ar := resp.(*kmsg.IncrementalAlterConfigsResponse)
		for _, d := range denied {
			r := kmsg.NewIncrementalAlterConfigsResponseResource()
			r.ResourceType, r.ResourceName, r.ErrorCode = kmsg.ConfigResourceType(d.typ), d.name, d.code
			ar.Resources = append(ar.Resources, r)
		}
	}
	return result(req, len(req.Resources), len(denied) > 0, patch)
}

func authzCreatePartitions(a accessCheck, req *kmsg.CreatePartitionsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []string
	req.Topics = slices.DeleteFunc(req.Topics, func(t kmsg.CreatePartitionsRequestTopic) bool {
		if a.may(auth.Configure, t.Topic) {
			return false
		}
		denied = append(denied, t.Topic)
		return true
	})
	patch := func(resp kmsg.Response) {
		cr := resp.(*kmsg.CreatePartitionsResponse)
		for _, name := range denied {
			t := kmsg.NewCreatePartitionsResponseTopic()
			t.Topic, t.ErrorCode = name, kerr.TopicAuthorizationFailed.Code
			cr.Topics = append(cr.Topics, t)
		}
	}
	return result(req, len(req.Topics), len(denied) > 0, patch)
}

func authzDeleteGroups(a accessCheck, req *kmsg.DeleteGroupsRequest) (kmsg.Response, func(kmsg.Response)) {
	var denied []string
	req.Groups = slices.DeleteFunc(req.Groups, func(g string) bool {
		if a.may(auth.Configure, g) {
			return false
		}
		denied = append(denied, g)
		return true
	})
	patch := func(resp kmsg.Response) {
		dr := resp.(*kmsg.DeleteGroupsResponse)
		for _, g := range denied {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			dr.Groups = append(dr.Groups, rg)
		}
	}
	return result(req, len(req.Groups), len(denied) > 0, patch)
}
