package intake

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
)

// TestSealedPayloadCarriesAnswersOnce: the sealed plaintext opens into a
// payload whose answers are exactly the validated answers' JSON, under one
// "answers" name (sealedPayload's field hides seal.Payload's).
func TestSealedPayloadCarriesAnswersOnce(t *testing.T) {
	t.Parallel()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	rowKey, _ := seal.NewRowKey()
	q, _ := forms.Builtin().Get("new-patient")
	answers, ferrs := q.Validate(map[string]json.RawMessage{
		"family-name": json.RawMessage(`"Okonkwo"`), "given-name": json.RawMessage(`"Ada <b>"`),
		"birth-date": json.RawMessage(`"1978-11-04"`), "sex-at-birth": json.RawMessage(`"female"`),
		"allergies": json.RawMessage(`false`), "consent": json.RawMessage(`true`), "height": json.RawMessage(`168.50`),
	})
	if len(ferrs) > 0 {
		t.Fatal(ferrs)
	}
	row, issued, err := NewSealer(key.Public, rowKey).Seal(q, answers, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := seal.ParseEnvelope(row.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := key.Open(env)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(plain, []byte(`"answers":`)); n != 1 {
		t.Fatalf(`"answers" appears %d times in %s`, n, plain)
	}
	p, err := seal.DecodePayload(plain, seal.Binding{SubmissionID: row.SubmissionID, FormID: q.ID, KeyID: key.Public.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(answers)
	if !bytes.Equal(p.Answers, want) {
		t.Fatalf("sealed answers %s, want %s", p.Answers, want)
	}
	if p.Receipt != issued.Receipt || p.CorrectionCodeHash != seal.HashCorrectionCode(issued.CorrectionCode) || p.FormVersion != q.FormVersion() {
		t.Fatalf("payload %+v does not match what was issued", p)
	}
}
