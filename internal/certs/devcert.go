package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevOptions describes the certificates WriteDev makes.
type DevOptions struct {
	// Dir receives the files; it is created if missing.
	Dir string
	// Hosts are the DNS names and IP addresses the server certificate is
	// valid for.
	Hosts []string
	// ClientName is the common name of the client certificate (the user
	// a client authenticating with it claims).
	ClientName string
	// NotBefore and NotAfter bound the validity of every certificate.
	NotBefore, NotAfter time.Time
}

// DevFiles are the paths WriteDev wrote.
type DevFiles struct {
	CACert, CAKey         string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// WriteDev writes a self-signed certificate authority and, signed by it, a
// server certificate for opts.Hosts and a client certificate for
// opts.ClientName: enough to run every TLS listener, with client
// certificates required, on a development machine. Keys are written
// readable by their owner only. It is not for production: the CA key sits
// beside the certificates it signs.
func WriteDev(opts DevOptions) (DevFiles, error) {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return DevFiles{}, fmt.Errorf("creating %s: %w", opts.Dir, err)
	}
	f := DevFiles{
		CACert: filepath.Join(opts.Dir, "ca.crt"), CAKey: filepath.Join(opts.Dir, "ca.key"),
		ServerCert: filepath.Join(opts.Dir, "server.crt"), ServerKey: filepath.Join(opts.Dir, "server.key"),
		ClientCert: filepath.Join(opts.Dir, "client.crt"), ClientKey: filepath.Join(opts.Dir, "client.key"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return DevFiles{}, fmt.Errorf("making the CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Wharf development CA", Organization: []string{"Wharf"}},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return DevFiles{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return DevFiles{}, fmt.Errorf("parsing the CA certificate: %w", err)
	}
	if err := writePair(f.CACert, f.CAKey, caDER, caKey); err != nil {
		return DevFiles{}, err
	}

	srvTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "wharf", Organization: []string{"Wharf"}},
		NotBefore:   opts.NotBefore,
		NotAfter:    opts.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			srvTmpl.IPAddresses = append(srvTmpl.IPAddresses, ip)
		} else if h != "" {
			srvTmpl.DNSNames = append(srvTmpl.DNSNames, h)
		}
	}
	if err := writeLeaf(f.ServerCert, f.ServerKey, srvTmpl, ca, caKey); err != nil {
		return DevFiles{}, err
	}
	cliTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: opts.ClientName, Organization: []string{"Wharf"}},
		NotBefore:   opts.NotBefore,
		NotAfter:    opts.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := writeLeaf(f.ClientCert, f.ClientKey, cliTmpl, ca, caKey); err != nil {
		return DevFiles{}, err
	}
	return f, nil
}

// writeLeaf makes a key, signs tmpl for it with the CA and writes both.
func writeLeaf(certPath, keyPath string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("making a key: %w", err)
	}
	der, err := sign(tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writePair(certPath, keyPath, der, key)
}

// sign gives tmpl a random serial number and signs it.
func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("making a serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("signing %q: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

// writePair writes a certificate and its key as PEM.
func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding a key: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", certPath, err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", keyPath, err)
	}
	return nil
}
