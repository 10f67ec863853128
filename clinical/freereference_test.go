package clinical

import (
	"bytes"
	"context"
	"encoding/csv"
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

	var nd, out bytes.Buffer
	if _, err := a.srv.exporter.Export(context.Background(), &nd, "ndjson", "test", ExportFilter{FormID: "fr"}); err != nil {
		t.Fatal(err)
	}
	var qr QuestionnaireResponse
	if err := json.Unmarshal(bytes.TrimSpace(nd.Bytes()), &qr); err != nil {
		t.Fatalf("%v: %s", err, nd.Bytes())
	}
	if p := q.CheckResponse(qr.Item); len(p) > 0 {
		t.Errorf("export does not fit the form: %v", p)
	}
	if !strings.Contains(nd.String(), `"answer":[{"valueReference":{"display":"Dr Ana Ruiz, North clinic"}}]`) {
		t.Errorf("NDJSON lacks the valueReference: %s", nd.Bytes())
	}

	if _, err := a.srv.exporter.Export(context.Background(), &out, "csv", "test", ExportFilter{FormID: "fr"}); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(records) != 2 {
		t.Fatalf("CSV: %v %q", err, records)
	}
	row := map[string]string{}
	for i, col := range records[0] {
		row[col] = records[1][i]
	}
	if row["gp"] != "Dr Ana Ruiz, North clinic" {
		t.Errorf("CSV row %v", row)
	}
}
