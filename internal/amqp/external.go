package amqp

import (
	"crypto/tls"

	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// EXTERNAL: on a TLS connection whose client presented a certificate that
// chains to the configured CA, the client may log in as the user named by
// the certificate's subject common name, with no password, as RabbitMQ's
// rabbitmq_auth_mechanism_ssl plugin does (its default, common_name). The
// mechanism is offered only on such connections; the user must exist, and
// the vhost permissions, the loopback-only restriction and the failed-login
// limit apply as to any login.

const mechExternal = "EXTERNAL"

// mechanisms lists the mechanisms offered in connection.start. On a TLS
// connection the handshake runs first (within the AMQP handshake's
// deadline) so that a verified client certificate can offer EXTERNAL.
func (c *conn) mechanisms() string {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return "PLAIN AMQPLAIN"
	}
	if err := tc.Handshake(); err != nil {
		return "PLAIN AMQPLAIN" // the next read fails the same way and closes the connection
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName == "" {
		return "PLAIN AMQPLAIN"
	}
	c.certName = st.PeerCertificates[0].Subject.CommonName
	return "EXTERNAL PLAIN AMQPLAIN"
}

// authenticateExternal logs the connection in as its certificate's user.
// The response is ignored, as RabbitMQ ignores it (clients send "",
// or amqp091-go "\x00*\x00*").
func (c *conn) authenticateExternal(s *wire.ConnectionStartOk, failureClose bool) error {
	refuse := func(err error) error {
		c.logger.Warn("login refused", "mechanism", mechExternal, "certificate", c.certName, "err", err)
		if failureClose {
			c.failHandshake(newCloseError(wire.ReplyAccessRefused, "Login was refused using authentication mechanism %s. For details see the broker logfile.", mechExternal).forMethod(s))
		}
		return errAuthRefused
	}
	u, err := c.s.opts.Users.AuthenticateExternal(c.certName, c.nc.RemoteAddr())
	if err != nil {
		return refuse(err)
	}
	c.user = u.Name
	return nil
}
