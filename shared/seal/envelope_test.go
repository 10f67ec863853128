package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	k := fixedKeyWhere(t, "round trip", func(f string) bool { return strings.Contains(f, "-") })
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"payload", []byte(`{"v":1,"answers":{}}`)},
		{"64 KiB", bytes.Repeat([]byte{0xA5}, 64<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := Seal(k.Public, tt.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if want := envelopeHeader + box.AnonymousOverhead + len(tt.plaintext); len(env) != want {
				t.Fatalf("envelope is %d bytes, want %d", len(env), want)
			}
			if env[0] != EnvelopeV1 || !bytes.Equal(env[1:envelopeHeader], k.Public.ID[:]) {
				t.Fatalf("envelope header %x, want version 1 and key id %s", env[:envelopeHeader], k.Public.ID)
			}
			// (Short plaintexts turn up in random bytes by chance.)
			if len(tt.plaintext) >= 16 && bytes.Contains(env, tt.plaintext) {
				t.Fatal("envelope contains the plaintext")
			}
			e, err := ParseEnvelope(env)
			if err != nil {
				t.Fatal(err)
			}
			if e.Version != EnvelopeV1 || e.KeyID != k.Public.ID {
				t.Fatalf("ParseEnvelope header = %d, %s", e.Version, e.KeyID)
			}
			got, err := k.Open(e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Open = %q, want %q", got, tt.plaintext)
			}
			again, err := Seal(k.Public, tt.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(again, env) {
				t.Fatal("two seals of the same plaintext are identical: no fresh ephemeral key")
			}
		})
	}
}

func TestParseEnvelopeDenials(t *testing.T) {
	t.Parallel()
	k := fixedKey(t, "parse envelope")
	env, err := Seal(k.Public, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	withVersion := func(v byte) []byte {
		b := bytes.Clone(env)
		b[0] = v
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrEnvelopeShort},
		{"empty", []byte{}, ErrEnvelopeShort},
		{"version byte only", env[:1], ErrEnvelopeShort},
		{"header cut", env[:envelopeHeader-1], ErrEnvelopeShort},
		{"header only", env[:envelopeHeader], ErrEnvelopeShort},
		{"box one byte short of its overhead", env[:envelopeHeader+box.AnonymousOverhead-1], ErrEnvelopeShort},
		{"version 0", withVersion(0), ErrEnvelopeVersion},
		{"version 2", withVersion(2), ErrEnvelopeVersion},
		{"version 255", withVersion(255), ErrEnvelopeVersion},
		{"unknown version, short", []byte{2}, ErrEnvelopeVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseEnvelope(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("ParseEnvelope(%x) error %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestOpenDenials(t *testing.T) {
	t.Parallel()
	k := fixedKey(t, "open denials")
	other := fixedKey(t, "open denials other")
	plaintext := []byte(`{"v":1,"answers":{"name":["x"]}}`)
	env, err := Seal(k.Public, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int, bit byte) []byte {
		b := bytes.Clone(env)
		b[i] ^= bit
		return b
	}
	// Box layout: ephemeral public key (32), Poly1305 tag (16), ciphertext.
	boxAt := envelopeHeader
	tests := []struct {
		name string
		env  []byte
		key  *PrivateKey
		want error
	}{
		{"bit flipped in ephemeral key", flip(boxAt, 0x01), k, ErrOpen},
		{"bit flipped in ephemeral key, high bit", flip(boxAt+31, 0x40), k, ErrOpen},
		{"bit flipped in tag", flip(boxAt+32, 0x80), k, ErrOpen},
		{"bit flipped in ciphertext", flip(boxAt+box.AnonymousOverhead, 0x01), k, ErrOpen},
		{"bit flipped in last byte", flip(len(env)-1, 0x10), k, ErrOpen},
		{"truncated by one byte", env[:len(env)-1], k, ErrOpen},
		{"ciphertext cut off, tag kept", env[:envelopeHeader+box.AnonymousOverhead], k, ErrOpen},
		{"byte appended", append(bytes.Clone(env), 0), k, ErrOpen},
		{"another private key", env, other, ErrWrongKey},
		{"another private key, header id forged to match", func() []byte {
			b := bytes.Clone(env)
			copy(b[1:envelopeHeader], other.Public.ID[:])
			return b
		}(), other, ErrOpen},
		{"header id changed, own key", func() []byte {
			b := bytes.Clone(env)
			copy(b[1:envelopeHeader], other.Public.ID[:])
			return b
		}(), k, ErrWrongKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := ParseEnvelope(tt.env)
			if err != nil {
				t.Fatalf("ParseEnvelope: %v", err)
			}
			got, err := tt.key.Open(e)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Fatalf("Open returned %q with its error", got)
			}
		})
	}
	// The untouched envelope still opens: the denials are the changes' doing.
	e, _ := ParseEnvelope(env)
	if got, err := k.Open(e); err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("untouched envelope: %q, %v", got, err)
	}
}

// TestOpenHandMadeEnvelope: an Envelope built without ParseEnvelope, with a
// box shorter than its overhead, is refused rather than panicking.
func TestOpenHandMadeEnvelope(t *testing.T) {
	t.Parallel()
	k := fixedKey(t, "hand made")
	for _, n := range []int{0, 1, box.AnonymousOverhead - 1, box.AnonymousOverhead} {
		e := Envelope{Version: EnvelopeV1, KeyID: k.Public.ID, Box: make([]byte, n)}
		if _, err := k.Open(e); !errors.Is(err, ErrOpen) {
			t.Errorf("Open of a %d-byte box: %v, want ErrOpen", n, err)
		}
	}
}

func testPayload(b Binding) []byte {
	p, err := json.Marshal(Payload{
		Version:     1,
		Binding:     b,
		FormVersion: "2",
		Receipt:     "ABCD-EFGH-JKLM-NPQR-STUV-WXYZ",
		SubmittedAt: "2025-03-04T05:06:07.123456Z",
		Answers:     json.RawMessage(`{"name":[{"valueString":"x"}]}`),
	})
	if err != nil {
		panic(err)
	}
	return p
}

func TestDecodePayload(t *testing.T) {
	t.Parallel()
	row := Binding{
		SubmissionID: "0b0d6f4e-3c2a-4f7e-9a51-6d2c1b0e8f73",
		FormID:       "adult-intake",
		KeyID:        fixedKey(t, "payload").Public.ID.String(),
	}
	good := testPayload(row)
	p, err := DecodePayload(good, row)
	if err != nil {
		t.Fatal(err)
	}
	if p.Binding != row || p.Version != 1 || p.FormVersion != "2" || p.Receipt != "ABCD-EFGH-JKLM-NPQR-STUV-WXYZ" ||
		p.SubmittedAt != "2025-03-04T05:06:07.123456Z" || string(p.Answers) != `{"name":[{"valueString":"x"}]}` {
		t.Fatalf("DecodePayload = %+v", p)
	}

	with := func(f func(*Binding)) Binding {
		b := row
		f(&b)
		return b
	}
	otherKey := fixedKey(t, "payload other").Public.ID.String()
	tests := []struct {
		name      string
		plaintext []byte
		row       Binding
		want      error // nil: any error but ErrBinding and ErrEnvelopeVersion
	}{
		{"submission id differs", good, with(func(b *Binding) { b.SubmissionID = "0b0d6f4e-3c2a-4f7e-9a51-6d2c1b0e8f74" }), ErrBinding},
		{"form id differs", good, with(func(b *Binding) { b.FormID = "child-intake" }), ErrBinding},
		{"key id differs", good, with(func(b *Binding) { b.KeyID = otherKey }), ErrBinding},
		{"key id in upper case", good, with(func(b *Binding) { b.KeyID = strings.ToUpper(row.KeyID) }), ErrBinding},
		{"row has no binding", good, Binding{}, ErrBinding},
		{"payload has no binding", testPayload(Binding{}), row, ErrBinding},
		{"payload from another row", testPayload(with(func(b *Binding) { b.SubmissionID = "other" })), row, ErrBinding},
		{"version 0 (missing)", []byte(`{"submission_id":"x"}`), row, ErrEnvelopeVersion},
		{"version 2", bytes.Replace(good, []byte(`"v":1`), []byte(`"v":2`), 1), row, ErrEnvelopeVersion},
		{"not JSON", []byte("\x00\x01"), row, nil},
		{"empty", nil, row, nil},
		{"JSON array", []byte(`[1]`), row, nil},
		{"binding of the wrong type", []byte(`{"v":1,"submission_id":7}`), row, nil},
		{"truncated", good[:len(good)-1], row, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := DecodePayload(tt.plaintext, tt.row)
			if err == nil {
				t.Fatalf("DecodePayload accepted: %+v", p)
			}
			if p != nil {
				t.Fatal("DecodePayload returned a payload with its error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("DecodePayload error %v, want %v", err, tt.want)
			}
			if tt.want == nil && (errors.Is(err, ErrBinding) || errors.Is(err, ErrEnvelopeVersion)) {
				t.Fatalf("DecodePayload error %v, want a decode error", err)
			}
		})
	}
}

// TestSwappedEnvelope: a whole envelope moved into another row (with its MAC
// recomputed by someone holding the row key) opens, but its binding refuses it.
func TestSwappedEnvelope(t *testing.T) {
	t.Parallel()
	k := fixedKey(t, "swap")
	a := Binding{SubmissionID: "a", FormID: "adult-intake", KeyID: k.Public.ID.String()}
	b := Binding{SubmissionID: "b", FormID: "adult-intake", KeyID: k.Public.ID.String()}
	envA, err := Seal(k.Public, testPayload(a))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEnvelope(envA)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := k.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodePayload(plain, b); !errors.Is(err, ErrBinding) {
		t.Fatalf("envelope of row a decoded under row b: %v, want ErrBinding", err)
	}
	if _, err := DecodePayload(plain, a); err != nil {
		t.Fatalf("envelope of row a under row a: %v", err)
	}
}

// TestEnvelopeIsNaClSealedBox pins Seal and Open (crypto/ecdh underneath) to
// x/crypto's box.SealAnonymous and box.OpenAnonymous, both ways: the format
// is NaCl's sealed box, whoever computes it.
func TestEnvelopeIsNaClSealedBox(t *testing.T) {
	t.Parallel()
	k := fixedKey(t, "nacl sealed box")
	raw := k.Bytes()
	plaintext := []byte(`{"v":1,"answers":{"family-name":[{"valueString":"Ngata"}]}}`)
	for range 20 {
		env, err := Seal(k.Public, plaintext)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := box.OpenAnonymous(nil, env[envelopeHeader:], &k.Public.Key, &raw)
		if !ok || !bytes.Equal(got, plaintext) {
			t.Fatalf("box.OpenAnonymous of Seal's envelope: %v %q", ok, got)
		}
		theirs, err := box.SealAnonymous(bytes.Clone(env[:envelopeHeader]), plaintext, &k.Public.Key, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ParseEnvelope(theirs)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Open(e); err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("Open of box.SealAnonymous's envelope: %v %q", err, got)
		}
	}
}

// TestOpenRefusesLowOrderEphemeralKey: an ephemeral key of low order makes
// the shared secret all zeros, a key anyone can compute; such a box never
// opens (x/crypto's box would open one sealed under the zero key).
func TestOpenRefusesLowOrderEphemeralKey(t *testing.T) {
	t.Parallel()
	k := fixedKey(t, "low order")
	var zeroKey, ephPub [32]byte // ephPub: the point 0, of low order
	// x/crypto's box derives the key from an all-zero shared secret here.
	box.Precompute(&zeroKey, &ephPub, new([32]byte))
	n := anonymousNonce(&ephPub, &k.Public.Key)
	b := box.SealAfterPrecomputation(ephPub[:], []byte("forged"), &n, &zeroKey)
	if _, err := k.Open(Envelope{Version: EnvelopeV1, KeyID: k.Public.ID, Box: b}); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open of a box under a low-order ephemeral key: %v, want ErrOpen", err)
	}
}

// TestWipedKeyOpensNothing: after Wipe the key opens nothing.
func TestWipedKeyOpensNothing(t *testing.T) {
	t.Parallel()
	k := fixedKey(t, "wiped")
	env, err := Seal(k.Public, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ParseEnvelope(env)
	k.Wipe()
	if _, err := k.Open(e); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with a wiped key: %v, want ErrOpen", err)
	}
}
