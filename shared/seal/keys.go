// Package seal is Airlock's one place for the cryptography that protects a
// submission between intake and transfer:
//
//   - clinical key pairs (X25519) and their one-line public key strings;
//   - envelopes: box.SealAnonymous to the clinic's public key, prefixed with a
//     version byte and the recipient's key id;
//   - the binding carried inside the sealed plaintext (submission id, form id,
//     key id), checked by transfer after opening;
//   - row MACs: HMAC-SHA256 under the row key over the envelope and the row's
//     metadata, checked by transfer before anything is opened.
//
// Nothing here invents a cipher: NaCl boxes, SHA-256 and HMAC only.
package seal

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeyID names a clinical key pair: the first 8 bytes of a domain-separated
// SHA-256 of the public key. Rows and envelopes carry it so transfer knows
// which private key opens them.
type KeyID [8]byte

// String is the 16 lower-case hex digits stored in the key_id column.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// ParseKeyID parses the hex form.
func ParseKeyID(s string) (KeyID, error) {
	var id KeyID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, errors.New("key id must be 16 hex digits")
	}
	copy(id[:], b)
	return id, nil
}

func keyIDOf(pub *[32]byte) KeyID {
	h := sha256.New()
	h.Write([]byte("airlock key id v1\x00"))
	h.Write(pub[:])
	var id KeyID
	copy(id[:], h.Sum(nil))
	return id
}

// PublicKey is a clinic's X25519 public key; intake seals to it.
type PublicKey struct {
	ID  KeyID
	Key [32]byte
}

const publicKeyPrefix = "airlock-pk1"

// String is the public key string handed to intake: one line, self-describing
// and checksummed so a mistyped or truncated key is refused at start-up:
//
//	airlock-pk1-<key id, 16 hex>-<key, unpadded base64url>-<checksum, 8 hex>
//
// The checksum is the first 4 bytes of SHA-256 over everything before it.
func (p PublicKey) String() string {
	body := fmt.Sprintf("%s-%s-%s", publicKeyPrefix, p.ID, base64.RawURLEncoding.EncodeToString(p.Key[:]))
	sum := sha256.Sum256([]byte(body))
	return body + "-" + hex.EncodeToString(sum[:4])
}

// publicKeyLen is the length of every public key string: the prefix, a 16-hex
// key id, 43 base64url characters of key, an 8-hex checksum, and 4 dashes.
const publicKeyLen = len(publicKeyPrefix) + 1 + 16 + 1 + 43 + 1 + 8

// ParsePublicKey parses and checks a public key string.
//
// The fields are found by position, not by splitting on "-": the base64url
// alphabet contains "-" itself, so about half of all keys have one in their
// key field.
func ParsePublicKey(s string) (PublicKey, error) {
	var p PublicKey
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, publicKeyPrefix+"-") {
		return p, errors.New("not an Airlock public key string (want airlock-pk1-<id>-<key>-<checksum>)")
	}
	const (
		idAt  = len(publicKeyPrefix) + 1 // start of the key id
		keyAt = idAt + 16 + 1            // start of the key
		sumAt = keyAt + 43 + 1           // start of the checksum
	)
	if len(s) != publicKeyLen || s[keyAt-1] != '-' || s[sumAt-1] != '-' {
		return p, fmt.Errorf("public key string must be %d characters airlock-pk1-<id>-<key>-<checksum>: mistyped or truncated", publicKeyLen)
	}
	body := s[:sumAt-1]
	sum := sha256.Sum256([]byte(body))
	want := hex.EncodeToString(sum[:4])
	if subtle.ConstantTimeCompare([]byte(want), []byte(s[sumAt:])) != 1 {
		return p, errors.New("public key string checksum does not match: mistyped or truncated")
	}
	id, err := ParseKeyID(s[idAt : keyAt-1])
	if err != nil {
		return p, err
	}
	key, err := base64.RawURLEncoding.Strict().DecodeString(s[keyAt : sumAt-1])
	if err != nil || len(key) != 32 {
		return p, errors.New("public key string holds no 32-byte key")
	}
	copy(p.Key[:], key)
	if keyIDOf(&p.Key) != id {
		return PublicKey{}, errors.New("public key string key id does not match its key")
	}
	p.ID = id
	// A key of small order makes every box key all zeros, readable by
	// anyone: Seal refuses it, so refuse it here, where a bad setting is
	// named at start-up instead of failing every submission.
	if smallOrder(&p.Key) {
		return PublicKey{}, errors.New("public key string holds a key of small order, which would seal to a key anyone knows")
	}
	// One key, one spelling: refuse upper-case hex and the like, which only a
	// hand-made string (checksum recomputed) can carry.
	if p.String() != s {
		return PublicKey{}, errors.New("public key string is not in canonical form")
	}
	return p, nil
}

// smallOrder reports whether key is an X25519 point of small order: its
// shared secret with any private key is all zeros, which crypto/ecdh
// refuses.
func smallOrder(key *[32]byte) bool {
	pub, err := ecdh.X25519().NewPublicKey(key[:])
	if err != nil {
		return true
	}
	var one [32]byte
	one[0] = 8 // any valid private scalar: clamping makes it a multiple of the cofactor
	priv, err := ecdh.X25519().NewPrivateKey(one[:])
	if err != nil {
		return true
	}
	shared, err := priv.ECDH(pub)
	clear(shared)
	return err != nil
}

// PrivateKey is a clinic's X25519 private key. Only transfer holds one.
type PrivateKey struct {
	Public PublicKey
	key    [32]byte
	// dh is the same key for crypto/ecdh, made once: opening an envelope is
	// then one X25519 scalar multiplication, where box.OpenAnonymous does two
	// (it derives the private key's public key again on every call).
	dh *ecdh.PrivateKey
}

// GenerateKey makes a new key pair from crypto/rand.
func GenerateKey() (*PrivateKey, error) {
	var k [32]byte
	if _, err := io.ReadFull(rand.Reader, k[:]); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return NewPrivateKey(k)
}

// NewPrivateKey wraps raw private key bytes (as stored in a key file).
func NewPrivateKey(raw [32]byte) (*PrivateKey, error) {
	dh, err := ecdh.X25519().NewPrivateKey(raw[:])
	if err != nil {
		return nil, fmt.Errorf("derive public key: %w", err)
	}
	p := &PrivateKey{key: raw, dh: dh}
	copy(p.Public.Key[:], dh.PublicKey().Bytes())
	p.Public.ID = keyIDOf(&p.Public.Key)
	return p, nil
}

// Bytes returns the raw private key for wrapping into a key file.
func (p *PrivateKey) Bytes() [32]byte { return p.key }

// Wipe zeroes the private key held in p once it is no longer needed (after
// re-wrapping a key file, say); p opens nothing afterwards. Copies the Go
// runtime made meanwhile are out of reach, and so is crypto/ecdh's copy, which
// is only dropped for the collector: this narrows the window, no more.
func (p *PrivateKey) Wipe() {
	clear(p.key[:])
	p.dh = nil
}
