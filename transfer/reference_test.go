package transfer_test

import (
	"encoding/json"
	"testing"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/forms"
)

// TestReferenceOptionsMovedAndExported: an answer to a reference item with
// answerOption is revalidated by transfer, moved, and exported as the
// valueReference of the option, which the strict check accepts; a sealed
// reference that is not one of the options is quarantined, not moved.
func TestReferenceOptionsMovedAndExported(t *testing.T) {
	t.Parallel()
	q, err := forms.Parse([]byte(`{"resourceType":"Questionnaire","id":"gp","url":"http://x/gp","version":"2","item":[
		{"linkId":"gp","type":"reference","text":"Your doctor","answerOption":[
			{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}},
			{"valueReference":{"reference":"Practitioner/456","display":"Dr Ben Oduya"}}]},
		{"linkId":"why","type":"string","text":"Why?","enableWhen":[{"question":"gp","operator":"=","answerReference":{"reference":"Practitioner/123"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := forms.NewRegistry(q)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.mover.Forms = reg
	a, errs := q.Validate(map[string]json.RawMessage{"gp": json.RawMessage(`"Practitioner/123"`), "why": json.RawMessage(`"near"`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	row, receipt, err := f.sealer.SealSubmission(q, a)
	if err != nil {
		t.Fatal(err)
	}
	good := f.insert(row, receipt)
	// A sealed answer naming a record the form does not list.
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
		t.Errorf("an unlisted reference was not quarantined: %v", f.quarantined())
	}
	d, ok := f.clinicalRows()[good.SubmissionID]
	if !ok {
		t.Fatal("not in clinical")
	}
	var gp []forms.Value
	if err := json.Unmarshal(d.answers["gp"], &gp); err != nil || len(gp) != 1 || gp[0].ValueReference == nil ||
		*gp[0].ValueReference != (forms.Reference{Reference: "Practitioner/123", Display: "Dr Ana Ruiz"}) {
		t.Errorf("clinical holds %s", d.answers["gp"])
	}
	var answers forms.Answers
	raw, _ := json.Marshal(d.answers)
	if err := json.Unmarshal(raw, &answers); err != nil {
		t.Fatal(err)
	}
	x := &clinical.Exporter{Forms: reg}
	r := x.QuestionnaireResponse(&clinical.Submission{IntakeID: good.SubmissionID, FormID: "gp", FormVersion: q.FormVersion(), Answers: answers})
	if p := q.CheckResponse(r.Item); len(p) > 0 {
		t.Errorf("export does not fit the form: %v", p)
	}
	b, _ := json.Marshal(r.Item)
	if want := `[{"linkId":"gp","text":"Your doctor","answer":[{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}}]},{"linkId":"why","text":"Why?","answer":[{"valueString":"near"}]}]`; string(b) != want {
		t.Errorf("export items %s\nwant %s", b, want)
	}
}
