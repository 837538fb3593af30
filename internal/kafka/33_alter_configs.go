package kafka

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs (key 33): replaces a topic's whole set of explicit configs
// with the one given; a config left out (or given a null value) goes back
// to its default. The new set is validated as a whole: an unknown name or
// a bad value is INVALID_CONFIG and changes nothing. validate_only checks
// without changing. Broker settings are fixed when the broker starts, so a
// BROKER resource that sets anything is INVALID_REQUEST, as Kafka answers
// for a setting it cannot update dynamically; an empty set is a no-op.
//
// Versions: v1 throttle; v2 flexible.
func (s *Server) handleAlterConfigs(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	dups := duplicateResources(len(req.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, res := range req.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		code, msg := s.alterConfigs(ctx, res, req.ValidateOnly, dups[i])
		if code != 0 {
			rr.ErrorCode, rr.ErrorMessage = code, &msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return now(resp), nil
}

func (s *Server) alterConfigs(ctx context.Context, res kmsg.AlterConfigsRequestResource, validateOnly, dup bool) (int16, string) {
	if dup {
		return kerr.InvalidRequest.Code, "the resource appears more than once in the request"
	}
	names := make([]string, len(res.Configs))
	for i, c := range res.Configs {
		names[i] = c.Name
	}
	if d := duplicateNames(names); d != "" {
		return kerr.InvalidRequest.Code, fmt.Sprintf("config %q appears more than once", d)
	}
	switch res.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		configs := map[string]string{}
		for _, c := range res.Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
		}
		err := s.b.UpdateTopicConfig(ctx, res.ResourceName, validateOnly, func(map[string]string) (map[string]string, error) {
			return configs, nil
		})
		if err != nil {
			return errorCode(err), err.Error()
		}
		return 0, ""
	case kmsg.ConfigResourceTypeBroker:
		if msg := s.checkBrokerResource(res.ResourceName); msg != "" {
			return kerr.InvalidRequest.Code, msg
		}
		if len(names) > 0 {
			return kerr.InvalidRequest.Code, brokerConfigsFixed(names)
		}
		return 0, ""
	}
	return kerr.InvalidRequest.Code, unsupportedResource(res.ResourceType)
}

// brokerConfigsFixed explains why broker settings cannot be altered.
func brokerConfigsFixed(names []string) string {
	return fmt.Sprintf("cannot update these broker configs dynamically: %s; broker settings are set when the broker starts (flags, environment or config file)",
		strings.Join(names, ", "))
}

// duplicateResources marks every resource whose type and name appear more
// than once: Kafka refuses each of them.
func duplicateResources(n int, at func(int) (kmsg.ConfigResourceType, string)) []bool {
	type key struct {
		t    kmsg.ConfigResourceType
		name string
	}
	count := map[key]int{}
	for i := range n {
		t, name := at(i)
		count[key{t, name}]++
	}
	out := make([]bool, n)
	for i := range n {
		t, name := at(i)
		out[i] = count[key{t, name}] > 1
	}
	return out
}

// duplicateNames returns a name that appears more than once, or "".
func duplicateNames(names []string) string {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return n
		}
		seen[n] = true
	}
	return ""
}
