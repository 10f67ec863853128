package clinical

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// SecretKey is CLINICAL_SECRET_KEY: 32 random bytes kept outside the clinical
// database. Purpose-specific keys are derived from it, so the audit chain and
// the TOTP secret encryption never share a key.
type SecretKey [32]byte

// NewSecretKey makes a random secret key.
func NewSecretKey() (SecretKey, error) {
	var k SecretKey
	_, err := rand.Read(k[:])
	return k, err
}

// String is the base64 form printed by `clinical secret-key`.
func (k SecretKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// ParseSecretKey parses the base64 form.
func ParseSecretKey(s string) (SecretKey, error) {
	var k SecretKey
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(s), "="))
	if err != nil || len(b) != len(k) {
		return k, errors.New("must be 32 bytes in base64 (make one with `clinical secret-key`)")
	}
	copy(k[:], b)
	return k, nil
}

// derive returns the subkey for one purpose.
func (k SecretKey) derive(purpose string) []byte {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("airlock clinical " + purpose))
	return m.Sum(nil)
}
