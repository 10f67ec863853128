package clinical

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestCalculatedPerInstanceShownAndExported: a calculated item inside a
// repeating group, computed per instance (as transfer does), is shown in
// each instance on the detail page, nested in each group item of the FHIR
// export and in a column per instance in CSV.
func TestCalculatedPerInstanceShownAndExported(t *testing.T) {
	t.Parallel()
	const calc = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
	a, q := newFormApp(t, `{"resourceType":"Questionnaire","id":"visits","url":"https://clinic.example/q/visits","item":[
		{"linkId":"visit","type":"group","text":"Visit","repeats":true,"item":[
			{"linkId":"weight","type":"decimal","text":"Weight (kg)"},
			{"linkId":"height","type":"decimal","text":"Height (m)"},
			{"linkId":"bmi","type":"decimal","text":"Body mass index","readOnly":true,"extension":[{"url":"`+calc+`",
				"valueExpression":{"language":"text/fhirpath","expression":"(item.where(linkId='weight').answer.value / item.where(linkId='height').answer.value.power(2)).round(1)"}}]}]},
		{"linkId":"total","type":"decimal","text":"Total weight","readOnly":true,"extension":[{"url":"`+calc+`",
			"valueExpression":{"language":"text/fhirpath","expression":"%resource.item.where(linkId='visit').item.where(linkId='weight').answer.value.sum()"}}]}]}`)
	answers, errs := q.Validate(map[string]json.RawMessage{"visit": json.RawMessage(`[{"weight":80,"height":2},{"weight":90,"height":1.5}]`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	answers, err := q.Calculate(answers)
	if err != nil {
		t.Fatal(err)
	}
	s := a.insert(t, "visits", q.Carried(answers), a.clock.now(), ReviewNew)
	if _, err := a.owner.Exec(context.Background(), `UPDATE submissions SET form_version = $1 WHERE id = $2`, q.FormVersion(), s.id); err != nil {
		t.Fatal(err)
	}
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, doc)
	rec := c.get("/submissions/" + s.intakeID)
	body := rec.Body.String()
	i1, i2 := strings.Index(body, "Visit 1"), strings.Index(body, "Visit 2")
	if rec.Code != http.StatusOK || i1 < 0 || i2 < i1 || !strings.Contains(body[i1:i2], "Body mass index") || !strings.Contains(body[i1:i2], ">20<") ||
		!strings.Contains(body[i2:], ">40<") || !strings.Contains(body[i2:], ">170<") {
		t.Errorf("detail page (%d) does not show BMI 20 in visit 1, 40 in visit 2 and the total 170:\n%s", rec.Code, body)
	}

	qr, _ := a.exportOne(t, q)
	var bmis []string
	for _, g := range qr.Item {
		for _, ri := range g.Item {
			if ri.LinkID == "bmi" && len(ri.Answer) == 1 {
				bmis = append(bmis, ri.Answer[0].String())
			}
		}
	}
	if strings.Join(bmis, " ") != "20 40" {
		t.Errorf("NDJSON BMI per visit: %v, want 20 40", bmis)
	}

	header, row := a.exportCSVRow(t, "visits")
	for col, want := range map[string]string{"visit[1]/bmi": "20", "visit[2]/bmi": "40", "visit[2]/weight": "90", "total": "170"} {
		if got, ok := row[col]; !ok || got != want {
			t.Errorf("CSV column %s = %q (present %v), want %q; header %v", col, got, ok, want, header)
		}
	}
}
