package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

// FuzzParsePublicKey: a public key string comes from configuration; whatever
// it holds, parsing must not panic, and anything accepted must be the one
// canonical spelling of a key whose id matches.
func FuzzParsePublicKey(f *testing.F) {
	for _, seed := range []string{"x", "dash", "underscore"} {
		f.Add(fixedKey(f, seed).Public.String())
	}
	s := fixedKeyWhere(f, "fuzz dash", func(k string) bool { return strings.Contains(k, "-") }).Public.String()
	f.Add(s)
	f.Add(" " + s + "\n")
	f.Add(s[:len(s)-1])
	f.Add(s + "-")
	f.Add(strings.ReplaceAll(s, "-", "--"))
	f.Add("airlock-pk1-----")
	f.Add("airlock-pk1-")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePublicKey(in)
		if err != nil {
			if p != (PublicKey{}) {
				t.Fatalf("error %v with a non-zero key", err)
			}
			return
		}
		if p.String() != strings.TrimSpace(in) {
			t.Fatalf("accepted %q, which is not the canonical %q", in, p.String())
		}
		if keyIDOf(&p.Key) != p.ID {
			t.Fatalf("accepted %q with a key id not derived from its key", in)
		}
	})
}

// FuzzParseEnvelope: envelopes come from the intake database, which an
// attacker may control. Parsing and opening must never panic, and nothing
// but a genuine envelope may open.
func FuzzParseEnvelope(f *testing.F) {
	k := fixedKey(f, "fuzz envelope")
	for _, plain := range [][]byte{nil, []byte("x"), []byte(`{"v":1}`), bytes.Repeat([]byte("a"), 300)} {
		env, err := Seal(k.Public, plain)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
		f.Add(env[:len(env)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{EnvelopeV1})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(append([]byte{EnvelopeV1}, make([]byte, envelopeHeader+box.AnonymousOverhead)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := ParseEnvelope(in)
		if err != nil {
			if !errors.Is(err, ErrEnvelopeShort) && !errors.Is(err, ErrEnvelopeVersion) {
				t.Fatalf("ParseEnvelope error %v is neither short nor version", err)
			}
			return
		}
		if e.Version != EnvelopeV1 || len(e.Box) < box.AnonymousOverhead || len(in) != envelopeHeader+len(e.Box) {
			t.Fatalf("ParseEnvelope accepted a malformed envelope: %+v", e)
		}
		plain, err := k.Open(e)
		switch {
		case e.KeyID != k.Public.ID:
			if !errors.Is(err, ErrWrongKey) {
				t.Fatalf("Open of an envelope for %s: %v, want ErrWrongKey", e.KeyID, err)
			}
		case err != nil:
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open error %v, want ErrOpen", err)
			}
		case len(plain) != len(e.Box)-box.AnonymousOverhead:
			t.Fatalf("Open returned %d bytes from a %d-byte box", len(plain), len(e.Box))
		}
		// Aim the same bytes at the fixed key, so the box itself is exercised
		// even when the fuzzer has not found the key id.
		e.KeyID = k.Public.ID
		if _, err := k.Open(e); err != nil && !errors.Is(err, ErrOpen) {
			t.Fatalf("Open error %v, want ErrOpen", err)
		}
	})
}

// FuzzDecodePayload: a payload is attacker-chosen whenever the attacker has
// the public key. Decoding must not panic, and must accept only a version 1
// payload whose binding is exactly the row's.
func FuzzDecodePayload(f *testing.F) {
	b := Binding{SubmissionID: "5f1c9a7e-2b4d-4e8a-9c3f-0d6b8e2a4c71", FormID: "adult-intake", KeyID: "7a8d209443e681c8"}
	f.Add(testPayload(b), b.SubmissionID, b.FormID, b.KeyID)
	f.Add(testPayload(b), b.SubmissionID, b.FormID, "")
	f.Add([]byte(`{"v":1,"submission_id":"a","form_id":"b","key_id":"c","answers":null}`), "a", "b", "c")
	f.Add([]byte(`{"v":1,"Submission_ID":"a","FORM_ID":"b","key_id":"c","key_id":"d"}`), "a", "b", "d")
	f.Add([]byte(`{"v":2}`), "", "", "")
	f.Add([]byte(`{"v":1e400}`), "", "", "")
	f.Add([]byte(`{"v":1,"answers":{"a":[`), "", "", "")
	f.Add([]byte("\xff\xfe"), "", "", "")
	f.Fuzz(func(t *testing.T, plaintext []byte, submissionID, formID, keyID string) {
		row := Binding{SubmissionID: submissionID, FormID: formID, KeyID: keyID}
		p, err := DecodePayload(plaintext, row)
		if err != nil {
			if p != nil {
				t.Fatalf("error %v with a payload", err)
			}
			return
		}
		if p.Version != 1 || p.Binding != row {
			t.Fatalf("accepted payload %+v for row %+v", p, row)
		}
	})
}
