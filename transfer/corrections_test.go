package transfer_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
)

// sealWith seals raw answers of a registered form with sealer (f.sealer when
// nil), claiming corrects (nil for an ordinary submission), stores the row,
// and returns it with its correction code.
func (f *fixture) sealWith(q *forms.Questionnaire, raw map[string]any, corrects *seal.Correction, sealer *intake.Sealer) (*submitted, string) {
	f.t.Helper()
	if sealer == nil {
		sealer = f.sealer
	}
	enc := map[string]json.RawMessage{}
	for k, v := range raw {
		b, _ := json.Marshal(v)
		enc[k] = b
	}
	a, ferrs := q.Validate(enc)
	if len(ferrs) > 0 {
		f.t.Fatal(ferrs)
	}
	row, issued, err := sealer.Seal(q, a, corrects)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.insert(row, issued.Receipt), issued.CorrectionCode
}

// correction is the claim a submitter makes by typing receipt and code.
func correction(t *testing.T, receipt, code string) *seal.Correction {
	t.Helper()
	c, ok := seal.NormaliseCorrectionCode(code)
	if !ok {
		t.Fatalf("bad test code %q", code)
	}
	return &seal.Correction{Receipt: receipt, CodeHash: seal.HashCorrectionCode(c)}
}

// links reads clinical's correction columns: intake id -> (intake id of the
// linked original or "", verified, superseded by intake id or "").
type linkState struct {
	corrects   string
	verified   bool
	supersedBy string
	claimed    string // corrects_receipt
}

func (f *fixture) links() map[string]linkState {
	f.t.Helper()
	rows, err := f.clinicalOwner.Query(context.Background(), `SELECT s.intake_id::text, coalesce(o.intake_id::text, ''),
  s.correction_verified, coalesce(n.intake_id::text, ''), coalesce(s.corrects_receipt, '')
FROM submissions s LEFT JOIN submissions o ON o.id = s.corrects_id LEFT JOIN submissions n ON n.id = s.superseded_by`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]linkState{}
	for rows.Next() {
		var id string
		var l linkState
		if err := rows.Scan(&id, &l.corrects, &l.verified, &l.supersedBy, &l.claimed); err != nil {
			f.t.Fatal(err)
		}
		out[id] = l
	}
	return out
}

// TestPassLinksCorrectionsOnlyWithTheirCode: a correction is linked to the
// submission it names only with that submission's correction code, only when
// sealed after it, and only within the same form; transfer supersedes
// nothing (a clinician's acceptance does). Before codes existed, a receipt
// alone superseded the named submission at once.
func TestPassLinksCorrectionsOnlyWithTheirCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other, err := forms.Parse([]byte(`{"resourceType":"Questionnaire","id":"other","version":"1","status":"active","title":"Other",
"item":[{"linkId":"note","text":"Note","type":"string"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	newPatient, _ := forms.Builtin().Get("new-patient")
	symptoms, _ := forms.Builtin().Get("symptoms")
	if f.mover.Forms, err = forms.NewRegistry(newPatient, symptoms, other); err != nil {
		t.Fatal(err)
	}

	past := &intake.Sealer{Recipient: f.key.Public, RowKey: f.rowKey, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	a, codeA := f.sealWith(newPatient, newPatientAnswers, nil, nil)
	if sum := f.pass(); sum.Moved != 1 || sum.CorrectionsLinked != 0 {
		t.Fatalf("first pass %+v", sum)
	}
	wrongCode, _ := seal.NewCorrectionCode()
	wrong, _ := f.sealWith(newPatient, newPatientAnswers, correction(t, a.receipt, wrongCode), nil)
	// The right code, typed in lower case without dashes.
	typed := strings.ToLower(strings.ReplaceAll(codeA, "-", ""))
	right, _ := f.sealWith(newPatient, newPatientAnswers, correction(t, a.receipt, typed), nil)
	// The right code, but sealed before the original: refused.
	older, _ := f.sealWith(newPatient, newPatientAnswers, correction(t, a.receipt, codeA), past)
	// Another form naming the receipt with its code: refused.
	otherForm, _ := f.sealWith(other, map[string]any{"note": "hello there"}, correction(t, a.receipt, codeA), nil)
	// A receipt clinical does not know.
	unknown, _ := f.sealWith(newPatient, newPatientAnswers, correction(t, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", codeA), nil)
	if sum := f.pass(); sum.Moved != 5 || sum.CorrectionsLinked != 1 || sum.Superseded != 0 {
		t.Fatalf("second pass %+v, want 5 moved, 1 linked", sum)
	}
	got := f.links()
	want := map[string]linkState{
		a.SubmissionID:         {},
		wrong.SubmissionID:     {claimed: a.receipt},
		right.SubmissionID:     {corrects: a.SubmissionID, verified: true, claimed: a.receipt},
		older.SubmissionID:     {claimed: a.receipt},
		otherForm.SubmissionID: {claimed: a.receipt},
		unknown.SubmissionID:   {claimed: "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("submission %s: %+v, want %+v", id, got[id], w)
		}
	}

	// An original that waits (sealed to a key transfer does not hold yet)
	// is linked to its correction when it arrives; a wrong code still not.
	newKey, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	late, codeLate := f.sealWith(newPatient, newPatientAnswers, nil, &intake.Sealer{Recipient: newKey.Public, RowKey: f.rowKey, Now: time.Now})
	fix, _ := f.sealWith(newPatient, newPatientAnswers, correction(t, late.receipt, codeLate), nil)
	bad, _ := f.sealWith(newPatient, newPatientAnswers, correction(t, late.receipt, codeA), nil)
	if sum := f.pass(); sum.Moved != 2 || sum.UnknownKey != 1 || sum.CorrectionsLinked != 0 {
		t.Fatalf("pass before the key %+v, want the corrections moved and the original waiting", sum)
	}
	f.mover.Keys[newKey.Public.ID] = newKey
	if sum := f.pass(); sum.Moved != 1 || sum.CorrectionsLinked != 1 {
		t.Fatalf("pass with the key %+v, want the original moved and linked", sum)
	}
	got = f.links()
	if w := (linkState{corrects: late.SubmissionID, verified: true, claimed: late.receipt}); got[fix.SubmissionID] != w {
		t.Errorf("late original's correction: %+v, want %+v", got[fix.SubmissionID], w)
	}
	if w := (linkState{claimed: late.receipt}); got[bad.SubmissionID] != w || got[late.SubmissionID] != (linkState{}) {
		t.Errorf("wrong-code correction of the late original: %+v; original %+v", got[bad.SubmissionID], got[late.SubmissionID])
	}

	// Stage 2 keeps the hashes, never a code; nothing logs either.
	var stored []byte
	if err := f.clinicalOwner.QueryRow(context.Background(), `SELECT c.code_hash FROM correction_codes c
JOIN submissions s ON s.id = c.submission_id WHERE s.intake_id = $1::uuid`, a.SubmissionID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(stored) != seal.HashCorrectionCode(codeA) {
		t.Errorf("stored code hash %x is not the hash of the original's code", stored)
	}
	log := f.log.String()
	for _, secret := range []string{codeA, codeLate, seal.HashCorrectionCode(codeA), strings.ReplaceAll(codeA, "-", "")} {
		if strings.Contains(log, secret) {
			t.Errorf("the transfer log holds a correction code or its hash")
		}
	}
	f.checkLogClean(a, wrong, right, older, otherForm, unknown, late, fix, bad)
}
