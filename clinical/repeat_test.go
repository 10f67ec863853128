package clinical

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
)

// TestRepeatingGroupsShownAndExported: each instance of a repeating group
// is numbered on the detail page, its attachment downloads, the FHIR export
// repeats the group item once per instance and the CSV has a column per
// instance ("med[2]/name"), as many as the exported rows hold.
func TestRepeatingGroupsShownAndExported(t *testing.T) {
	t.Parallel()
	a, q := newFormApp(t, `{"resourceType":"Questionnaire","id":"meds","url":"https://clinic.example/q/meds","item":[
		{"linkId":"med","type":"group","text":"Medication","repeats":true,"item":[
			{"linkId":"name","type":"string","text":"Name"},
			{"linkId":"box","type":"attachment","text":"Photo of the box"},
			{"linkId":"side","type":"group","text":"Side effect","repeats":true,"item":[
				{"linkId":"effect","type":"string","text":"Effect"}]}]},
		{"linkId":"notes","type":"string","text":"Notes"}]}`)
	png := base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\nfake"))
	answers, errs := q.Validate(map[string]json.RawMessage{
		"med": json.RawMessage(`[{"name":"Aspirin","side":[{"effect":"Nausea"}]},
			{"name":"Ibuprofen","box":{"contentType":"image/png","data":"` + png + `","title":"box.png"},"side":[{"effect":"Rash"},{"effect":"Itch"}]}]`),
		"notes": json.RawMessage(`"none"`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := a.insert(t, "meds", q.Carried(answers), a.clock.now(), ReviewNew)
	if _, err := a.owner.Exec(context.Background(), `UPDATE submissions SET form_version = $1 WHERE id = $2`, q.FormVersion(), s.id); err != nil {
		t.Fatal(err)
	}
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, doc)
	rec := c.get("/submissions/" + s.intakeID)
	body := rec.Body.String()
	for _, want := range []string{"Medication 1", "Medication 2", "Aspirin", "Ibuprofen", "Side effect 2", "Itch",
		`/attachments/med%5B2%5D%2Fbox/0`} {
		if rec.Code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("detail page (%d) lacks %q", rec.Code, want)
		}
	}
	if dl := c.get("/submissions/" + s.intakeID + "/attachments/med%5B2%5D%2Fbox/0"); dl.Code != http.StatusOK || !strings.HasPrefix(dl.Body.String(), "\x89PNG") {
		t.Errorf("attachment in the second instance: %d", dl.Code)
	}

	qr, _ := a.exportOne(t, q)
	if len(qr.Item) != 3 || qr.Item[0].LinkID != "med" || qr.Item[1].LinkID != "med" || len(qr.Item[1].Item) != 4 {
		t.Errorf("export items: %+v, want med, med (name, box, side, side), notes", qr.Item)
	}

	header, row := a.exportCSVRow(t, "meds")
	for col, want := range map[string]string{"med[1]/name": "Aspirin", "med[2]/name": "Ibuprofen", "med[1]/side[1]/effect": "Nausea",
		"med[2]/side[2]/effect": "Itch", "med[1]/side[2]/effect": "", "med[2]/box": "box.png (12 bytes)", "notes": "none"} {
		if got, ok := row[col]; !ok || got != want {
			t.Errorf("CSV column %s = %q (present %v), want %q; header %v", col, got, ok, want, header)
		}
	}
	if _, ok := row["med[3]/name"]; ok {
		t.Errorf("CSV has a third instance no row holds: %v", header)
	}
}

// TestAnswersUnderARepeatingQuestionExported: each answer of a repeating
// question keeps the answers under it in the FHIR export (answer[].item)
// and in CSV columns named by the answer.
func TestAnswersUnderARepeatingQuestionExported(t *testing.T) {
	t.Parallel()
	a, q := newFormApp(t, `{"resourceType":"Questionnaire","id":"al","url":"https://clinic.example/q/al","item":[
		{"linkId":"allergy","type":"choice","text":"Allergic to","repeats":true,"answerOption":[
			{"valueCoding":{"code":"pen","display":"Penicillin"}},{"valueCoding":{"code":"nut","display":"Nuts"}}],
		 "item":[{"linkId":"reaction","type":"string","text":"Reaction"}]}]}`)
	answers, errs := q.Validate(map[string]json.RawMessage{"allergy": json.RawMessage(`[{"answer":"pen","item":{"reaction":"rash"}},{"answer":"nut","item":{"reaction":"swelling"}}]`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := a.insert(t, "al", q.Carried(answers), a.clock.now(), ReviewNew)
	if _, err := a.owner.Exec(context.Background(), `UPDATE submissions SET form_version = $1 WHERE id = $2`, q.FormVersion(), s.id); err != nil {
		t.Fatal(err)
	}
	if _, nd := a.exportOne(t, q); !strings.Contains(nd, `"code":"nut","display":"Nuts"},"item":[{"linkId":"reaction","text":"Reaction","answer":[{"valueString":"swelling"}]}]`) {
		t.Errorf("export: %s", nd)
	}
	header, row := a.exportCSVRow(t, "al")
	for col, want := range map[string]string{"allergy": "Penicillin; Nuts", "allergy[1]/reaction": "rash", "allergy[2]/reaction": "swelling"} {
		if row[col] != want {
			t.Errorf("CSV %s = %q, want %q (header %v)", col, row[col], want, header)
		}
	}
}

// TestCSVRefusesTooManyColumns: nested repeating groups multiply across
// submissions (1000 outer instances in one, 999 inner ones in another, each
// within the per-submission bound) into two million CSV columns. Such a CSV
// is refused before anything is audited or written, naming NDJSON, which
// exports the same rows (an adversarial review built 2 MB of commas a row).
func TestCSVRefusesTooManyColumns(t *testing.T) {
	t.Parallel()
	a, q := newFormApp(t, `{"resourceType":"Questionnaire","id":"meds","url":"https://clinic.example/q/meds","item":[
		{"linkId":"med","type":"group","text":"Medication","repeats":true,"item":[
			{"linkId":"name","type":"string","text":"Name"},
			{"linkId":"side","type":"group","text":"Side effect","repeats":true,"item":[
				{"linkId":"effect","type":"string","text":"Effect"}]}]}]}`)
	validate := func(body string) forms.Answers {
		answers, errs := q.Validate(map[string]json.RawMessage{"med": json.RawMessage(body)})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return answers
	}
	wide := `[` + strings.TrimSuffix(strings.Repeat(`{"name":"A"},`, 1000), ",") + `]`
	deep := `[{"name":"B","side":[` + strings.TrimSuffix(strings.Repeat(`{"effect":"x"},`, 999), ",") + `]}]`
	a.insert(t, "meds", q.Carried(validate(wide)), a.clock.now(), ReviewNew)
	a.insert(t, "meds", q.Carried(validate(deep)), a.clock.now(), ReviewNew)
	before := a.countAudit(t, "export")

	var out bytes.Buffer
	_, err := a.srv.exporter.Export(context.Background(), &out, "csv", "test", ExportFilter{FormID: "meds"})
	if !errors.Is(err, ErrCSVTooWide) || out.Len() != 0 {
		t.Fatalf("CSV of 2M columns: %v, %d bytes written; want ErrCSVTooWide and nothing", err, out.Len())
	}
	if got := a.countAudit(t, "export"); got != before {
		t.Errorf("a refused export was audited (%d entries, was %d)", got, before)
	}
	if _, err := a.srv.exporter.Export(context.Background(), &out, "ndjson", "test", ExportFilter{FormID: "meds"}); err != nil {
		t.Fatalf("NDJSON of the same rows: %v", err)
	}
}
