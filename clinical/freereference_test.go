package clinical

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestFreeReferenceShownAndExported: an answer to a reference item without
// options (the patient's description) is shown on the detail page, exported
// as valueReference{display} in NDJSON (fitting the form) and as the
// display in CSV.
func TestFreeReferenceShownAndExported(t *testing.T) {
	t.Parallel()
	a, q := newFormApp(t, `{"resourceType":"Questionnaire","id":"fr","url":"https://clinic.example/q/fr","item":[
		{"linkId":"gp","type":"reference","text":"Your doctor"}]}`)
	answers, errs := q.Validate(map[string]json.RawMessage{"gp": json.RawMessage(`"Dr Ana Ruiz, North clinic"`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := a.insert(t, "fr", q.Carried(answers), a.clock.now(), ReviewNew)
	if _, err := a.owner.Exec(context.Background(), `UPDATE submissions SET form_version = $1 WHERE id = $2`, q.FormVersion(), s.id); err != nil {
		t.Fatal(err)
	}
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, doc)
	if rec := c.get("/submissions/" + s.intakeID); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Dr Ana Ruiz, North clinic") {
		t.Errorf("detail page (%d) lacks the description", rec.Code)
	}

	_, nd := a.exportOne(t, q)
	if !strings.Contains(nd, `"answer":[{"valueReference":{"display":"Dr Ana Ruiz, North clinic"}}]`) {
		t.Errorf("NDJSON lacks the valueReference: %s", nd)
	}

	_, row := a.exportCSVRow(t, "fr")
	if row["gp"] != "Dr Ana Ruiz, North clinic" {
		t.Errorf("CSV row %v", row)
	}
}
