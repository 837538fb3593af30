package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net"
	"strconv"
	"strings"
)

// SCRAM (RFC 5802, RFC 7677): the server side of the SCRAM-SHA-256 and
// SCRAM-SHA-512 exchanges, as Kafka's SASL uses them, and the credentials
// a user keeps for them. A credential holds the salt, the iteration count,
// StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey =
// HMAC(SaltedPassword, "Server Key"): enough to check a client's proof and
// prove the server's own knowledge, never enough to log in.

// Mechanism names a SCRAM variant.
type Mechanism string

// The SCRAM mechanisms Wharf serves.
const (
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
)

// ScramMechanisms lists the SCRAM mechanisms, strongest last.
func ScramMechanisms() []Mechanism { return []Mechanism{ScramSHA256, ScramSHA512} }

// scramIterations is the iteration count of new credentials: 4096, what
// Kafka's kafka-configs and RabbitMQ use by default, and RFC 7677's
// minimum.
const scramIterations = 4096

// ScramCredential is what a user keeps for one SCRAM mechanism.
type ScramCredential struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// newHash returns the mechanism's hash function, or nil for an unknown
// mechanism.
func (m Mechanism) newHash() func() hash.Hash {
	switch m {
	case ScramSHA256:
		return sha256.New
	case ScramSHA512:
		return sha512.New
	}
	return nil
}

// NewScramCredential derives a credential for password with a random
// salt.
func NewScramCredential(m Mechanism, password string) (ScramCredential, error) {
	salt := make([]byte, 24)
	if _, err := rand.Read(salt); err != nil {
		return ScramCredential{}, fmt.Errorf("auth: making a SCRAM salt: %w", err)
	}
	return scramCredential(m, password, salt, scramIterations)
}

func scramCredential(m Mechanism, password string, salt []byte, iterations int) (ScramCredential, error) {
	h := m.newHash()
	if h == nil {
		return ScramCredential{}, fmt.Errorf("auth: unknown SCRAM mechanism %q", string(m))
	}
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return ScramCredential{}, fmt.Errorf("auth: deriving a SCRAM key: %w", err)
	}
	clientKey := hmacSum(h, salted, "Client Key")
	stored := h()
	stored.Write(clientKey)
	return ScramCredential{Salt: salt, Iterations: iterations, StoredKey: stored.Sum(nil), ServerKey: hmacSum(h, salted, "Server Key")}, nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	mac := hmac.New(h, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// ErrScram is wrapped by every failure of a SCRAM exchange: a malformed
// message, an unknown user, a wrong proof. Callers answer them all alike.
var ErrScram = errors.New("SCRAM authentication failed")

// ScramServer is the server side of one SCRAM exchange: First answers the
// client-first message, Final checks the client-final one and returns the
// server-final message. It is used by one connection at a time.
type ScramServer struct {
	store  *Store
	mech   Mechanism
	h      func() hash.Hash
	remote net.Addr // counts failures against it (guard.go)

	user        string
	cred        ScramCredential
	known       bool // the user exists and has a credential for mech
	nonce       string
	clientFirst string // client-first-message-bare
	serverFirst string
	done        bool
}

// NewScramServer starts an exchange for mechanism m with a client at
// remote. An address refused for failing too often (guard.go) is refused
// here; a failed proof counts against it.
func (s *Store) NewScramServer(m Mechanism, remote net.Addr) (*ScramServer, error) {
	h := m.newHash()
	if h == nil {
		return nil, fmt.Errorf("%w: unknown mechanism %q", ErrScram, string(m))
	}
	if s.guard.refused(remote) {
		return nil, fmt.Errorf("%w: %w", ErrScram, ErrTooManyFailures)
	}
	return &ScramServer{store: s, mech: m, h: h, remote: remote}, nil
}

// User is the user the client named; it is authenticated once Final
// succeeds.
func (x *ScramServer) User() string { return x.user }

// First reads the client-first message and returns the server-first one.
// An unknown user gets a made-up salt and fails at Final, so the exchange
// does not tell which users exist.
func (x *ScramServer) First(msg []byte) ([]byte, error) {
	if x.serverFirst != "" {
		return nil, fmt.Errorf("%w: client-first message sent twice", ErrScram)
	}
	m := string(msg)
	// gs2-header: "n,," or "y,," (no channel binding), optionally with
	// an authzid that must name the same user.
	var authzid string
	switch {
	case strings.HasPrefix(m, "n,"), strings.HasPrefix(m, "y,"):
		m = m[2:]
	case strings.HasPrefix(m, "p="):
		return nil, fmt.Errorf("%w: channel binding is not supported", ErrScram)
	default:
		return nil, fmt.Errorf("%w: malformed gs2 header", ErrScram)
	}
	i := strings.IndexByte(m, ',')
	if i < 0 {
		return nil, fmt.Errorf("%w: malformed gs2 header", ErrScram)
	}
	if a := m[:i]; a != "" {
		if !strings.HasPrefix(a, "a=") {
			return nil, fmt.Errorf("%w: malformed authzid", ErrScram)
		}
		authzid = a[2:]
	}
	bare := m[i+1:]
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fmt.Errorf("%w: client-first message wants n= and r=", ErrScram)
	}
	for _, ext := range attrs[2:] {
		// Kafka's delegation tokens announce themselves as an extension;
		// no other extension is defined.
		if ext != "" && !strings.HasPrefix(ext, "tokenauth=false") {
			return nil, fmt.Errorf("%w: unsupported extension %q", ErrScram, ext)
		}
	}
	user, err := scramName(attrs[0][2:])
	if err != nil {
		return nil, err
	}
	if authzid != "" {
		if az, err := scramName(authzid); err != nil || az != user {
			return nil, fmt.Errorf("%w: authzid differs from the user", ErrScram)
		}
	}
	cnonce := attrs[1][2:]
	if cnonce == "" || strings.ContainsAny(cnonce, ",") || !printable(cnonce) {
		return nil, fmt.Errorf("%w: malformed client nonce", ErrScram)
	}
	snonce := make([]byte, 18)
	if _, err := rand.Read(snonce); err != nil {
		return nil, fmt.Errorf("auth: making a SCRAM nonce: %w", err)
	}
	x.user, x.clientFirst = user, bare
	x.nonce = cnonce + base64.RawURLEncoding.EncodeToString(snonce)
	x.cred, x.known = x.store.scramCredential(user, x.mech)
	if !x.known {
		x.cred = x.store.decoyCredential(user, x.mech)
	}
	x.serverFirst = "r=" + x.nonce + ",s=" + base64.StdEncoding.EncodeToString(x.cred.Salt) + ",i=" + strconv.Itoa(x.cred.Iterations)
	return []byte(x.serverFirst), nil
}

// Final reads the client-final message and, if its proof is right,
// returns the server-final message; the user is then authenticated.
func (x *ScramServer) Final(msg []byte) ([]byte, error) {
	if x.serverFirst == "" || x.done {
		return nil, fmt.Errorf("%w: client-final message out of order", ErrScram)
	}
	x.done = true
	m := string(msg)
	i := strings.LastIndex(m, ",p=")
	if i < 0 {
		return nil, fmt.Errorf("%w: client-final message without a proof", ErrScram)
	}
	withoutProof := m[:i]
	proof, err := base64.StdEncoding.DecodeString(m[i+3:])
	if err != nil {
		return nil, fmt.Errorf("%w: malformed proof", ErrScram)
	}
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fmt.Errorf("%w: client-final message wants c= and r=", ErrScram)
	}
	cb, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil || !(strings.HasPrefix(string(cb), "n,") || strings.HasPrefix(string(cb), "y,")) {
		return nil, fmt.Errorf("%w: unexpected channel binding", ErrScram)
	}
	// The final nonce must end with the combined one, as Kafka's own
	// SCRAM server checks: librdkafka sends its nonce before it again.
	if !strings.HasSuffix(attrs[1][2:], x.nonce) {
		return nil, fmt.Errorf("%w: nonce mismatch", ErrScram)
	}
	auth := x.clientFirst + "," + x.serverFirst + "," + withoutProof
	sig := hmacSum(x.h, x.cred.StoredKey, auth)
	if len(proof) != len(sig) {
		return nil, fmt.Errorf("%w: user '%s': invalid proof", ErrScram, x.user)
	}
	clientKey := make([]byte, len(sig))
	for j := range sig {
		clientKey[j] = proof[j] ^ sig[j]
	}
	h := x.h()
	h.Write(clientKey)
	if subtle.ConstantTimeCompare(h.Sum(nil), x.cred.StoredKey) != 1 || !x.known {
		x.store.guard.failed(x.remote)
		return nil, fmt.Errorf("%w: user '%s': %w", ErrScram, x.user, ErrInvalidCredentials)
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(x.h, x.cred.ServerKey, auth))), nil
}

// scramName decodes a SCRAM saslname: "=2C" is ',' and "=3D" is '='; any
// other '=' is an error.
func scramName(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty user name", ErrScram)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: malformed user name", ErrScram)
		}
		i += 2
	}
	return b.String(), nil
}

// printable reports whether s is printable ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
