package kafka

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions (key 18): the keys and version ranges this broker serves. Its
// response header is always v0, and a version this broker does not know is
// answered with a v0 body carrying UNSUPPORTED_VERSION and the range of key
// 18, so the client can retry with a version both sides speak.
func (s *Server) handleAPIVersions(_ context.Context, r *request) (reply, error) {
	resp := r.kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = s.apiKeys()
	return now(resp), nil
}

func (s *Server) unsupportedAPIVersions(r *request) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	h := s.handlers[18]
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = 18, h.min, h.max
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}

func (s *Server) apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(s.handlers))
	for key, h := range s.handlers {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, h.min, h.max
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
