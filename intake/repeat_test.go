package intake_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
)

// repeatForm has a repeating group (at most 3 instances) with a required
// question, and a question inside it that applies only in its own instance.
const repeatForm = `{"resourceType":"Questionnaire","id":"meds","url":"http://x/meds","title":"Medication","item":[
	{"linkId":"med","type":"group","text":"Medication","repeats":true,
	 "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs","valueInteger":3}],
	 "item":[
		{"linkId":"name","type":"string","text":"Name","required":true},
		{"linkId":"regular","type":"boolean","text":"Every day?"},
		{"linkId":"dose","type":"integer","text":"Doses a day",
		 "enableWhen":[{"question":"regular","operator":"=","answerBoolean":true}]}]},
	{"linkId":"notes","type":"string","text":"Anything else?"},
	{"linkId":"site","type":"url","text":"Your pharmacy's website"},
	{"linkId":"when","type":"time","text":"When do you take them?"}]}`

func newRepeatIntake(t *testing.T) *testIntake {
	t.Helper()
	return newFormIntake(t, repeatForm)
}

var legendRE = regexp.MustCompile(`<legend>(Medication \d)</legend>`)

func legends(body []byte) []string {
	var out []string
	for _, m := range legendRE.FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// TestRepeatingGroupHTML: "Add another" draws one more numbered instance
// keeping what was typed, "Remove" takes one out and renumbers the rest,
// errors name the instance, and a submission keeps each instance's answers
// together in the sealed payload.
func TestRepeatingGroupHTML(t *testing.T) {
	t.Parallel()
	ti := newRepeatIntake(t)
	s, page := ti.openForm(t, "/forms/meds")
	if got := legends(page.body); strings.Join(got, ",") != "Medication 1" {
		t.Fatalf("first view: legends %v, want one instance", got)
	}
	body := string(page.body)
	for _, want := range []string{`name="med[1]/name"`, `type="url" id="q-6" name="site"`, `name="when"`, `name="_repeat" value="add:med"`, `<button type="submit" class="visually-hidden" tabindex="-1" aria-hidden="true">Send</button>`} {
		if !strings.Contains(body, want) {
			t.Errorf("first view lacks %s", want)
		}
	}
	if strings.Contains(body, `value="remove:`) {
		t.Error("a single instance has a Remove button")
	}

	post := func(fields url.Values) response {
		t.Helper()
		return ti.do(t, request{method: "POST", path: "/forms/meds", contentType: formType, body: s.formBody(fields), header: s.header()})
	}
	// Add another, twice: what was typed stays, nothing is stored.
	resp := post(url.Values{"med[1]/name": {"Aspirin"}, "count:med": {"1"}, "_repeat": {"add:med"}})
	if resp.status != http.StatusOK || strings.Join(legends(resp.body), ",") != "Medication 1,Medication 2" {
		t.Fatalf("add: status %d, legends %v", resp.status, legends(resp.body))
	}
	if !strings.Contains(string(resp.body), `name="med[1]/name" value="Aspirin"`) || !strings.Contains(string(resp.body), `name="med[2]/name" value=""`) {
		t.Error("add: the typed name is not kept, or the new instance has no name box")
	}
	if ti.rows(t) != 0 {
		t.Fatal("add another stored something")
	}
	resp = post(url.Values{"med[1]/name": {"Aspirin"}, "med[2]/name": {"Ibuprofen"}, "count:med": {"2"}, "_repeat": {"add:med"}})
	if got := legends(resp.body); len(got) != 3 || strings.Contains(string(resp.body), `value="add:med"`) {
		t.Errorf("second add: legends %v; at maxOccurs 3 the Add button must go", got)
	}
	// Remove the first: the second becomes the first.
	resp = post(url.Values{"med[1]/name": {"Aspirin"}, "med[2]/name": {"Ibuprofen"}, "med[3]/name": {"Paracetamol"}, "count:med": {"3"}, "_repeat": {"remove:med[1]"}})
	if resp.status != http.StatusOK || len(legends(resp.body)) != 2 ||
		!strings.Contains(string(resp.body), `name="med[1]/name" value="Ibuprofen"`) || !strings.Contains(string(resp.body), `name="med[2]/name" value="Paracetamol"`) {
		t.Errorf("remove: status %d legends %v, want Ibuprofen then Paracetamol", resp.status, legends(resp.body))
	}
	// A tampered action changes nothing and stores nothing.
	resp = post(url.Values{"med[1]/name": {"Aspirin"}, "_repeat": {"remove:notes[1]"}})
	if resp.status != http.StatusOK || len(legends(resp.body)) != 1 || ti.rows(t) != 0 {
		t.Errorf("tampered action: status %d legends %v", resp.status, legends(resp.body))
	}

	// Errors name the instance and sit next to its field.
	resp = post(url.Values{"med[1]/name": {"Aspirin"}, "med[2]/regular": {"true"}, "med[2]/dose": {"two"}})
	if resp.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid: status %d", resp.status)
	}
	b := string(resp.body)
	for _, want := range []string{`<a href="#q-2-i2">Name — This question is required.</a>`, `id="q-2-i2-error"`, `id="q-4-i2-error"`} {
		if !strings.Contains(b, want) {
			t.Errorf("invalid: page lacks %s", want)
		}
	}

	// enableWhen works within each instance: a dose is asked only where
	// the medication is taken every day.
	sent := url.Values{"med[1]/name": {"Aspirin"}, "med[1]/regular": {"true"}, "med[1]/dose": {"2"},
		"med[2]/name": {"Ibuprofen"}, "med[2]/regular": {"false"}, "med[2]/dose": {"5"}, "notes": {"none"},
		"site": {"https://pharmacy.example/"}, "when": {"08:00"}}
	resp = post(sent)
	if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), `id="q-4-i2-error"`) || strings.Contains(string(resp.body), `id="q-4-i1-error"`) {
		t.Fatalf("dose where not taken every day: status %d, want an error on the second instance's dose only", resp.status)
	}
	// Sent: two instances kept apart.
	sent.Del("med[2]/dose")
	s, _ = ti.openForm(t, "/forms/meds")
	resp = post(sent)
	if resp.status != http.StatusOK && resp.status != http.StatusSeeOther {
		t.Fatalf("send: status %d: %.1500s", resp.status, resp.body)
	}
	var meds []forms.Value
	stored := ti.lastAnswers(t)
	if err := json.Unmarshal(stored["med"], &meds); err != nil {
		t.Fatal(err)
	}
	if string(stored["site"]) != `[{"valueUri":"https://pharmacy.example/"}]` || string(stored["when"]) != `[{"valueTime":"08:00:00"}]` {
		t.Errorf("url and time answers sealed as %s and %s", stored["site"], stored["when"])
	}
	if len(meds) != 2 || *meds[0].Instance["name"][0].ValueString != "Aspirin" || *meds[0].Instance["dose"][0].ValueInteger != 2 ||
		*meds[1].Instance["name"][0].ValueString != "Ibuprofen" || meds[1].Instance["dose"] != nil {
		t.Errorf("sealed instances: %+v", meds)
	}
}

// TestRepeatingGroupAPI: JSON takes an array of objects per group and
// names the instance in errors; FHIR takes one group item per instance.
func TestRepeatingGroupAPI(t *testing.T) {
	t.Parallel()
	ti := newRepeatIntake(t)
	post := func(ct, body string) response {
		return ti.do(t, request{method: "POST", path: "/api/v1/forms/meds/submissions", contentType: ct, body: body})
	}
	resp := post("application/json", `{"med":[{"name":"Aspirin","regular":true,"dose":2},{"regular":true}]}`)
	if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), `{"field":"med[2]/name","message":"This question is required."}`) {
		t.Errorf("JSON missing name: %d %s", resp.status, resp.body)
	}
	resp = post("application/json", `{"med":[{"name":"Aspirin","regular":true,"dose":2},{"name":"Ibuprofen"}],"notes":"x"}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("JSON: %d %s", resp.status, resp.body)
	}
	resp = post("application/fhir+json", `{"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"http://x/meds","item":[
		{"linkId":"med","item":[{"linkId":"name","answer":[{"valueString":"Aspirin"}]}]},
		{"linkId":"med","item":[{"linkId":"name","answer":[{"valueString":"Ibuprofen"}]},{"linkId":"regular","answer":[{"valueBoolean":true}]},{"linkId":"dose","answer":[{"valueInteger":3}]}]}]}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("FHIR: %d %s", resp.status, resp.body)
	}
	var meds []forms.Value
	if err := json.Unmarshal(ti.lastAnswers(t)["med"], &meds); err != nil {
		t.Fatal(err)
	}
	if len(meds) != 2 || *meds[1].Instance["dose"][0].ValueInteger != 3 || meds[0].Instance["dose"] != nil {
		t.Errorf("FHIR instances: %+v", meds)
	}
}

// TestQuestionsUnderARepeatingQuestionHTML: a repeating choice with a
// question under it is drawn one fieldset per answer, each answer one
// choice (radio buttons, not checkboxes) with its own question under it,
// and the answers are sealed each with its own.
func TestQuestionsUnderARepeatingQuestionHTML(t *testing.T) {
	t.Parallel()
	ti := newFormIntake(t, `{"resourceType":"Questionnaire","id":"al","url":"http://x/al","item":[
		{"linkId":"allergy","type":"choice","text":"Allergic to","repeats":true,"answerOption":[
			{"valueCoding":{"code":"pen","display":"Penicillin"}},{"valueCoding":{"code":"nut","display":"Nuts"}}],
		 "item":[{"linkId":"reaction","type":"string","text":"Reaction","required":true}]}]}`)
	s, page := ti.openForm(t, "/forms/al")
	body := string(page.body)
	for _, want := range []string{`<legend>Allergic to, answer 1</legend>`, `type="radio" id="q-1-i1-a-1" name="allergy[1]/allergy" value="pen"`, `name="allergy[1]/reaction"`, `value="add:allergy"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	post := func(fields url.Values) response {
		return ti.do(t, request{method: "POST", path: "/forms/al", contentType: formType, body: s.formBody(fields), header: s.header()})
	}
	resp := post(url.Values{"allergy[1]/allergy": {"pen"}, "allergy[1]/reaction": {"rash"}, "allergy[2]/allergy": {"nut"}})
	if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), `id="q-2-i2-error"`) {
		t.Fatalf("second answer without its reaction: status %d", resp.status)
	}
	s, _ = ti.openForm(t, "/forms/al")
	resp = post(url.Values{"allergy[1]/allergy": {"pen"}, "allergy[1]/reaction": {"rash"}, "allergy[2]/allergy": {"nut"}, "allergy[2]/reaction": {"swelling"}})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("send: status %d: %.1500s", resp.status, resp.body)
	}
	var al []forms.Value
	if err := json.Unmarshal(ti.lastAnswers(t)["allergy"], &al); err != nil {
		t.Fatal(err)
	}
	if len(al) != 2 || al[1].ValueCoding.Code != "nut" || *al[1].Instance["reaction"][0].ValueString != "swelling" {
		t.Errorf("sealed %+v", al)
	}
}

// nestedForm nests repeating groups three deep, as some corpus forms do.
const nestedForm = `{"resourceType":"Questionnaire","id":"nested","url":"http://x/nested","title":"Nested","item":[
	{"linkId":"a","type":"group","text":"A","repeats":true,"item":[
		{"linkId":"b","type":"group","text":"B","repeats":true,"item":[
			{"linkId":"c","type":"group","text":"C","repeats":true,"item":[
				{"linkId":"x","type":"string","text":"X"}]}]}]}]}`

// TestPageDrawsBoundedInstances: the instance counts a request asks for are
// bounded per page, not only per group, so nested groups cannot multiply a
// small request into a page of millions of fields (an adversarial review
// drew 10,000 instances, 13.6 MB, from 102 posted fields).
func TestPageDrawsBoundedInstances(t *testing.T) {
	t.Parallel()
	ti := newFormIntake(t, nestedForm)
	s, _ := ti.openForm(t, "/forms/nested")
	fields := url.Values{"count:a": {"100"}, "_repeat": {"add:a"}}
	for i := 1; i <= 100; i++ {
		fields.Set("count:"+forms.InstanceField("", "a", i)+"b", "100")
	}
	resp := ti.do(t, request{method: "POST", path: "/forms/nested", contentType: formType, body: s.formBody(fields), header: s.header()})
	if resp.status != http.StatusOK {
		t.Fatalf("status %d", resp.status)
	}
	if n := strings.Count(string(resp.body), "<legend>"); n > 2000 {
		t.Errorf("the page draws %d instances (%d bytes), want at most a few hundred groups' worth", n, len(resp.body))
	}
	if len(resp.body) > 2<<20 {
		t.Errorf("the page is %d bytes", len(resp.body))
	}
}
