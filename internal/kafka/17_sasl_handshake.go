package kafka

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake (key 17): the client names the mechanism it will use; the
// answer lists the mechanisms offered (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512), with UNSUPPORTED_SASL_MECHANISM for another. A second
// handshake on an authenticated connection, or after a mechanism was
// chosen, is ILLEGAL_SASL_STATE.
//
// Versions: v0-v1 are advertised, as Kafka does (librdkafka enables SASL
// only when the range includes v0, then sends v1). After v1 the
// mechanism's messages travel in SaslAuthenticate requests. A v0
// handshake, after which they would follow as raw frames, is answered
// UNSUPPORTED_VERSION with the mechanisms, and no mechanism is chosen.
func (s *Server) handleSaslHandshake(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = saslMechanisms()
	st := &r.conn.sasl
	switch {
	case r.version == 0:
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	case st.done || st.mech != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case !slices.Contains(resp.SupportedMechanisms, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	default:
		st.mech = req.Mechanism
	}
	return now(resp), nil
}
