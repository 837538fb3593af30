package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/wharfmq/wharf/internal/certs"
	"github.com/wharfmq/wharf/internal/config"
)

// loadTLS loads the TLS listeners' certificates when any TLS listener is
// configured (nil otherwise) and reloads them whenever reload receives,
// until ctx ends. A reload that fails keeps the certificates in use and is
// logged.
func loadTLS(ctx context.Context, cfg config.Config, reload <-chan struct{}, logger *slog.Logger) (*certs.Store, error) {
	if !cfg.TLSEnabled() {
		return nil, nil
	}
	st, err := certs.New(certs.Options{
		CertFile:   cfg.TLS.CertFile,
		KeyFile:    cfg.TLS.KeyFile,
		CAFile:     cfg.TLS.CAFile,
		ClientAuth: certs.ClientAuth(cfg.TLS.ClientAuth),
	})
	if err != nil {
		return nil, err
	}
	logCert(logger, "TLS certificate loaded", st)
	if reload != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-reload:
					if err := st.Reload(); err != nil {
						logger.Error("TLS certificate reload failed; keeping the certificate in use", "err", err)
						continue
					}
					logCert(logger, "TLS certificate reloaded", st)
				}
			}
		}()
	}
	return st, nil
}

func logCert(logger *slog.Logger, msg string, st *certs.Store) {
	c := st.Certificate()
	logger.Info(msg, "subject", c.Subject.String(), "serial", c.SerialNumber.String(),
		"not_after", c.NotAfter.UTC().Format(time.RFC3339))
}

// tlsListen binds a TLS listener for one protocol: listen's TCP listener
// (keepalive, accept retries) with the handshake done by crypto/tls on the
// connection's first read or write.
func tlsListen(name, addr string, keepAlive time.Duration, cfg *tls.Config, logger *slog.Logger) (net.Listener, error) {
	ln, err := listen(name, addr, keepAlive, logger)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

// httpEndpoints lists the HTTP server's listeners: the plain one and the
// TLS one, as configured.
func httpEndpoints(cfg config.Config, st *certs.Store) []httpEndpoint {
	var eps []httpEndpoint
	if cfg.HTTPListen != "" {
		eps = append(eps, httpEndpoint{name: "http", addr: cfg.HTTPListen})
	}
	if cfg.HTTPSListen != "" {
		eps = append(eps, httpEndpoint{name: "https", addr: cfg.HTTPSListen, tls: st.ServerConfig("h2", "http/1.1")})
	}
	return eps
}
