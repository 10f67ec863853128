package transfer_test

import (
	"encoding/json"
	"testing"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/forms/formstest"
)

// TestCorpusMovedAndExported seals a complete answer set for every public
// Questionnaire of the corpus, moves them with one pass, and checks each
// clinic copy's FHIR export strictly against its form: it names the form's
// canonical, nests as the form does, and carries the calculated scores.
func TestCorpusMovedAndExported(t *testing.T) {
	t.Parallel()
	reg, err := forms.LoadDirWith("../shared/forms/testdata/corpus", forms.LoadOptions{BaseURL: formstest.CorpusBaseURL})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.mover.Forms = reg
	byID := map[string]*forms.Questionnaire{}
	for _, q := range reg.List() {
		sample, err := formstest.Sample(q)
		if err != nil {
			t.Fatalf("%s: %v", q.ID, err)
		}
		a, errs := q.Validate(formstest.RawJSON(sample))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", q.ID, errs)
		}
		row, receipt, err := f.sealer.SealSubmission(q, a)
		if err != nil {
			t.Fatal(err)
		}
		s := f.insert(row, receipt)
		byID[s.SubmissionID] = q
	}
	if sum := f.pass(); sum.Moved != len(byID) {
		t.Fatalf("moved %d of %d: %+v", sum.Moved, len(byID), sum)
	}
	x := &clinical.Exporter{Forms: reg}
	rows := f.clinicalRows()
	for id, q := range byID {
		d, ok := rows[id]
		if !ok {
			t.Errorf("%s: not in clinical", q.ID)
			continue
		}
		var answers forms.Answers
		raw, _ := json.Marshal(d.answers)
		if err := json.Unmarshal(raw, &answers); err != nil {
			t.Fatal(err)
		}
		r := x.QuestionnaireResponse(&clinical.Submission{IntakeID: id, FormID: d.formID, FormVersion: q.FormVersion(), Answers: answers})
		if want := q.Canonical(q.FormVersion()); r.Questionnaire != want {
			t.Errorf("%s: export names %s, want %s", q.ID, r.Questionnaire, want)
		}
		if !q.NamedBy(r.Questionnaire) {
			t.Errorf("%s: intake would refuse its own export's canonical %s", q.ID, r.Questionnaire)
		}
		if len(r.Item) == 0 {
			t.Errorf("%s: export has no items", q.ID)
		}
		if problems := q.CheckResponse(r.Item); len(problems) > 0 {
			t.Errorf("%s: export does not fit the form: %v", q.ID, problems)
		}
		// Repeating groups moved with both instances, one group item each.
		for _, it := range q.Members() {
			if !it.RepeatingGroup() {
				continue
			}
			n := 0
			for _, ri := range r.Item {
				if ri.LinkID == it.LinkID {
					n++
				}
			}
			if n != formstest.Instances {
				t.Errorf("%s: repeating group %q exported %d times, want %d", q.ID, it.LinkID, n, formstest.Instances)
			}
		}
		if q.ID == "lforms-phq9" {
			// The sample picks "Not at all" (0) for every question.
			if total := answers["/44261-6"]; len(total) != 1 || total[0].String() != "0" {
				t.Errorf("phq9: clinic copy's total = %v, want the computed 0", total)
			}
		}
		if q.ID == formstest.VariableScopeForm {
			// Computed at stage 2 per instance of the repeating group.
			if err := formstest.CheckVariableScope(answers); err != nil {
				t.Errorf("variable-scope-test: clinic copy: %v", err)
			}
		}
		if q.ID == "lforms-weight-height" {
			if bmi := answers["/39156-5"]; len(bmi) != 1 {
				t.Errorf("weight-height: clinic copy has no computed BMI: %v", answers)
			}
		}
	}
}
