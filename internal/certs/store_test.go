package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// devFiles writes development certificates valid around now.
func devFiles(t *testing.T, dir string, notBefore, notAfter time.Time) DevFiles {
	t.Helper()
	f, err := WriteDev(DevOptions{Dir: dir, Hosts: []string{"localhost", "127.0.0.1"}, ClientName: "alice",
		NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func validDev(t *testing.T, dir string) DevFiles {
	return devFiles(t, dir, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// serveTLS accepts connections on a local listener with cfg and completes
// each handshake; it returns the address and the handshake results.
func serveTLS(t *testing.T, cfg *tls.Config) (string, <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results := make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				err := c.(*tls.Conn).Handshake()
				if err == nil {
					_, err = c.Write([]byte("ok"))
				}
				results <- err
			}()
		}
	}()
	return ln.Addr().String(), results
}

func caPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate")
	}
	return p
}

// dial handshakes with the server and reads its greeting.
func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestServerCertificateAndReload(t *testing.T) {
	dir := t.TempDir()
	f := validDev(t, dir)
	s, err := New(Options{CertFile: f.ServerCert, KeyFile: f.ServerKey})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serveTLS(t, s.ServerConfig())
	client := &tls.Config{RootCAs: caPool(t, f.CACert), ServerName: "localhost"}
	first, err := dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(s.Certificate()) {
		t.Fatal("served certificate is not the loaded one")
	}

	// A broken key file: the reload fails and the old pair stays.
	if err := os.WriteFile(f.ServerKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if again, err := dial(addr, client); err != nil || !again.Equal(first) {
		t.Fatalf("after a failed reload: %v, same certificate %v", err, err == nil && again.Equal(first))
	}

	// New files under the same CA directory: the next handshake has them.
	f2 := validDev(t, dir)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	client.RootCAs = caPool(t, f2.CACert)
	next, err := dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if next.Equal(first) || !next.Equal(s.Certificate()) {
		t.Fatal("reload did not change the served certificate")
	}
}

func TestClientCertificates(t *testing.T) {
	f := validDev(t, t.TempDir())
	s, err := New(Options{CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: f.CACert, ClientAuth: ClientAuthRequired})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serveTLS(t, s.ServerConfig())
	roots := caPool(t, f.CACert)
	good, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{good}}); err != nil {
		t.Fatalf("valid client certificate refused: %v", err)
	}
	if err := <-results; err != nil {
		t.Fatalf("server side: %v", err)
	}

	other := validDev(t, t.TempDir()) // another CA
	stranger, _ := tls.LoadX509KeyPair(other.ClientCert, other.ClientKey)
	expiredFiles := devFiles(t, t.TempDir(), time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	expired, _ := tls.LoadX509KeyPair(expiredFiles.ClientCert, expiredFiles.ClientKey)
	for name, certs := range map[string][]tls.Certificate{"none": nil, "unknown CA": {stranger}} {
		_, err := dial(addr, &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: certs})
		if err == nil {
			t.Errorf("%s: handshake succeeded", name)
		}
		if serr := <-results; serr == nil {
			t.Errorf("%s: server accepted the handshake", name)
		}
	}

	// An expired client certificate from the trusted CA.
	s2, err := New(Options{CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: expiredFiles.CACert, ClientAuth: ClientAuthRequired})
	if err != nil {
		t.Fatal(err)
	}
	addr2, results2 := serveTLS(t, s2.ServerConfig())
	if _, err := dial(addr2, &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{expired}}); err == nil {
		t.Error("expired client certificate accepted")
	}
	var ie x509.CertificateInvalidError
	if serr := <-results2; !errors.As(serr, &ie) || ie.Reason != x509.Expired {
		t.Errorf("server side of an expired certificate: %v", serr)
	}
}

func TestOptionalClientCertificate(t *testing.T) {
	f := validDev(t, t.TempDir())
	s, err := New(Options{CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: f.CACert, ClientAuth: ClientAuthOptional})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serveTLS(t, s.ServerConfig())
	if _, err := dial(addr, &tls.Config{RootCAs: caPool(t, f.CACert), ServerName: "127.0.0.1"}); err != nil {
		t.Fatalf("no client certificate refused in optional mode: %v", err)
	}
	if err := <-results; err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	f := validDev(t, t.TempDir())
	cases := map[string]Options{
		"no key":         {CertFile: f.ServerCert},
		"no CA":          {CertFile: f.ServerCert, KeyFile: f.ServerKey, ClientAuth: ClientAuthRequired},
		"bad mode":       {CertFile: f.ServerCert, KeyFile: f.ServerKey, ClientAuth: "sometimes"},
		"missing file":   {CertFile: filepath.Join(t.TempDir(), "x.crt"), KeyFile: f.ServerKey},
		"mismatched key": {CertFile: f.ServerCert, KeyFile: f.ClientKey},
		"CA not PEM":     {CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: f.ServerKey, ClientAuth: ClientAuthOptional},
	}
	for name, o := range cases {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDevFilesPermissions(t *testing.T) {
	f := validDev(t, t.TempDir())
	for _, k := range []string{f.CAKey, f.ServerKey, f.ClientKey} {
		st, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", filepath.Base(k), st.Mode().Perm())
		}
	}
	cert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf.Subject.CommonName != "alice" {
		t.Errorf("client common name %q", cert.Leaf.Subject.CommonName)
	}
}
