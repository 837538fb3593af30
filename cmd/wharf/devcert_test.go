package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/buildinfo"
)

// TestDevCert writes the development certificates and checks that the
// server pair loads, chains to the CA for 127.0.0.1, and that the client
// certificate carries the requested name.
func TestDevCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	root := newRootCmd(buildinfo.Info{}, noEnv)
	var stdout strings.Builder
	root.SetOut(&stdout)
	root.SetArgs([]string{"dev-cert", "--dir", dir, "--client", "alice", "--days", "2"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "--tls-cert-file "+filepath.Join(dir, "server.crt")) {
		t.Errorf("output lacks the serve settings:\n%s", stdout.String())
	}
	srv, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	if _, err := srv.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("server certificate does not verify for 127.0.0.1: %v", err)
	}
	if d := time.Until(srv.Leaf.NotAfter); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("server certificate valid for %v more, want about 2 days", d)
	}
	cli, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	if cli.Leaf.Subject.CommonName != "alice" {
		t.Errorf("client certificate name %q", cli.Leaf.Subject.CommonName)
	}

	root = newRootCmd(buildinfo.Info{}, noEnv)
	root.SetArgs([]string{"dev-cert", "--dir", dir, "--days", "0"})
	if err := root.Execute(); err == nil {
		t.Error("--days 0 accepted")
	}
}

// TestSIGHUPReloads sends SIGHUP to the process and expects one reload
// request.
func TestSIGHUPReloads(t *testing.T) {
	reload, stop := notifyReload()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reload:
	case <-time.After(30 * time.Second):
		t.Fatal("SIGHUP did not ask for a reload")
	}
}
