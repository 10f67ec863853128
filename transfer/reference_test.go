package transfer_test

import (
	"encoding/json"
	"testing"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/forms/formstest"
)

// TestReferenceOptionsMovedAndExported: an answer to a reference item with
// answerOption is revalidated by transfer, moved, and exported as the
// valueReference of the option, which the strict check accepts; a sealed
// reference that is not one of the options is quarantined, not moved.
func TestReferenceOptionsMovedAndExported(t *testing.T) {
	t.Parallel()
	checkReferenceMoved(t, `{"resourceType":"Questionnaire","id":"gp","url":"http://x/gp","version":"2","item":[
		{"linkId":"gp","type":"reference","text":"Your doctor","answerOption":[
			{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}},
			{"valueReference":{"reference":"Practitioner/456","display":"Dr Ben Oduya"}}]},
		{"linkId":"why","type":"string","text":"Why?","enableWhen":[{"question":"gp","operator":"=","answerReference":{"reference":"Practitioner/123"}}]}]}`,
		map[string]json.RawMessage{"gp": json.RawMessage(`"Practitioner/123"`), "why": json.RawMessage(`"near"`)},
		forms.Reference{Reference: "Practitioner/123", Display: "Dr Ana Ruiz"},
		`[{"linkId":"gp","text":"Your doctor","answer":[{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}}]},{"linkId":"why","text":"Why?","answer":[{"valueString":"near"}]}]`)
}

// TestFreeReferenceMovedAndExported: the description given to a reference
// item without options is revalidated by transfer, moved, and exported as
// valueReference{display}, which the strict check accepts; a sealed answer
// carrying a record id on such an item is quarantined, not moved.
func TestFreeReferenceMovedAndExported(t *testing.T) {
	t.Parallel()
	checkReferenceMoved(t, `{"resourceType":"Questionnaire","id":"fr","url":"http://x/fr","version":"2","item":[
		{"linkId":"gp","type":"reference","text":"Your doctor"}]}`,
		map[string]json.RawMessage{"gp": json.RawMessage(`"Dr Ana Ruiz, North clinic"`)},
		forms.Reference{Display: "Dr Ana Ruiz, North clinic"},
		`[{"linkId":"gp","text":"Your doctor","answer":[{"valueReference":{"display":"Dr Ana Ruiz, North clinic"}}]}]`)
}

// checkReferenceMoved seals the valid answers to the reference item "gp" of
// formJSON and a forged answer naming Practitioner/999 (a record neither
// form offers), runs a pass, and checks: the forged row is quarantined, the
// good one is moved holding wantGP, and its export fits the form and reads
// wantExport.
func checkReferenceMoved(t *testing.T, formJSON string, answers map[string]json.RawMessage, wantGP forms.Reference, wantExport string) {
	t.Helper()
	q, reg := formstest.Registry(t, formJSON)
	f := newFixture(t)
	f.mover.Forms = reg
	a, errs := q.Validate(answers)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	row, receipt, err := f.sealer.SealSubmission(q, a)
	if err != nil {
		t.Fatal(err)
	}
	good := f.insert(row, receipt)
	forged := forms.Answers{"gp": {{ValueReference: &forms.Reference{Reference: "Practitioner/999", Display: "Dr Ana Ruiz"}}}}
	row, receipt, err = f.sealer.SealSubmission(q, forged)
	if err != nil {
		t.Fatal(err)
	}
	bad := f.insert(row, receipt)
	if sum := f.pass(); sum.Moved != 1 {
		t.Fatalf("moved %d, want 1: %+v", sum.Moved, sum)
	}
	if _, ok := f.quarantined()[bad.SubmissionID]; !ok {
		t.Errorf("a reference to a record the form does not offer was not quarantined: %v", f.quarantined())
	}
	d, ok := f.clinicalRows()[good.SubmissionID]
	if !ok {
		t.Fatal("not in clinical")
	}
	var gp []forms.Value
	if err := json.Unmarshal(d.answers["gp"], &gp); err != nil || len(gp) != 1 || gp[0].ValueReference == nil ||
		*gp[0].ValueReference != wantGP {
		t.Errorf("clinical holds %s", d.answers["gp"])
	}
	var moved forms.Answers
	raw, _ := json.Marshal(d.answers)
	if err := json.Unmarshal(raw, &moved); err != nil {
		t.Fatal(err)
	}
	x := &clinical.Exporter{Forms: reg}
	r := x.QuestionnaireResponse(&clinical.Submission{IntakeID: good.SubmissionID, FormID: q.ID, FormVersion: q.FormVersion(), Answers: moved})
	if p := q.CheckResponse(r.Item); len(p) > 0 {
		t.Errorf("export does not fit the form: %v", p)
	}
	if b, _ := json.Marshal(r.Item); string(b) != wantExport {
		t.Errorf("export items %s\nwant %s", b, wantExport)
	}
}
