package kafka

import (
	"bytes"
	"fmt"
	"maps"

	"github.com/wharfmq/wharf/internal/auth"
)

// SASL on the Kafka listener: SaslHandshake (17) names a mechanism,
// SaslAuthenticate (36) carries its messages. PLAIN takes one round;
// SCRAM-SHA-256 and SCRAM-SHA-512 take two. A connection authenticates at
// most once; a failed attempt is answered with SASL_AUTHENTICATION_FAILED
// and the connection is closed after the answer, as Kafka does. With
// Options.RequireSASL, a request other than ApiVersions, SaslHandshake and
// SaslAuthenticate before authentication closes the connection, as
// Kafka's SASL listeners do.

// Mechanism names as Kafka clients send them.
const (
	mechPlain = "PLAIN"
)

// saslMechanisms lists the mechanisms offered, in the order SaslHandshake
// lists them.
func saslMechanisms() []string {
	out := []string{mechPlain}
	for _, m := range auth.ScramMechanisms() {
		out = append(out, string(m))
	}
	return out
}

// saslState is a connection's authentication. Only the connection's reader
// goroutine (handle) touches it.
type saslState struct {
	mech  string            // chosen by SaslHandshake; "" before
	scram *auth.ScramServer // the SCRAM exchange in progress
	user  string            // the authenticated user; "" before
	done  bool              // authenticated
}

// saslHandlers are the SASL API keys.
func (s *Server) saslHandlers() map[int16]handler {
	return map[int16]handler{
		17: {0, 1, s.handleSaslHandshake},
		36: {0, 2, s.handleSaslAuthenticate},
	}
}

// admitted reports whether a connection may send a request of this key
// now: always, unless the listener requires SASL and the connection has
// not authenticated, when only ApiVersions and the SASL requests are.
func (c *conn) admitted(key int16) error {
	if !c.s.opts.RequireSASL || c.sasl.done {
		return nil
	}
	switch key {
	case 17, 18, 36:
		return nil
	}
	return fmt.Errorf("API key %d before SASL authentication on a listener that requires it", key)
}

// plainCredentials splits a PLAIN message: authzid NUL user NUL password.
// An authzid, if given, must name the user.
func plainCredentials(msg []byte) (user, pass string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", fmt.Errorf("malformed PLAIN message: want authzid, user and password separated by NUL")
	}
	if len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
		return "", "", fmt.Errorf("PLAIN authorization id differs from the user")
	}
	if len(parts[1]) == 0 {
		return "", "", fmt.Errorf("PLAIN message without a user")
	}
	return string(parts[1]), string(parts[2]), nil
}

// withSASL adds the SASL handlers to a table.
func (s *Server) withSASL(t map[int16]handler) map[int16]handler {
	maps.Copy(t, s.saslHandlers())
	return t
}
