package seal

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// correctionVectorFile is a frozen payload of format version 1 with the
// correction fields (a correction code hash and a claimed correction), added
// beside vectorFile, which stays as it was: both must keep opening.
const correctionVectorFile = "testdata/vector_v1_correction.json"

func readVectorFile(t *testing.T, name string) *vector {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &v
}

func openVector(t *testing.T, v *vector) *Payload {
	t.Helper()
	var raw [32]byte
	copy(raw[:], mustHex(t, "private_key", v.PrivateKey))
	priv, err := NewPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEnvelope(mustHex(t, "envelope", v.Envelope))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := priv.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != v.Plaintext {
		t.Fatalf("Open = %q, want %q", plain, v.Plaintext)
	}
	p, err := DecodePayload(plain, v.Binding)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFrozenCorrectionVector(t *testing.T) {
	t.Parallel()
	p := openVector(t, readVectorFile(t, correctionVectorFile))
	if p.CorrectionCodeHash != HashCorrectionCode("7KQM-3XWA-PZ9R-HT4N-CV2E-JB8D-M4TX") {
		t.Errorf("correction_code_hash %q is not the hash of the vector's code", p.CorrectionCodeHash)
	}
	if p.Corrects == nil || !p.Corrects.Valid() || p.Corrects.Receipt != "K7QM-3XWA-PZ9R-HT4N-CV2E-JB8D" ||
		p.Corrects.CodeHash != HashCorrectionCode("AB2C-DE3F-GH4J-KL5M-NP6Q-RS7T-UV8W") {
		t.Errorf("corrects = %+v", p.Corrects)
	}
	// The first vector, sealed before corrections had codes, opens without them.
	if old := openVector(t, readVectorFile(t, vectorFile)); old.CorrectionCodeHash != "" || old.Corrects != nil {
		t.Errorf("the v1 vector opens with correction fields: %+v", old)
	}
}

// TestWriteCorrectionVector writes correctionVectorFile once, when
// AIRLOCK_WRITE_VECTORS=1, and never replaces it.
func TestWriteCorrectionVector(t *testing.T) {
	if os.Getenv("AIRLOCK_WRITE_VECTORS") != "1" {
		t.Skip("set AIRLOCK_WRITE_VECTORS=1 to write " + correctionVectorFile)
	}
	if _, err := os.Stat(correctionVectorFile); err == nil {
		t.Fatalf("%s exists and is frozen; not replacing it", correctionVectorFile)
	}
	priv := fixedKey(t, "airlock seal test vector v1 correction")
	raw := priv.Bytes()
	receivedAt := time.Date(2025, 3, 2, 11, 5, 0, 654321000, time.UTC)
	b := Binding{SubmissionID: "0b7e4c2a-9d1f-4a6e-8c3b-5f2d7e9a1c40", FormID: "adult-intake", KeyID: priv.Public.ID.String()}
	plaintext, err := json.Marshal(Payload{
		Version: 1, Binding: b, FormVersion: "2024-06-01", Receipt: "M4TX-CV2E-JB8D-K7QM-3XWA-PZ9R",
		SubmittedAt:        receivedAt.Format(time.RFC3339Nano),
		Answers:            json.RawMessage(`{"given-name":[{"valueString":"Ada"}],"allergies":[{"valueBoolean":false}]}`),
		CorrectionCodeHash: HashCorrectionCode("7KQM-3XWA-PZ9R-HT4N-CV2E-JB8D-M4TX"),
		Corrects:           &Correction{Receipt: "K7QM-3XWA-PZ9R-HT4N-CV2E-JB8D", CodeHash: HashCorrectionCode("AB2C-DE3F-GH4J-KL5M-NP6Q-RS7T-UV8W")},
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Seal(priv.Public, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	rowKey := testRowKey("airlock row key test vector v1 correction")
	v := vector{
		Comment: "Frozen test vector: DO NOT MODIFY. A payload with the correction fields; " +
			"if TestFrozenCorrectionVector fails, the code changed the stored format.",
		PrivateKey: hex.EncodeToString(raw[:]), PublicKey: priv.Public.String(), KeyID: priv.Public.ID.String(),
		Plaintext: string(plaintext), Binding: b, Envelope: hex.EncodeToString(env), RowKey: rowKey.String(),
	}
	v.Row.SubmissionID, v.Row.FormID, v.Row.FormVersion, v.Row.KeyID = b.SubmissionID, b.FormID, "2024-06-01", b.KeyID
	v.Row.ReceivedAtUS, v.Row.Envelope = receivedAt.UnixMicro(), v.Envelope
	v.RowMAC = hex.EncodeToString(rowKey.MAC(v.row(t)))
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(correctionVectorFile, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorrectionCode(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 200 {
		c, err := NewCorrectionCode()
		if err != nil {
			t.Fatal(err)
		}
		n, ok := NormaliseCorrectionCode(strings.ToLower(strings.ReplaceAll(c, "-", " ")))
		if !ok || n != c || len(c) != 34 || seen[c] {
			t.Fatalf("code %q normalises to %q, %v (or repeats)", c, n, ok)
		}
		seen[c] = true
		if h := HashCorrectionCode(c); !ValidCodeHash(h) || h != HashCorrectionCode(strings.ReplaceAll(c, "-", "")) {
			t.Fatalf("hash %q", h)
		}
	}
	for _, bad := range []string{"", "ABCD", "7KQM-3XWA-PZ9R-HT4N-CV2E-JB8D-M4T0", "7KQM-3XWA-PZ9R-HT4N-CV2E-JB8D-M4TXA"} {
		if _, ok := NormaliseCorrectionCode(bad); ok {
			t.Errorf("NormaliseCorrectionCode(%q) accepted", bad)
		}
	}
	if r, ok := NormaliseReceipt("k7qm3xwapz9rht4ncv2ejb8d"); !ok || r != "K7QM-3XWA-PZ9R-HT4N-CV2E-JB8D" {
		t.Errorf("NormaliseReceipt = %q, %v", r, ok)
	}
}
