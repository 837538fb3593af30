package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// ClientAuth says whether a TLS listener asks clients for a certificate.
type ClientAuth string

// The client authentication modes. A certificate a client gives is always
// checked against the CA file.
const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone ClientAuth = "none"
	// ClientAuthOptional asks for one and checks it if given.
	ClientAuthOptional ClientAuth = "optional"
	// ClientAuthRequired refuses a client without a valid certificate.
	ClientAuthRequired ClientAuth = "required"
)

// tlsType is the crypto/tls equivalent of a mode.
func (c ClientAuth) tlsType() (tls.ClientAuthType, error) {
	switch c {
	case "", ClientAuthNone:
		return tls.NoClientCert, nil
	case ClientAuthOptional:
		return tls.VerifyClientCertIfGiven, nil
	case ClientAuthRequired:
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("client authentication %q: want none, optional or required", string(c))
}

// Options names the PEM files of a Store.
type Options struct {
	// CertFile holds the server certificate, followed by any intermediate
	// certificates; KeyFile its private key.
	CertFile, KeyFile string
	// CAFile holds the certificate authorities client certificates must
	// chain to. It is required unless ClientAuth is none.
	CAFile string
	// ClientAuth says whether clients must present a certificate.
	ClientAuth ClientAuth
}

// material is one consistent load of the files.
type material struct {
	cert tls.Certificate
	cas  *x509.CertPool // nil without a CA file
}

// Store holds the current TLS material and builds the configuration of
// TLS listeners from it. It is safe for concurrent use.
type Store struct {
	opts Options
	auth tls.ClientAuthType
	cur  atomic.Pointer[material]
}

// New loads the files opts names; it fails if they cannot be used.
func New(opts Options) (*Store, error) {
	auth, err := opts.ClientAuth.tlsType()
	if err != nil {
		return nil, err
	}
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("a TLS listener needs a certificate file and a key file")
	}
	if auth != tls.NoClientCert && opts.CAFile == "" {
		return nil, fmt.Errorf("client authentication %q needs a CA file to check client certificates with", string(opts.ClientAuth))
	}
	s := &Store{opts: opts, auth: auth}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again. On success the next handshake of every
// listener uses what it read; on failure the material in use is kept.
func (s *Store) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.opts.CertFile, s.opts.KeyFile)
	if err != nil {
		return fmt.Errorf("loading TLS certificate %s and key %s: %w", s.opts.CertFile, s.opts.KeyFile, err)
	}
	m := &material{cert: cert}
	if s.opts.CAFile != "" {
		pem, err := os.ReadFile(s.opts.CAFile)
		if err != nil {
			return fmt.Errorf("reading TLS CA file: %w", err)
		}
		m.cas = x509.NewCertPool()
		if !m.cas.AppendCertsFromPEM(pem) {
			return fmt.Errorf("TLS CA file %s holds no PEM certificate", s.opts.CAFile)
		}
	}
	s.cur.Store(m)
	return nil
}

// Certificate returns the leaf certificate in use.
func (s *Store) Certificate() *x509.Certificate {
	return s.cur.Load().cert.Leaf
}

// ServerConfig returns the configuration of a TLS listener offering the
// given ALPN protocols (none for Kafka and AMQP; h2 and http/1.1 for the
// HTTP listener). Each handshake takes the material current when it
// starts.
func (s *Store) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.cur.Load()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{m.cert},
				ClientAuth:   s.auth,
				ClientCAs:    m.cas,
			}, nil
		},
	}
}
