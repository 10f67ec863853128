package seal

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/nacl/box"
	//lint:ignore SA1019 HSalsa20 is the key derivation of NaCl's box (box.Precompute), which this file computes from crypto/ecdh's shared secret.
	"golang.org/x/crypto/salsa20/salsa"
)

// EnvelopeV1 is the only envelope version so far:
//
//	byte 0      version (1)
//	bytes 1..8  recipient key id
//	bytes 9..   box.SealAnonymous(plaintext, recipient public key)
const EnvelopeV1 = 1

const envelopeHeader = 1 + len(KeyID{})

// MaxEnvelope is the largest envelope the intake schema accepts (a CHECK in
// intake migration 000040): four times intake's largest allowed request body
// (MaxBody), so a legitimate submission always fits even with its files
// base64-encoded in the sealed JSON. transfer quarantines a larger row (one
// stored before the CHECK, or by the database owner) by digest, never reading
// it.
const MaxEnvelope = 4 * MaxBody

// MaxBody is the largest request body intake may be configured to take
// (INTAKE_MAX_BODY).
const MaxBody = 16 << 20

// Errors an envelope can fail with; transfer turns each into a quarantine reason.
var (
	ErrEnvelopeVersion = errors.New("unknown envelope version")
	ErrEnvelopeShort   = errors.New("envelope truncated")
	ErrOpen            = errors.New("envelope does not open with this key")
	ErrWrongKey        = errors.New("envelope is sealed to another key id")
)

// Envelope is a parsed, still sealed envelope.
type Envelope struct {
	Version byte
	KeyID   KeyID
	Box     []byte
}

// Seal seals plaintext to pub.
func Seal(pub PublicKey, plaintext []byte) ([]byte, error) {
	out := make([]byte, envelopeHeader, envelopeHeader+len(plaintext)+box.AnonymousOverhead)
	out[0] = EnvelopeV1
	copy(out[1:], pub.ID[:])
	// box.SealAnonymous, with crypto/ecdh doing the X25519 work: the same
	// bytes, in two scalar multiplications where x/crypto's does four.
	//
	// Two is the floor while crypto/ecdh computes the shared secret: its
	// NewPrivateKey (which GenerateKey calls) always derives the public key
	// with the Montgomery ladder, so an ephemeral public key made faster
	// elsewhere (filippo.io/edwards25519's precomputed-table base-point
	// multiplication, ~25 µs against the ladder's ~75 µs here) would be
	// made a second time by the ladder the moment ECDH needs a
	// *ecdh.PrivateKey: more work, not less (issue 14, measured and left
	// alone).
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	recipient, err := ecdh.X25519().NewPublicKey(pub.Key[:])
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	var ephPub [32]byte
	copy(ephPub[:], eph.PublicKey().Bytes())
	key, err := boxKey(eph, recipient)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	defer clear(key[:])
	out = append(out, ephPub[:]...)
	nonce := anonymousNonce(&ephPub, &pub.Key)
	return box.SealAfterPrecomputation(out, plaintext, &nonce, &key), nil
}

// boxKey is box.Precompute: HSalsa20 of the X25519 shared secret. An
// all-zero shared secret (a low-order point) is refused by crypto/ecdh.
func boxKey(priv *ecdh.PrivateKey, peer *ecdh.PublicKey) ([32]byte, error) {
	var key [32]byte
	shared, err := priv.ECDH(peer)
	if err != nil {
		return key, err
	}
	copy(key[:], shared)
	clear(shared)
	var zeros [16]byte
	salsa.HSalsa20(&key, &zeros, &key, &salsa.Sigma)
	return key, nil
}

// anonymousNonce is box.SealAnonymous's nonce: BLAKE2b-192 of the ephemeral
// public key and the recipient's public key.
func anonymousNonce(ephPub, recipient *[32]byte) [24]byte {
	var nonce [24]byte
	h, err := blake2b.New(24, nil)
	if err != nil {
		panic(err) // only for a size outside 1..64
	}
	h.Write(ephPub[:])
	h.Write(recipient[:])
	h.Sum(nonce[:0])
	return nonce
}

// ParseEnvelope reads the header without opening anything.
func ParseEnvelope(b []byte) (Envelope, error) {
	if len(b) < 1 {
		return Envelope{}, ErrEnvelopeShort
	}
	if b[0] != EnvelopeV1 {
		return Envelope{}, ErrEnvelopeVersion
	}
	if len(b) < envelopeHeader+box.AnonymousOverhead {
		return Envelope{}, ErrEnvelopeShort
	}
	e := Envelope{Version: b[0], Box: b[envelopeHeader:]}
	copy(e.KeyID[:], b[1:envelopeHeader])
	return e, nil
}

// Open opens an envelope sealed to p.
func (p *PrivateKey) Open(e Envelope) ([]byte, error) {
	if e.KeyID != p.Public.ID {
		return nil, ErrWrongKey
	}
	// box.OpenAnonymous, with the X25519 key made once (see PrivateKey.dh).
	if p.dh == nil || len(e.Box) < box.AnonymousOverhead {
		return nil, ErrOpen
	}
	var ephPub [32]byte
	copy(ephPub[:], e.Box[:32])
	peer, err := ecdh.X25519().NewPublicKey(ephPub[:])
	if err != nil {
		return nil, ErrOpen
	}
	key, err := boxKey(p.dh, peer)
	if err != nil {
		return nil, ErrOpen
	}
	defer clear(key[:])
	nonce := anonymousNonce(&ephPub, &p.Public.Key)
	out, ok := box.OpenAfterPrecomputation(nil, e.Box[32:], &nonce, &key)
	if !ok {
		return nil, ErrOpen
	}
	return out, nil
}

// Binding ties a sealed plaintext to the row it was stored in. transfer checks
// it after opening, so a ciphertext copied into another row is refused even if
// the copier also had the row key.
type Binding struct {
	SubmissionID string `json:"submission_id"`
	FormID       string `json:"form_id"`
	KeyID        string `json:"key_id"`
}

// Payload is the sealed plaintext of one submission (format version 1).
type Payload struct {
	Version int `json:"v"`
	Binding
	FormVersion string          `json:"form_version"`
	Receipt     string          `json:"receipt"`
	SubmittedAt string          `json:"submitted_at"` // RFC 3339, UTC
	Answers     json.RawMessage `json:"answers"`
	// CorrectionCodeHash is HashCorrectionCode of the correction code shown
	// to the submitter with the receipt; absent in rows sealed before
	// corrections needed a code (such a submission cannot be corrected).
	CorrectionCodeHash string `json:"correction_code_hash,omitempty"`
	// Corrects names the earlier submission this one corrects, as the
	// submitter claimed it; nil for an ordinary submission.
	Corrects *Correction `json:"corrects,omitempty"`
}

// ErrBinding means the opened plaintext does not belong to the row it was in.
var ErrBinding = errors.New("sealed binding does not match the row")

// DecodePayload parses an opened plaintext and checks it against the row's
// binding. Payload.Answers is a copy: the plaintext can be cleared after.
func DecodePayload(plaintext []byte, row Binding) (*Payload, error) {
	p, err := readPayload(plaintext)
	if err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	if p.Version != 1 {
		return nil, fmt.Errorf("payload version %d: %w", p.Version, ErrEnvelopeVersion)
	}
	if p.Binding != row {
		return nil, ErrBinding
	}
	return p, nil
}

// ReceiptAlphabet is the alphabet of receipts: no look-alikes (no I, O, 0, 1).
const ReceiptAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// ValidReceipt reports whether s has the shape intake gives every receipt:
// six groups of four characters of ReceiptAlphabet joined by dashes. transfer
// refuses any other receipt, since only a holder of the row key could have
// sealed one.
func ValidReceipt(s string) bool {
	if len(s) != 29 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i%5 == 4 {
			if s[i] != '-' {
				return false
			}
		} else if !strings.ContainsRune(ReceiptAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
}
