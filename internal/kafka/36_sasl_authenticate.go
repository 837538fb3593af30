package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/auth"
)

// SaslAuthenticate (key 36): one message of the mechanism chosen by
// SaslHandshake. PLAIN checks the user's password; SCRAM answers the
// client-first message with the server-first one, then checks the proof
// in the client-final message and answers with the server's signature.
// Every failure (a wrong password, an unknown user, a loopback-only user
// from elsewhere, a malformed message) is SASL_AUTHENTICATION_FAILED with
// the same message, logged with its cause, and closes the connection once
// answered. A request before SaslHandshake, or after authentication, is
// ILLEGAL_SASL_STATE.
//
// Versions: v1 adds the session lifetime (0: no re-authentication is
// required); v2 flexible.
func (s *Server) handleSaslAuthenticate(_ context.Context, r *request) (reply, error) {
	req := r.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := r.conn
	st := &c.sasl
	if st.done || st.mech == "" {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate before SaslHandshake or after authentication"
		resp.ErrorMessage = &msg
		return now(resp), nil
	}
	out, done, err := s.saslStep(c, req.SASLAuthBytes)
	if err != nil {
		s.logger.Info("kafka login refused", "remote", c.nc.RemoteAddr().String(), "mechanism", st.mech, "err", err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := fmt.Sprintf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", st.mech)
		resp.ErrorMessage = &msg
		c.stopReading() // closed once this answer is written
		return now(resp), nil
	}
	resp.SASLAuthBytes = out
	if done {
		st.done, st.scram = true, nil
		s.logger.Debug("kafka login", "remote", c.nc.RemoteAddr().String(), "mechanism", st.mech, "user", st.user)
	}
	return now(resp), nil
}

// saslStep runs one step of the chosen mechanism: its answer, and whether
// the client is now authenticated.
func (s *Server) saslStep(c *conn, msg []byte) ([]byte, bool, error) {
	st := &c.sasl
	users := s.opts.Users
	if users == nil {
		return nil, false, errors.New("no users are configured on this listener")
	}
	if st.mech == mechPlain {
		user, pass, err := plainCredentials(msg)
		if err != nil {
			return nil, false, err
		}
		if _, err := users.Authenticate(user, pass, c.nc.RemoteAddr()); err != nil {
			return nil, false, err
		}
		st.user = user
		return []byte{}, true, nil
	}
	if st.scram == nil {
		x, err := users.NewScramServer(auth.Mechanism(st.mech))
		if err != nil {
			return nil, false, err
		}
		st.scram = x
		out, err := x.First(msg)
		return out, false, err
	}
	out, err := st.scram.Final(msg)
	if err != nil {
		return nil, false, err
	}
	if err := users.CheckLoopback(st.scram.User(), c.nc.RemoteAddr()); err != nil {
		return nil, false, err
	}
	st.user = st.scram.User()
	return out, true, nil
}
