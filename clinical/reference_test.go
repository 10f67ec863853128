package clinical

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestReferenceOptionsShownAndExported: an answer to a reference item with
// answerOption is shown by its display, exported as valueReference in
// NDJSON (fitting the form) and by its display in CSV.
func TestReferenceOptionsShownAndExported(t *testing.T) {
	t.Parallel()
	a, q := newFormApp(t, `{"resourceType":"Questionnaire","id":"gp","url":"https://clinic.example/q/gp","item":[
		{"linkId":"gp","type":"reference","text":"Your doctor","answerOption":[
			{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}},
			{"valueReference":{"reference":"Practitioner/456","display":"Dr Ben Oduya"}}]},
		{"linkId":"seen","type":"reference","text":"Seen at","repeats":true,"answerOption":[
			{"valueReference":{"reference":"Location/north","display":"North clinic"}},
			{"valueReference":{"reference":"Location/south","display":"South clinic"}}]}]}`)
	answers, errs := q.Validate(map[string]json.RawMessage{"gp": json.RawMessage(`"Practitioner/456"`), "seen": json.RawMessage(`["Location/north","Location/south"]`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := a.insert(t, "gp", q.Carried(answers), a.clock.now(), ReviewNew)
	if _, err := a.owner.Exec(context.Background(), `UPDATE submissions SET form_version = $1 WHERE id = $2`, q.FormVersion(), s.id); err != nil {
		t.Fatal(err)
	}
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, doc)
	rec := c.get("/submissions/" + s.intakeID)
	for _, want := range []string{"Dr Ben Oduya", "North clinic", "South clinic"} {
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("detail page (%d) lacks %q", rec.Code, want)
		}
	}

	_, nd := a.exportOne(t, q)
	if !strings.Contains(nd, `"answer":[{"valueReference":{"reference":"Practitioner/456","display":"Dr Ben Oduya"}}]`) {
		t.Errorf("NDJSON lacks the valueReference: %s", nd)
	}

	_, row := a.exportCSVRow(t, "gp")
	if row["gp"] != "Dr Ben Oduya" || row["seen"] != "North clinic; South clinic" {
		t.Errorf("CSV row %v", row)
	}
}
