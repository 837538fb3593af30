package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/broker"
)

// IncrementalAlterConfigs (key 44): changes single topic configs, merged
// into the topic's explicit set atomically: SET a value (a null value
// removes it, as in Kafka's KRaft controller), DELETE it (back to the
// default), APPEND to or SUBTRACT from a list config (cleanup.policy; the
// current value, or the default when the topic does not set it, is the list
// changed). APPEND/SUBTRACT on a config that is not a list, an unknown
// config name or an invalid result is INVALID_CONFIG and changes nothing;
// an unknown operation or a name given twice is INVALID_REQUEST.
// validate_only checks without changing. Broker settings are fixed when the
// broker starts: DELETE of a broker config succeeds (nothing was set
// dynamically), anything else is INVALID_REQUEST.
//
// Versions: v1 flexible.
func (s *Server) handleIncrementalAlterConfigs(ctx context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	dups := duplicateResources(len(req.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, res := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		code, msg := s.incrementalAlterConfigs(ctx, res, req.ValidateOnly, dups[i])
		if code != 0 {
			rr.ErrorCode, rr.ErrorMessage = code, &msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return now(resp), nil
}

// errBadRequest marks a request error (INVALID_REQUEST) found while merging.
var errBadRequest = errors.New("invalid request")

func (s *Server) incrementalAlterConfigs(ctx context.Context, res kmsg.IncrementalAlterConfigsRequestResource, validateOnly, dup bool) (int16, string) {
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
		info, ok := s.b.Topic(res.ResourceName)
		if !ok {
			return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %q does not exist", res.ResourceName)
		}
		err := s.b.UpdateTopicConfig(ctx, res.ResourceName, validateOnly, func(explicit map[string]string) (map[string]string, error) {
			return mergeConfigOps(explicit, info.Configs, res.Configs)
		})
		switch {
		case errors.Is(err, errBadRequest):
			return kerr.InvalidRequest.Code, err.Error()
		case err != nil:
			return errorCode(err), err.Error()
		}
		return 0, ""
	case kmsg.ConfigResourceTypeBroker:
		if msg := s.checkBrokerResource(res.ResourceName); msg != "" {
			return kerr.InvalidRequest.Code, msg
		}
		var set []string
		for _, c := range res.Configs {
			if c.Op != kmsg.IncrementalAlterConfigOpDelete {
				set = append(set, c.Name)
			}
		}
		if len(set) > 0 {
			return kerr.InvalidRequest.Code, brokerConfigsFixed(set)
		}
		return 0, ""
	}
	return kerr.InvalidRequest.Code, unsupportedResource(res.ResourceType)
}

// mergeConfigOps applies the operations to a topic's explicit configs.
// effective lists every config the topic has, with its current value;
// names outside it are unknown.
func mergeConfigOps(explicit map[string]string, effective []broker.ConfigEntry, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	current := make(map[string]string, len(effective))
	for _, e := range effective {
		current[e.Name] = e.Value
	}
	for _, op := range ops {
		if _, known := current[op.Name]; !known {
			return nil, fmt.Errorf("%w: unknown topic config %q", broker.ErrInvalidConfig, op.Name)
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				delete(explicit, op.Name)
				continue
			}
			explicit[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(explicit, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !configListValued(op.Name) {
				return nil, fmt.Errorf("%w: cannot %s %q: it is not a list config", broker.ErrInvalidConfig, op.Op, op.Name)
			}
			if op.Value == nil {
				return nil, fmt.Errorf("%w: %s of %q needs a value", errBadRequest, op.Op, op.Name)
			}
			value, ok := explicit[op.Name]
			if !ok {
				value = current[op.Name]
			}
			list := splitList(value)
			for _, v := range splitList(*op.Value) {
				i := slices.Index(list, v)
				switch {
				case op.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0:
					list = append(list, v)
				case op.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0:
					list = slices.Delete(list, i, i+1)
				}
			}
			explicit[op.Name] = strings.Join(list, ",")
		default:
			return nil, fmt.Errorf("%w: unknown operation %d on %q", errBadRequest, int8(op.Op), op.Name)
		}
	}
	return explicit, nil
}

// splitList splits a list config's value at commas, trimming spaces and
// dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
