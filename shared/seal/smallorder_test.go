package seal

import (
	"strings"
	"testing"
)

// TestSealRefusesSmallOrderRecipient: with a recipient key of small order
// every box key is all zeros, readable by anyone; Seal refuses it
// (box.SealAnonymous, used before, sealed under the all-zero key).
func TestSealRefusesSmallOrderRecipient(t *testing.T) {
	t.Parallel()
	for _, k := range [][32]byte{
		{},  // 0
		{1}, // 1
		// The point of order 8 (RFC 7748 section 6.1 names the others).
		{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
			0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	} {
		pub := PublicKey{Key: k, ID: keyIDOf(&k)}
		if env, err := Seal(pub, []byte("secret")); err == nil {
			t.Fatalf("sealed to small-order key %x: %x", k, env)
		}
	}
}

// TestParsePublicKeyRefusesSmallOrder: a well-formed public key string
// (right checksum, canonical) whose key is of small order is refused when
// parsed, so intake names INTAKE_RECIPIENTS at start-up instead of failing
// every submission.
func TestParsePublicKeyRefusesSmallOrder(t *testing.T) {
	t.Parallel()
	for _, k := range [][32]byte{{}, {1}} {
		s := PublicKey{Key: k, ID: keyIDOf(&k)}.String()
		if _, err := ParsePublicKey(s); err == nil || !strings.Contains(err.Error(), "small order") {
			t.Errorf("ParsePublicKey of small-order key %x: %v, want a small-order error", k, err)
		}
	}
	good := fixedKey(t, "not small").Public
	if _, err := ParsePublicKey(good.String()); err != nil {
		t.Errorf("a real key: %v", err)
	}
}
