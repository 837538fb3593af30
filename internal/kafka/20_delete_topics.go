package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics (key 20): deletes topics and their data, by name, or from v6
// by name or topic id.
//
// Versions: v1 throttle; v4 flexible; v5 error messages; v6 topic ids.
func (s *Server) handleDeleteTopics(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if r.version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, name := range req.TopicNames {
			targets = append(targets, target{name: &name})
		}
	}
	for _, t := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.TopicID = t.id
		name := ""
		if t.name != nil {
			name = *t.name
		} else if n, ok := s.b.TopicByID(t.id); ok {
			name = n
		} else {
			st.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.Topic = &name
		if info, ok := s.b.Topic(name); ok {
			st.TopicID = info.ID
		}
		if err := s.b.DeleteTopic(ctx, name); err != nil {
			st.ErrorCode = errorCode(err)
			if r.version >= 5 {
				st.ErrorMessage = errorMessage(err)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}
