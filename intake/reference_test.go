package intake_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// referenceOptionsForm: reference items whose records the form lists
// (answerOption valueReference): radio buttons with a Spanish display on
// one option, a drop-down for a long list, checkboxes when it repeats, and
// a question asked only when one practitioner is picked.
func referenceOptionsForm() string {
	var long []string
	for i := 1; i <= 9; i++ {
		long = append(long, fmt.Sprintf(`{"valueReference":{"reference":"Location/%d","display":"Site %d"}}`, i, i))
	}
	return `{"resourceType":"Questionnaire","id":"gp","url":"http://x/gp","title":"Your doctor","item":[
	{"linkId":"gp","type":"reference","text":"Your doctor","required":true,"answerOption":[
		{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz",
		  "_display":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/translation","extension":[
		    {"url":"lang","valueCode":"es"},{"url":"content","valueString":"Dra. Ana Ruiz"}]}]}}},
		{"valueReference":{"reference":"Practitioner/456","display":"Dr Ben Oduya"}}]},
	{"linkId":"why","type":"string","text":"Why Dr Ruiz?",
	 "enableWhen":[{"question":"gp","operator":"=","answerReference":{"reference":"Practitioner/123"}}]},
	{"linkId":"site","type":"reference","text":"Nearest site","answerOption":[` + strings.Join(long, ",") + `]},
	{"linkId":"seen","type":"reference","text":"Where have you been seen?","repeats":true,"answerOption":[
		{"valueReference":{"reference":"Location/north","display":"North clinic"}},
		{"valueReference":{"reference":"Location/south","display":"South clinic"}}]}]}`
}

func newReferenceIntake(t *testing.T) *testIntake {
	t.Helper()
	return newFormIntake(t, referenceOptionsForm())
}

// TestReferenceOptionsHTML: reference options are drawn like choices, by
// their display (translated when the option carries it); the sealed answer
// is the valueReference with the form's display; enableWhen answerReference
// decides whether "why" applies.
func TestReferenceOptionsHTML(t *testing.T) {
	t.Parallel()
	ti := newReferenceIntake(t)
	s, page := ti.openForm(t, "/forms/gp")
	body := string(page.body)
	for _, want := range []string{
		`type="radio" id="q-1-1" name="gp" value="Practitioner/123"`, `>Dr Ana Ruiz</label>`,
		`<select`, `<option value="Location/9"`, `>Site 9</option>`,
		`type="checkbox" id="q-4-2" name="seen" value="Location/south"`, `>South clinic</label>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if _, es := ti.openForm(t, "/forms/gp?lang=es"); !strings.Contains(string(es.body), `>Dra. Ana Ruiz</label>`) {
		t.Error("Spanish page lacks the translated display")
	}
	post := func(fields url.Values) response {
		return ti.do(t, request{method: "POST", path: "/forms/gp", contentType: formType, body: s.formBody(fields), header: s.header()})
	}
	resp := post(url.Values{"gp": {"Practitioner/999"}})
	if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), `id="q-1-error"`) {
		t.Fatalf("unlisted reference: status %d", resp.status)
	}
	resp = post(url.Values{"gp": {"Practitioner/456"}, "why": {"x"}})
	if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), `id="q-2-error"`) {
		t.Fatalf("why with Dr Oduya: status %d, want an error on why", resp.status)
	}
	s, _ = ti.openForm(t, "/forms/gp")
	resp = post(url.Values{"gp": {"Practitioner/123"}, "why": {"close by"}, "site": {"Location/9"}, "seen": {"Location/north", "Location/south"}})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("send: status %d: %.1500s", resp.status, resp.body)
	}
	stored := ti.lastAnswers(t)
	if got, want := string(stored["gp"]), `[{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}}]`; got != want {
		t.Errorf("gp sealed as %s, want %s", got, want)
	}
	if got := string(stored["seen"]); !strings.Contains(got, `"Location/north"`) || !strings.Contains(got, `"Location/south"`) {
		t.Errorf("seen sealed as %s", got)
	}
}

// TestReferenceOptionsAPI: JSON takes the option's reference as the key,
// FHIR a valueReference naming one of the options; anything else is a 422
// naming the item.
func TestReferenceOptionsAPI(t *testing.T) {
	t.Parallel()
	ti := newReferenceIntake(t)
	post := func(ct, body string) response {
		return ti.do(t, request{method: "POST", path: "/api/v1/forms/gp/submissions", contentType: ct, body: body})
	}
	fhir := func(answer string) string {
		return `{"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"http://x/gp","item":[{"linkId":"gp","answer":[` + answer + `]}]}`
	}
	for _, tt := range []struct {
		ct, body string
		status   int
	}{
		{"application/json", `{"gp":"Practitioner/456","seen":["Location/north"]}`, http.StatusCreated},
		{"application/json", `{"gp":"Practitioner/999"}`, http.StatusUnprocessableEntity},
		{"application/json", `{"gp":"Dr Ben Oduya"}`, http.StatusUnprocessableEntity},
		{"application/json", `{"gp":{"reference":"Practitioner/456"}}`, http.StatusUnprocessableEntity},
		{"application/fhir+json", fhir(`{"valueReference":{"reference":"Practitioner/456"}}`), http.StatusCreated},
		{"application/fhir+json", fhir(`{"valueReference":{"reference":"Practitioner/123","display":"Someone else"}}`), http.StatusCreated},
		{"application/fhir+json", fhir(`{"valueReference":{"reference":"Practitioner/999","display":"Dr Ana Ruiz"}}`), http.StatusUnprocessableEntity},
		{"application/fhir+json", fhir(`{"valueReference":{"display":"Dr Ana Ruiz"}}`), http.StatusUnprocessableEntity},
		{"application/fhir+json", fhir(`{"valueString":"Practitioner/456"}`), http.StatusUnprocessableEntity},
		{"application/fhir+json", fhir(`{"valueCoding":{"code":"Practitioner/456"}}`), http.StatusUnprocessableEntity},
	} {
		resp := post(tt.ct, tt.body)
		if resp.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.body, resp.status, resp.body, tt.status)
			continue
		}
		if tt.status == http.StatusUnprocessableEntity && !strings.Contains(string(resp.body), `"field":"gp"`) {
			t.Errorf("%s: %s does not name gp", tt.body, resp.body)
		}
	}
	// The display stored is the form's, not the one the client sent.
	if got, want := string(ti.lastAnswers(t)["gp"]), `[{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}}]`; got != want {
		t.Errorf("sealed %s, want %s", got, want)
	}
}
