// Package certs owns Wharf's TLS material: the server certificate and key
// and the certificate authorities client certificates are checked against,
// loaded from PEM files and reloaded on demand (SIGHUP), the tls.Config
// every TLS listener serves with, and the self-signed development
// certificates `wharf dev-cert` writes.
//
// # Invariants
//
//   - A Store always holds a certificate and key that were loaded together
//     and match; a reload that fails (a missing file, a key that does not
//     match its certificate, a CA file with no certificate) changes nothing
//     and returns the error, so a bad edit never takes a listener down.
//   - Every handshake reads the material current when it starts: a reload
//     applies to the next connection and never to one already open.
//   - Listeners accept TLS 1.2 and newer only.
//   - With client authentication "required", a client without a
//     certificate, or with one that does not chain to the configured CA or
//     has expired, fails the handshake and reaches no protocol code.
package certs
