package seal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

// Offsets of the fields of a public key string:
// airlock-pk1-<id 16>-<key 43>-<checksum 8>.
const (
	testIDAt  = len(publicKeyPrefix) + 1
	testKeyAt = testIDAt + 16 + 1
	testSumAt = testKeyAt + 43 + 1
)

// fixedKey derives a private key from seed, so tests are repeatable without
// storing key material in the source.
func fixedKey(tb testing.TB, seed string) *PrivateKey {
	tb.Helper()
	k, err := NewPrivateKey(sha256.Sum256([]byte(seed)))
	if err != nil {
		tb.Fatalf("NewPrivateKey(%q): %v", seed, err)
	}
	return k
}

// keyField is the base64url key field of a public key string.
func keyField(s string) string { return s[testKeyAt : testSumAt-1] }

// fixedKeyWhere returns the first fixedKey(seed+n) whose public key string's
// key field satisfies ok: deterministic, and cheap for any property that one
// key in a few hundred has.
func fixedKeyWhere(tb testing.TB, seed string, ok func(keyField string) bool) *PrivateKey {
	tb.Helper()
	for n := range 100000 {
		k := fixedKey(tb, fmt.Sprintf("%s %d", seed, n))
		if ok(keyField(k.Public.String())) {
			return k
		}
	}
	tb.Fatalf("no key found for %q", seed)
	return nil
}

// withChecksum appends a correct checksum to a hand-made body, so a test can
// reach the checks behind the checksum.
func withChecksum(body string) string {
	sum := sha256.Sum256([]byte(body))
	return body + "-" + hex.EncodeToString(sum[:4])
}
