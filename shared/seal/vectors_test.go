package seal

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vectorFile holds data sealed, keyed and MACed by an earlier build. It is
// frozen: every future build must read it exactly as it was written, because
// the intake database holds rows in this format. If a change makes this test
// fail, the change breaks stored data; fix the change, not the file.
const vectorFile = "testdata/vector_v1.json"

// vector is the layout of vectorFile.
type vector struct {
	Comment string `json:"_comment"`

	PrivateKey string `json:"private_key"` // hex of the raw X25519 private key
	PublicKey  string `json:"public_key"`  // its public key string
	KeyID      string `json:"key_id"`

	Plaintext string  `json:"plaintext"` // the payload JSON, exactly as sealed
	Binding   Binding `json:"binding"`
	Envelope  string  `json:"envelope"` // hex of Seal(public key, plaintext)

	Row struct {
		SubmissionID string `json:"submission_id"`
		FormID       string `json:"form_id"`
		FormVersion  string `json:"form_version"`
		KeyID        string `json:"key_id"`
		ReceivedAtUS int64  `json:"received_at_us"` // Unix microseconds
		Envelope     string `json:"envelope"`       // hex; the envelope above
	} `json:"row"`
	RowKey string `json:"row_key"` // RowKey.String()
	RowMAC string `json:"row_mac"` // hex of RowKey.MAC(row)
}

func (v *vector) row(t *testing.T) Row {
	t.Helper()
	env, err := hex.DecodeString(v.Row.Envelope)
	if err != nil {
		t.Fatalf("row envelope: %v", err)
	}
	return Row{
		SubmissionID: v.Row.SubmissionID,
		FormID:       v.Row.FormID,
		FormVersion:  v.Row.FormVersion,
		KeyID:        v.Row.KeyID,
		ReceivedAt:   time.UnixMicro(v.Row.ReceivedAtUS),
		Envelope:     env,
	}
}

func readVector(t *testing.T) *vector {
	t.Helper()
	data, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", vectorFile, err)
	}
	return &v
}

func mustHex(t *testing.T, name, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func TestFrozenVector(t *testing.T) {
	t.Parallel()
	v := readVector(t)

	var raw [32]byte
	if n := copy(raw[:], mustHex(t, "private_key", v.PrivateKey)); n != 32 {
		t.Fatalf("private_key is %d bytes", n)
	}
	priv, err := NewPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("public key string", func(t *testing.T) {
		t.Parallel()
		pub, err := ParsePublicKey(v.PublicKey)
		if err != nil {
			t.Fatalf("ParsePublicKey: %v", err)
		}
		if pub != priv.Public {
			t.Fatalf("public key string parses to %+v, the private key derives %+v", pub, priv.Public)
		}
		if pub.ID.String() != v.KeyID {
			t.Fatalf("key id %s, want %s", pub.ID, v.KeyID)
		}
		if got := priv.Public.String(); got != v.PublicKey {
			t.Fatalf("String() = %s, want the frozen %s", got, v.PublicKey)
		}
		// The vector's key has a "-" in its key field on purpose (see the
		// ParsePublicKey doc comment).
		if !strings.Contains(keyField(v.PublicKey), "-") {
			t.Fatal("the vector's key field has no '-': the vector was regenerated")
		}
	})

	t.Run("envelope opens", func(t *testing.T) {
		t.Parallel()
		e, err := ParseEnvelope(mustHex(t, "envelope", v.Envelope))
		if err != nil {
			t.Fatalf("ParseEnvelope: %v", err)
		}
		if e.Version != EnvelopeV1 || e.KeyID.String() != v.KeyID {
			t.Fatalf("envelope header: version %d, key id %s", e.Version, e.KeyID)
		}
		plain, err := priv.Open(e)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if string(plain) != v.Plaintext {
			t.Fatalf("Open = %q, want %q", plain, v.Plaintext)
		}
		p, err := DecodePayload(plain, v.Binding)
		if err != nil {
			t.Fatalf("DecodePayload: %v", err)
		}
		if p.Version != 1 || p.Binding != v.Binding || p.FormVersion != v.Row.FormVersion ||
			p.Receipt == "" || p.SubmittedAt == "" || len(p.Answers) == 0 {
			t.Fatalf("DecodePayload = %+v", p)
		}
		for _, wrong := range []Binding{
			{SubmissionID: v.Binding.SubmissionID + "0", FormID: v.Binding.FormID, KeyID: v.Binding.KeyID},
			{SubmissionID: v.Binding.SubmissionID, FormID: v.Binding.FormID + "0", KeyID: v.Binding.KeyID},
			{SubmissionID: v.Binding.SubmissionID, FormID: v.Binding.FormID, KeyID: fixedKey(t, "x").Public.ID.String()},
		} {
			if _, err := DecodePayload(plain, wrong); !errors.Is(err, ErrBinding) {
				t.Errorf("DecodePayload under %+v: %v, want ErrBinding", wrong, err)
			}
		}
	})

	t.Run("row MAC", func(t *testing.T) {
		t.Parallel()
		key, err := ParseRowKey(v.RowKey)
		if err != nil {
			t.Fatalf("ParseRowKey: %v", err)
		}
		row := v.row(t)
		mac := mustHex(t, "row_mac", v.RowMAC)
		if !VerifyRow([]RowKey{key}, row, mac) {
			t.Fatal("frozen row MAC does not verify")
		}
		if got := key.MAC(row); !bytes.Equal(got, mac) {
			t.Fatalf("MAC = %x, want the frozen %x", got, mac)
		}
		row.ReceivedAt = row.ReceivedAt.Add(time.Microsecond)
		if VerifyRow([]RowKey{key}, row, mac) {
			t.Fatal("frozen row MAC verifies a changed row")
		}
	})
}

// TestWriteVector writes vectorFile once, when AIRLOCK_WRITE_VECTORS=1. It
// refuses to replace an existing file: the point of the vector is that it
// never changes.
func TestWriteVector(t *testing.T) {
	if os.Getenv("AIRLOCK_WRITE_VECTORS") != "1" {
		t.Skip("set AIRLOCK_WRITE_VECTORS=1 to write " + vectorFile)
	}
	if _, err := os.Stat(vectorFile); err == nil {
		t.Fatalf("%s exists and is frozen; not replacing it", vectorFile)
	}
	priv := fixedKeyWhere(t, "airlock seal test vector v1", func(f string) bool { return strings.Contains(f, "-") })
	raw := priv.Bytes()
	const (
		submissionID = "5f1c9a7e-2b4d-4e8a-9c3f-0d6b8e2a4c71"
		formID       = "adult-intake"
		formVersion  = "2024-06-01"
	)
	receivedAt := time.Date(2025, 1, 15, 9, 30, 0, 123456000, time.UTC)
	b := Binding{SubmissionID: submissionID, FormID: formID, KeyID: priv.Public.ID.String()}
	plaintext, err := json.Marshal(Payload{
		Version:     1,
		Binding:     b,
		FormVersion: formVersion,
		Receipt:     "K7QM-3XWA-PZ9R-HT4N-CV2E-JB8D",
		SubmittedAt: receivedAt.Format(time.RFC3339Nano),
		Answers:     json.RawMessage(`{"given-name":[{"valueString":"Ada"}],"date-of-birth":[{"valueDate":"1990-12-10"}],"allergies":[{"valueBoolean":true}],"allergy-detail":[{"valueString":"penicillin – hives"}]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Seal(priv.Public, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	rowKey := testRowKey("airlock row key test vector v1")

	v := vector{
		Comment: "Frozen test vector: DO NOT MODIFY. Data stored today must stay readable; " +
			"if TestFrozenVector fails, the code changed the stored format.",
		PrivateKey: hex.EncodeToString(raw[:]),
		PublicKey:  priv.Public.String(),
		KeyID:      priv.Public.ID.String(),
		Plaintext:  string(plaintext),
		Binding:    b,
		Envelope:   hex.EncodeToString(env),
		RowKey:     rowKey.String(),
	}
	v.Row.SubmissionID = submissionID
	v.Row.FormID = formID
	v.Row.FormVersion = formVersion
	v.Row.KeyID = priv.Public.ID.String()
	v.Row.ReceivedAtUS = receivedAt.UnixMicro()
	v.Row.Envelope = v.Envelope
	v.RowMAC = hex.EncodeToString(rowKey.MAC(v.row(t)))

	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(vectorFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorFile, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", vectorFile)
}
