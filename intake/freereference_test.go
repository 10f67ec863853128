package intake_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// freeReferenceForm: a reference item without answerOption, answered as a
// description (valueReference with a display only).
const freeReferenceForm = `{"resourceType":"Questionnaire","id":"fr","url":"http://x/fr","title":"Your doctor","item":[
	{"linkId":"gp","type":"reference","text":"Your doctor","required":true,"maxLength":60,
	 "_text":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/translation","extension":[
	   {"url":"lang","valueCode":"es"},{"url":"content","valueString":"Su médico"}]}]}},
	{"linkId":"note","type":"string","text":"Anything else?"},
	{"linkId":"pharmacy","type":"reference","text":"Your pharmacy","initial":[{"valueReference":{"display":"Main St pharmacy"}}]},
	{"linkId":"carers","type":"reference","text":"Who else cares for you?","repeats":true}]}`

func newFreeReferenceIntake(t *testing.T) *testIntake {
	t.Helper()
	return newFormIntake(t, freeReferenceForm)
}

// TestFreeReferenceHTML: the page draws a text box with the hint (English
// and Spanish), and a description sent through it is sealed as a
// valueReference with a display only.
func TestFreeReferenceHTML(t *testing.T) {
	t.Parallel()
	ti := newFreeReferenceIntake(t)
	s, page := ti.openForm(t, "/forms/fr")
	body := string(page.body)
	for _, want := range []string{`type="text" id="q-1" name="gp"`, `maxlength="60"`, `Describe it in words, for example the name and the place`,
		`name="pharmacy" value="Main St pharmacy"`, `id="q-4-1" name="carers"`, `id="q-4-2" name="carers"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if _, es := ti.openForm(t, "/forms/fr?lang=es"); !strings.Contains(string(es.body), `Descríbalo con palabras`) {
		t.Error("Spanish page lacks the hint")
	}
	post := func(fields url.Values) response {
		return ti.do(t, request{method: "POST", path: "/forms/fr", contentType: formType, body: s.formBody(fields), header: s.header()})
	}
	resp := post(url.Values{"gp": {strings.Repeat("a", 61)}})
	if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), `id="q-1-error"`) {
		t.Fatalf("too long: status %d", resp.status)
	}
	s, _ = ti.openForm(t, "/forms/fr")
	resp = post(url.Values{"gp": {" Dr Ana Ruiz, North clinic "}, "carers": {"My sister", "Nurse Li, South clinic"}})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("send: status %d: %.1500s", resp.status, resp.body)
	}
	if got, want := string(ti.lastAnswers(t)["gp"]), `[{"valueReference":{"display":"Dr Ana Ruiz, North clinic"}}]`; got != want {
		t.Errorf("gp sealed as %s, want %s", got, want)
	}
	if got, want := string(ti.lastAnswers(t)["carers"]), `[{"valueReference":{"display":"My sister"}},{"valueReference":{"display":"Nurse Li, South clinic"}}]`; got != want {
		t.Errorf("carers sealed as %s, want %s", got, want)
	}
}

// TestFreeReferenceAPI: JSON takes a string, FHIR a valueReference with a
// display only; a record id (reference, identifier, type) is 422 naming gp.
func TestFreeReferenceAPI(t *testing.T) {
	t.Parallel()
	ti := newFreeReferenceIntake(t)
	post := func(ct, body string) response {
		return ti.do(t, request{method: "POST", path: "/api/v1/forms/fr/submissions", contentType: ct, body: body})
	}
	fhir := func(answer string) string {
		return `{"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"http://x/fr","item":[{"linkId":"gp","answer":[` + answer + `]}]}`
	}
	for _, tt := range []struct {
		ct, body string
		status   int
		sealed   string
	}{
		{"application/json", `{"gp":"Dr Ben Oduya, South clinic"}`, http.StatusCreated, `[{"valueReference":{"display":"Dr Ben Oduya, South clinic"}}]`},
		{"application/json", `{"gp":{"reference":"Practitioner/456"}}`, http.StatusUnprocessableEntity, ""},
		{"application/json", `{"gp":"Dr\u202eAna"}`, http.StatusUnprocessableEntity, ""},
		{"application/fhir+json", fhir(`{"valueReference":{"display":"Dr Ana Ruiz"}}`), http.StatusCreated, `[{"valueReference":{"display":"Dr Ana Ruiz"}}]`},
		{"application/fhir+json", fhir(`{"valueReference":{"reference":"Practitioner/456","display":"Dr Ana Ruiz"}}`), http.StatusUnprocessableEntity, ""},
		{"application/fhir+json", fhir(`{"valueReference":{"identifier":{"value":"456"},"display":"Dr Ana Ruiz"}}`), http.StatusUnprocessableEntity, ""},
		{"application/fhir+json", fhir(`{"valueReference":{"type":"Practitioner","display":"Dr Ana Ruiz"}}`), http.StatusUnprocessableEntity, ""},
		{"application/fhir+json", fhir(`{"valueString":"Dr Ana Ruiz"}`), http.StatusUnprocessableEntity, ""},
	} {
		resp := post(tt.ct, tt.body)
		if resp.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.body, resp.status, resp.body, tt.status)
			continue
		}
		if tt.status == http.StatusUnprocessableEntity && !strings.Contains(string(resp.body), `"field":"gp"`) {
			t.Errorf("%s: %s does not name gp", tt.body, resp.body)
		}
		if tt.sealed != "" {
			if got := string(ti.lastAnswers(t)["gp"]); got != tt.sealed {
				t.Errorf("%s: sealed %s, want %s", tt.body, got, tt.sealed)
			}
		}
	}
}

// TestRepeatingChoiceWithoutOptionsHTML: a choice item without options is
// answered as free text; when it repeats the page gives one box per answer,
// as for other repeating text items, and every answer is kept (a single box
// took one answer only).
func TestRepeatingChoiceWithoutOptionsHTML(t *testing.T) {
	t.Parallel()
	ti := newFormIntake(t, `{"resourceType":"Questionnaire","id":"ch","url":"http://x/ch","title":"Symptoms","item":[
		{"linkId":"symptom","type":"choice","text":"Symptoms","repeats":true}]}`)
	s, page := ti.openForm(t, "/forms/ch")
	for _, want := range []string{`id="q-1-1" name="symptom"`, `id="q-1-2" name="symptom"`} {
		if !strings.Contains(string(page.body), want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	resp := ti.do(t, request{method: "POST", path: "/forms/ch", contentType: formType,
		body: s.formBody(url.Values{"symptom": {"Headache", "Fever"}}), header: s.header()})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("send: status %d: %.1500s", resp.status, resp.body)
	}
	if got, want := string(ti.lastAnswers(t)["symptom"]), `[{"valueString":"Headache"},{"valueString":"Fever"}]`; got != want {
		t.Errorf("sealed %s, want %s", got, want)
	}
}
