package auth

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"regexp"

	"github.com/golang-jwt/jwt/v5"
)

// ErrNoJWTKeys is returned by VerifyJWT when no key was configured.
var ErrNoJWTKeys = errors.New("JWT authentication is not configured")

// JWTClaims are what Wharf reads from a verified token.
type JWTClaims struct {
	// Subject (sub) is the client id.
	Subject string
	// Broadcast is the custom claim "broadcast": the holder may send to
	// every WebSocket connection.
	Broadcast bool
	// Read and Write narrow the subject's permissions (the custom claim
	// "permissions": {"read": "...", "write": "..."}, regular expressions
	// over resource names): an access needs both the user's permission
	// and a match here. Nil does not narrow; an empty expression allows
	// nothing.
	Read, Write *regexp.Regexp
}

// jwtPermissions is the "permissions" claim.
type jwtPermissions struct {
	Read  *string `json:"read"`
	Write *string `json:"write"`
}

// narrowing compiles one expression of the claim: nil when absent, one
// that matches nothing when empty.
func narrowing(name string, expr *string) (*regexp.Regexp, error) {
	switch {
	case expr == nil:
		return nil, nil
	case *expr == "":
		return regexp.MustCompile(`^\b\B$`), nil // matches nothing
	}
	re, err := regexp.Compile(*expr)
	if err != nil {
		return nil, fmt.Errorf("invalid token: permissions.%s: %w", name, err)
	}
	return re, nil
}

// JWTVerifier checks HS256 and RS256 tokens against configured keys. The
// zero value verifies nothing; it is safe for concurrent use.
type JWTVerifier struct {
	hmacKey []byte
	rsaKey  *rsa.PublicKey
}

// NewJWTVerifier reads the keys: an HS256 shared secret (the whole file,
// trailing newline removed) and an RS256 public key (PEM). Either file name
// may be empty.
func NewJWTVerifier(hmacSecretFile, rsaPublicKeyFile string) (*JWTVerifier, error) {
	v := &JWTVerifier{}
	if hmacSecretFile != "" {
		b, err := os.ReadFile(hmacSecretFile)
		if err != nil {
			return nil, fmt.Errorf("reading the HS256 secret: %w", err)
		}
		for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
			b = b[:len(b)-1]
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("the HS256 secret in %s has %d bytes; use at least 32", hmacSecretFile, len(b))
		}
		v.hmacKey = b
	}
	if rsaPublicKeyFile != "" {
		b, err := os.ReadFile(rsaPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading the RS256 public key: %w", err)
		}
		k, err := jwt.ParseRSAPublicKeyFromPEM(b)
		if err != nil {
			return nil, fmt.Errorf("parsing the RS256 public key in %s: %w", rsaPublicKeyFile, err)
		}
		v.rsaKey = k
	}
	return v, nil
}

// NewJWTVerifierKeys is NewJWTVerifier with the keys themselves.
func NewJWTVerifierKeys(hmacSecret []byte, rsaKey *rsa.PublicKey) *JWTVerifier {
	return &JWTVerifier{hmacKey: hmacSecret, rsaKey: rsaKey}
}

// Enabled reports whether any key is configured.
func (v *JWTVerifier) Enabled() bool { return v != nil && (v.hmacKey != nil || v.rsaKey != nil) }

type wharfClaims struct {
	jwt.RegisteredClaims
	Broadcast   bool            `json:"broadcast,omitempty"`
	Permissions *jwtPermissions `json:"permissions,omitempty"`
}

// VerifyJWT checks a token's signature (HS256 or RS256, whichever key is
// configured for the token's alg), its expiry and not-before times, and
// that it names a subject.
func (v *JWTVerifier) VerifyJWT(token string) (JWTClaims, error) {
	if !v.Enabled() {
		return JWTClaims{}, ErrNoJWTKeys
	}
	var c wharfClaims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case "HS256":
			if v.hmacKey != nil {
				return v.hmacKey, nil
			}
		case "RS256":
			if v.rsaKey != nil {
				return v.rsaKey, nil
			}
		}
		return nil, fmt.Errorf("no key for alg %s", t.Method.Alg())
	}, jwt.WithValidMethods([]string{"HS256", "RS256"}), jwt.WithLeeway(0))
	if err != nil {
		return JWTClaims{}, fmt.Errorf("invalid token: %w", err)
	}
	if c.Subject == "" {
		return JWTClaims{}, errors.New("invalid token: no sub claim")
	}
	out := JWTClaims{Subject: c.Subject, Broadcast: c.Broadcast}
	if p := c.Permissions; p != nil {
		if out.Read, err = narrowing("read", p.Read); err != nil {
			return JWTClaims{}, err
		}
		if out.Write, err = narrowing("write", p.Write); err != nil {
			return JWTClaims{}, err
		}
	}
	return out, nil
}
