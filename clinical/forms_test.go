package clinical

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestUnitsScoresAndNestedAnswersShown: a quantity's unit, a calculated
// score and an answer nested under another answer reach the detail page,
// the CSV and the FHIR export (issue 9: units were dropped, nested answers
// silently lost).
func TestUnitsScoresAndNestedAnswersShown(t *testing.T) {
	t.Parallel()
	a, q := newFormApp(t, `{"resourceType":"Questionnaire","id":"vitals","url":"https://clinic.example/q/vitals","item":[
		{"linkId":"height","type":"quantity","text":"Body height","extension":[
			{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-unit","valueCoding":{"system":"http://unitsofmeasure.org","code":"cm","display":"cm"}}]},
		{"linkId":"smoke","type":"boolean","text":"Do you smoke?","item":[{"linkId":"per-day","type":"integer","text":"Cigarettes a day"}]},
		{"linkId":"score","type":"integer","text":"Risk score","readOnly":true,"extension":[
			{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
			 "valueExpression":{"language":"text/fhirpath","expression":"%resource.item.answer.item.where(linkId='per-day').answer.value * 2"}}]}]}`)
	answers, errs := q.Validate(map[string]json.RawMessage{"height": json.RawMessage("170"), "smoke": json.RawMessage("true"), "per-day": json.RawMessage("12")})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	answers, err := q.Calculate(answers) // as transfer does
	if err != nil {
		t.Fatal(err)
	}
	s := a.insert(t, "vitals", q.Carried(answers), a.clock.now(), ReviewNew)
	// Intake records a form without a version as "0" (FormVersion).
	if _, err := a.owner.Exec(context.Background(), `UPDATE submissions SET form_version = $1 WHERE id = $2`, q.FormVersion(), s.id); err != nil {
		t.Fatal(err)
	}
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, doc)
	rec := c.get("/submissions/" + s.intakeID)
	body := rec.Body.String()
	for _, want := range []string{"170 cm", "Cigarettes a day", `<dd class="answer">12</dd>`, "Risk score", `<dd class="answer">24</dd>`} {
		if rec.Code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("detail page (%d) lacks %q", rec.Code, want)
		}
	}
	qr, nd := a.exportOne(t, q)
	if qr.Questionnaire != "https://clinic.example/q/vitals" {
		t.Errorf("export names %s, want the form's url without |0", qr.Questionnaire)
	}
	if !strings.Contains(nd, `"valueQuantity":{"value":170,"unit":"cm","system":"http://unitsofmeasure.org","code":"cm"}`) ||
		!strings.Contains(nd, `"answer":[{"valueBoolean":true,"item":[{"linkId":"per-day"`) ||
		!strings.Contains(nd, `{"linkId":"score","text":"Risk score","answer":[{"valueInteger":24}]}`) {
		t.Errorf("NDJSON lacks the unit, the nested answer or the score: %s", nd)
	}
	var csv bytes.Buffer
	if _, err := a.srv.exporter.Export(context.Background(), &csv, "csv", "test", ExportFilter{FormID: "vitals"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csv.String(), "170 cm") || !strings.Contains(csv.String(), ",24") {
		t.Errorf("CSV lacks the unit or the score: %s", csv.String())
	}
}
