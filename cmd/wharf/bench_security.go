package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaSecurity is how bench kafka reaches a broker that wants TLS or
// SASL: a target written protocol://host:port, with librdkafka's
// security.protocol names (plaintext, ssl, sasl_plaintext, sasl_ssl), gets
// TLS trusting caFile and/or SASL with mechanism, user and password.
type kafkaSecurity struct {
	caFile    string
	mechanism string
	user      string
	password  string
}

// target splits a target into its address and client options.
func (k kafkaSecurity) target(t string) (string, []kgo.Opt, error) {
	proto, addr, ok := strings.Cut(t, "://")
	if !ok {
		return t, nil, nil
	}
	var opts []kgo.Opt
	switch proto {
	case "plaintext":
	case "ssl", "sasl_ssl":
		cfg := &tls.Config{}
		if k.caFile != "" {
			pem, err := os.ReadFile(k.caFile)
			if err != nil {
				return "", nil, fmt.Errorf("--tls-ca-file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return "", nil, fmt.Errorf("--tls-ca-file %s holds no PEM certificate", k.caFile)
			}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	case "sasl_plaintext":
	default:
		return "", nil, fmt.Errorf("target %q: protocol %q is not plaintext, ssl, sasl_plaintext or sasl_ssl", t, proto)
	}
	if strings.HasPrefix(proto, "sasl_") {
		switch strings.ToUpper(k.mechanism) {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: k.user, Pass: k.password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.user, Pass: k.password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.user, Pass: k.password}.AsSha512Mechanism()))
		default:
			return "", nil, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", k.mechanism)
		}
	}
	return addr, opts, nil
}
