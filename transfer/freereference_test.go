package transfer_test

import (
	"encoding/json"
	"testing"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/forms"
)

// TestFreeReferenceMovedAndExported: the description given to a reference
// item without options is revalidated by transfer, moved, and exported as
// valueReference{display}, which the strict check accepts; a sealed answer
// carrying a record id on such an item is quarantined, not moved.
func TestFreeReferenceMovedAndExported(t *testing.T) {
	t.Parallel()
	q, err := forms.Parse([]byte(`{"resourceType":"Questionnaire","id":"fr","url":"http://x/fr","version":"2","item":[
		{"linkId":"gp","type":"reference","text":"Your doctor"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := forms.NewRegistry(q)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.mover.Forms = reg
	a, errs := q.Validate(map[string]json.RawMessage{"gp": json.RawMessage(`"Dr Ana Ruiz, North clinic"`)})
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
		t.Errorf("a record id on a free reference item was not quarantined: %v", f.quarantined())
	}
	d, ok := f.clinicalRows()[good.SubmissionID]
	if !ok {
		t.Fatal("not in clinical")
	}
	var gp []forms.Value
	if err := json.Unmarshal(d.answers["gp"], &gp); err != nil || len(gp) != 1 || gp[0].ValueReference == nil ||
		*gp[0].ValueReference != (forms.Reference{Display: "Dr Ana Ruiz, North clinic"}) {
		t.Errorf("clinical holds %s", d.answers["gp"])
	}
	var answers forms.Answers
	raw, _ := json.Marshal(d.answers)
	if err := json.Unmarshal(raw, &answers); err != nil {
		t.Fatal(err)
	}
	x := &clinical.Exporter{Forms: reg}
	r := x.QuestionnaireResponse(&clinical.Submission{IntakeID: good.SubmissionID, FormID: "fr", FormVersion: q.FormVersion(), Answers: answers})
	if p := q.CheckResponse(r.Item); len(p) > 0 {
		t.Errorf("export does not fit the form: %v", p)
	}
	b, _ := json.Marshal(r.Item)
	if want := `[{"linkId":"gp","text":"Your doctor","answer":[{"valueReference":{"display":"Dr Ana Ruiz, North clinic"}}]}]`; string(b) != want {
		t.Errorf("export items %s\nwant %s", b, want)
	}
}
