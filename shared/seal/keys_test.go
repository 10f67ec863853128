package seal

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestNewPrivateKeyRFC7748 pins key derivation to the X25519 test vector of
// RFC 7748 section 6.1 (Alice's key pair).
func TestNewPrivateKeyRFC7748(t *testing.T) {
	t.Parallel()
	var raw [32]byte
	hex.Decode(raw[:], []byte("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	k, err := NewPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	const wantPub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	if got := hex.EncodeToString(k.Public.Key[:]); got != wantPub {
		t.Fatalf("public key %s, want %s", got, wantPub)
	}
	if k.Bytes() != raw {
		t.Fatal("Bytes does not return the raw private key")
	}
	if k.Public.ID != keyIDOf(&k.Public.Key) {
		t.Fatal("key id is not derived from the public key")
	}
}

func TestPublicKeyStringRoundTrip(t *testing.T) {
	t.Parallel()
	// The base64url alphabet holds "-" and "_": keys whose key field carries
	// them (about half of all keys carry a "-") must parse like any other.
	tests := []struct {
		name string
		key  *PrivateKey
	}{
		{"plain", fixedKeyWhere(t, "plain", func(f string) bool { return !strings.ContainsAny(f, "-_") })},
		{"dash inside", fixedKeyWhere(t, "dash", func(f string) bool { return strings.Contains(f[1:], "-") })},
		{"dash first", fixedKeyWhere(t, "dash first", func(f string) bool { return f[0] == '-' })},
		{"two dashes", fixedKeyWhere(t, "two dashes", func(f string) bool { return strings.Count(f, "-") >= 2 })},
		{"underscore", fixedKeyWhere(t, "underscore", func(f string) bool { return strings.Contains(f, "_") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.key.Public.String()
			if len(s) != publicKeyLen {
				t.Fatalf("String() is %d characters, want %d: %s", len(s), publicKeyLen, s)
			}
			for _, in := range []string{s, " " + s + "\n", "\t" + s + "\r\n"} {
				got, err := ParsePublicKey(in)
				if err != nil {
					t.Fatalf("ParsePublicKey(%q): %v", in, err)
				}
				if got != tt.key.Public {
					t.Fatalf("ParsePublicKey(%q) = %+v, want %+v", in, got, tt.key.Public)
				}
			}
		})
	}
}

// TestPublicKeyStringRoundTripRandom covers many fresh keys, as `transfer
// keys generate` makes them.
func TestPublicKeyStringRoundTripRandom(t *testing.T) {
	t.Parallel()
	dashes := 0
	for range 500 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(keyField(k.Public.String()), "-") {
			dashes++
		}
		got, err := ParsePublicKey(k.Public.String())
		if err != nil {
			t.Fatalf("ParsePublicKey(%s): %v", k.Public, err)
		}
		if got != k.Public {
			t.Fatalf("round trip of %s changed the key", k.Public)
		}
	}
	// About half of all keys have a "-" in the key field; 500 keys with
	// none would mean the test no longer covers them.
	if dashes == 0 {
		t.Fatal("no generated key had a '-' in its key field")
	}
}

func TestParsePublicKeyDenials(t *testing.T) {
	t.Parallel()
	k := fixedKeyWhere(t, "denials", func(f string) bool { return strings.Contains(f, "-") })
	other := fixedKey(t, "denials other")
	s := k.Public.String()
	body := s[:testSumAt-1]
	idField := s[testIDAt : testKeyAt-1]
	kf := keyField(s)

	// A key field whose last character has non-zero padding bits decodes
	// (leniently) to the same key: the strict decoder refuses it.
	lastBits := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", kf[42])
	sloppyLast := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[lastBits|1]

	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "not an Airlock public key"},
		{"wrong prefix version", "airlock-pk2" + s[len(publicKeyPrefix):], "not an Airlock public key"},
		{"wrong prefix kind", "airlock-sk1" + s[len(publicKeyPrefix):], "not an Airlock public key"},
		{"upper-case prefix", strings.ToUpper(s[:len(publicKeyPrefix)]) + s[len(publicKeyPrefix):], "not an Airlock public key"},
		{"prefix only", publicKeyPrefix + "-", "mistyped or truncated"},
		{"truncated by one", s[:len(s)-1], "mistyped or truncated"},
		{"truncated checksum", s[:testSumAt+2], "mistyped or truncated"},
		{"no checksum", body, "mistyped or truncated"},
		{"one character dropped inside", s[:40] + s[41:], "mistyped or truncated"},
		{"one character added", s[:40] + "A" + s[40:], "mistyped or truncated"},
		{"trailing garbage", s + "0", "mistyped or truncated"},
		{"two keys pasted", s + " " + s, "mistyped or truncated"},
		{"checksum digit changed", changeChar(s, len(s)-1), "checksum"},
		{"id digit changed", changeChar(s, testIDAt), "checksum"},
		{"key character changed", changeChar(s, testKeyAt), "checksum"},
		{"upper-case checksum", s[:testSumAt] + strings.ToUpper(s[testSumAt:]), "checksum"},
		{"id of another key, checksum recomputed",
			withChecksum(s[:testIDAt] + other.Public.ID.String() + "-" + kf), "key id does not match"},
		{"key of another key, checksum recomputed",
			withChecksum(s[:testKeyAt] + keyField(other.Public.String())), "key id does not match"},
		{"id not hex, checksum recomputed",
			withChecksum(s[:testIDAt] + "zz" + idField[2:] + "-" + kf), "16 hex digits"},
		{"key not base64url, checksum recomputed",
			withChecksum(s[:testKeyAt] + "+" + kf[1:]), "no 32-byte key"},
		{"key with padding, checksum recomputed",
			withChecksum(s[:testKeyAt] + kf[:42] + "="), "no 32-byte key"},
		{"key with non-zero padding bits, checksum recomputed",
			withChecksum(s[:testKeyAt] + kf[:42] + string(sloppyLast)), "no 32-byte key"},
		{"upper-case id, checksum recomputed",
			withChecksum(s[:testIDAt] + strings.ToUpper(idField) + "-" + kf), "canonical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.in == s {
				t.Fatal("test case does not change the key string")
			}
			got, err := ParsePublicKey(tt.in)
			if err == nil {
				t.Fatalf("ParsePublicKey(%q) = %v, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParsePublicKey(%q) error %q, want it to mention %q", tt.in, err, tt.wantErr)
			}
			if got != (PublicKey{}) {
				t.Fatalf("ParsePublicKey(%q) returned a key with its error", tt.in)
			}
		})
	}
}

// TestParsePublicKeyEverySubstitution: every single-character typo anywhere
// in the string is refused.
func TestParsePublicKeyEverySubstitution(t *testing.T) {
	t.Parallel()
	s := fixedKeyWhere(t, "typo", func(f string) bool { return strings.Contains(f, "-") }).Public.String()
	const alphabet = "0123456789abcdefABCDEF-_xyzXYZ= ."
	for i := range len(s) {
		for _, c := range []byte(alphabet) {
			if s[i] == c {
				continue
			}
			in := s[:i] + string(c) + s[i+1:]
			if _, err := ParsePublicKey(in); err == nil {
				t.Errorf("ParsePublicKey accepted %q (position %d changed to %q)", in, i, c)
			}
		}
	}
}

func TestParseKeyID(t *testing.T) {
	t.Parallel()
	id := fixedKey(t, "key id").Public.ID
	got, err := ParseKeyID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseKeyID(%s) = %v, %v", id, got, err)
	}
	if s := id.String(); len(s) != 16 || strings.ToLower(s) != s {
		t.Fatalf("KeyID.String() = %q, want 16 lower-case hex digits", s)
	}
	for _, in := range []string{"", id.String()[:15], id.String() + "0", "zz" + id.String()[2:], id.String()[:14] + "-1"} {
		if _, err := ParseKeyID(in); err == nil {
			t.Errorf("ParseKeyID(%q) accepted", in)
		}
	}
}

// changeChar replaces s[i] with another character of the same kind (hex
// digit or base64url letter), as a typo would.
func changeChar(s string, i int) string {
	c := byte('a')
	if s[i] == 'a' {
		c = 'b'
	}
	return s[:i] + string(c) + s[i+1:]
}
