package forms_test

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"github.com/airlockhq/airlock/shared/forms"
)

// referenceForm lists the records a patient may pick: a reference item with
// answerOption valueReference (display translated into Spanish on one
// option), a repeating one, and a question shown only when one particular
// practitioner is picked (enableWhen answerReference).
const referenceForm = `{"resourceType":"Questionnaire","id":"gp","url":"http://x/gp","item":[
	{"linkId":"gp","type":"reference","text":"Your doctor","required":true,"answerOption":[
		{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz",
		  "_display":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/translation","extension":[
		    {"url":"lang","valueCode":"es"},{"url":"content","valueString":"Dra. Ana Ruiz"}]}]}}},
		{"valueReference":{"reference":"Practitioner/456","display":"Dr Ben Oduya"}}]},
	{"linkId":"why","type":"string","text":"Why Dr Ruiz?",
	 "enableWhen":[{"question":"gp","operator":"=","answerReference":{"reference":"Practitioner/123"}}]},
	{"linkId":"sites","type":"reference","text":"Where have you been seen?","repeats":true,"answerOption":[
		{"valueReference":{"reference":"Location/north","display":"North clinic"}},
		{"valueReference":{"reference":"Location/south","display":"South clinic"}}]}]}`

// TestReferenceOptions: a reference item with answerOption takes the
// option's key (its reference) in JSON and a matching valueReference in
// FHIR, stores the option's own display, and fits the form on export;
// anything else is refused naming the item.
func TestReferenceOptions(t *testing.T) {
	t.Parallel()
	q := parseWith(t, referenceForm)
	if got := q.Item("gp").Options[0].LabelIn(language.Spanish); got != "Dra. Ana Ruiz" {
		t.Errorf("Spanish label %q", got)
	}
	for _, tt := range []struct {
		body string
		errs []string
	}{
		{`{"gp":"Practitioner/456"}`, nil},
		{`{"gp":"Practitioner/123","why":"close by","sites":["Location/north","Location/south"]}`, nil},
		{`{"gp":"Practitioner/456","why":"x"}`, []string{"why"}},
		{`{"gp":"Practitioner/999"}`, []string{"gp"}},
		{`{"gp":"Dr Ana Ruiz"}`, []string{"gp"}},
		{`{"gp":{"reference":"Practitioner/123"}}`, []string{"gp"}},
		{`{"gp":123}`, []string{"gp"}},
		{`{"sites":["Location/north"]}`, []string{"gp"}},
		{`{"gp":"Practitioner/123","sites":["Location/east"]}`, []string{"sites"}},
	} {
		a, errs := validateJSON(t, q, tt.body)
		var fields []string
		for f := range errs {
			fields = append(fields, f)
		}
		if strings.Join(fields, ",") != strings.Join(tt.errs, ",") {
			t.Errorf("%s: errors %v, want on %v", tt.body, errs, tt.errs)
			continue
		}
		if len(errs) > 0 {
			continue
		}
		checkFHIRRoundTrip(t, q, a, tt.body)
	}
	a, _ := validateJSON(t, q, `{"gp":"Practitioner/123","why":"near"}`)
	if got := a["gp"][0].String(); got != "Dr Ana Ruiz" {
		t.Errorf("shown as %q, want the display", got)
	}
	b, _ := json.Marshal(q.ResponseItems(a)[0])
	if want := `{"linkId":"gp","text":"Your doctor","answer":[{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}}]}`; string(b) != want {
		t.Errorf("FHIR item %s\nwant %s", b, want)
	}

	// FHIR: the reference decides; a display sent with it is not kept, so
	// a client cannot relabel the record.
	var items []forms.ResponseItem
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{`[{"linkId":"gp","answer":[{"valueReference":{"reference":"Practitioner/456"}}]}]`, true},
		{`[{"linkId":"gp","answer":[{"valueReference":{"reference":"Practitioner/456","display":"Dr Evil"}}]}]`, true},
		{`[{"linkId":"gp","answer":[{"valueReference":{"reference":"Practitioner/999","display":"Dr Ana Ruiz"}}]}]`, false},
		{`[{"linkId":"gp","answer":[{"valueReference":{"display":"Dr Ana Ruiz"}}]}]`, false},
		{`[{"linkId":"gp","answer":[{"valueString":"Practitioner/456"}]}]`, false},
		{`[{"linkId":"gp","answer":[{"valueCoding":{"code":"Practitioner/457"}}]}]`, false},
	} {
		items = nil
		if err := json.Unmarshal([]byte(tt.body), &items); err != nil {
			t.Fatal(err)
		}
		raw, err := q.AnswersFromResponseItems(items)
		var errs []forms.FieldError
		var a forms.Answers
		if err == nil {
			a, errs = q.Validate(raw)
		}
		ok := err == nil && len(errs) == 0
		if !tt.ok && err != nil {
			t.Errorf("%s: %v, want a field error naming gp (422), not a shape error", tt.body, err)
			continue
		}
		if ok != tt.ok {
			t.Errorf("%s: err %v, field errors %v, want ok %v", tt.body, err, errs, tt.ok)
			continue
		}
		if !ok && err == nil && (len(errs) != 1 || errs[0].Field != "gp") {
			t.Errorf("%s: errors %v, want one naming gp", tt.body, errs)
		}
		if ok && a["gp"][0].ValueReference.Display != "Dr Ben Oduya" {
			t.Errorf("%s: stored %+v, want the form's display", tt.body, a["gp"][0].ValueReference)
		}
	}
	// A valueReference on another type of item is refused naming it.
	for _, body := range []string{
		`[{"linkId":"why","answer":[{"valueReference":{"reference":"Practitioner/123"}}]},{"linkId":"gp","answer":[{"valueReference":{"reference":"Practitioner/123"}}]}]`,
	} {
		items = nil
		if err := json.Unmarshal([]byte(body), &items); err != nil {
			t.Fatal(err)
		}
		raw, err := q.AnswersFromResponseItems(items)
		if err != nil {
			t.Fatal(err)
		}
		if _, errs := q.Validate(raw); len(errs) != 1 || errs[0].Field != "why" {
			t.Errorf("valueReference on a string item: %v, want one error naming why", errs)
		}
	}
	// The strict export check refuses a reference that is not an option, or
	// another value type.
	for _, bad := range []string{
		`[{"linkId":"gp","answer":[{"valueReference":{"reference":"Practitioner/999"}}]}]`,
		`[{"linkId":"gp","answer":[{"valueString":"Practitioner/123"}]}]`,
	} {
		items = nil
		if err := json.Unmarshal([]byte(bad), &items); err != nil {
			t.Fatal(err)
		}
		if p := q.CheckResponse(items); len(p) == 0 {
			t.Errorf("CheckResponse accepts %s", bad)
		}
	}
}

// checkFHIRRoundTrip: valid answers a, written as QuestionnaireResponse
// items, fit the form and read back as the same answers.
func checkFHIRRoundTrip(t *testing.T, q *forms.Questionnaire, a forms.Answers, name string) {
	t.Helper()
	items := q.ResponseItems(a)
	if p := q.CheckResponse(items); len(p) > 0 {
		t.Errorf("%s: response does not fit: %v", name, p)
	}
	raw, err := q.AnswersFromResponseItems(items)
	if err != nil {
		t.Fatal(err)
	}
	if again, ferrs := q.Validate(raw); len(ferrs) > 0 || !equalJSON(again, a) {
		t.Errorf("%s: FHIR round trip %v %+v", name, ferrs, again)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestReferenceLoad: a reference item's options must be valueReference;
// answerValueSet and answerExpression are refused with the reason.
func TestReferenceLoad(t *testing.T) {
	t.Parallel()
	form := func(item string) []byte {
		return []byte(`{"resourceType":"Questionnaire","id":"r","url":"http://x/r","item":[` + item + `]}`)
	}
	for _, tt := range []struct{ item, want string }{
		{`{"linkId":"gp","type":"reference","text":"GP","extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-answerExpression","valueExpression":{"language":"text/fhirpath","expression":"1"}}]}`, `answerExpression is not supported`},
		{`{"linkId":"gp","type":"reference","text":"GP","answerValueSet":"http://x/vs"}`, `answerValueSet on a reference item`},
		{`{"linkId":"gp","type":"reference","text":"GP","answerOption":[{"valueString":"Dr A"}]}`, `a reference item's options must be valueReference`},
		{`{"linkId":"gp","type":"reference","text":"GP","answerOption":[{"valueReference":{"display":"Dr A"}}]}`, `valueReference without reference`},
		{`{"linkId":"gp","type":"reference","text":"GP","answerOption":[{"valueReference":{"reference":"Practitioner/1"}}]}`, `valueReference without display`},
		{`{"linkId":"gp","type":"reference","text":"GP","answerOption":[{"valueReference":{"reference":"Practitioner/1","display":"A"}},{"valueReference":{"reference":"Practitioner/1","display":"B"}}]}`, `"Practitioner/1" is listed twice`},
		{`{"linkId":"gp","type":"choice","text":"GP","answerOption":[{"valueReference":{"reference":"Practitioner/1","display":"A"}}]}`, `valueReference options are only supported on reference items`},
		{`{"linkId":"gp","type":"reference","text":"GP","answerOption":[{"valueReference":{"reference":"Practitioner/1","display":"A"}}]},
		  {"linkId":"w","type":"string","text":"W","enableWhen":[{"question":"gp","operator":">","answerReference":{"reference":"Practitioner/1"}}]}`, `operator ">" cannot compare`},
		{`{"linkId":"gp","type":"reference","text":"GP","answerOption":[{"valueReference":{"reference":"Practitioner/1","display":"A"}}]},
		  {"linkId":"w","type":"string","text":"W","enableWhen":[{"question":"gp","operator":"=","answerCoding":{"code":"Practitioner/1"}}]}`, `answerCoding cannot match the reference question`},
		{`{"linkId":"s","type":"string","text":"S"},
		  {"linkId":"w","type":"string","text":"W","enableWhen":[{"question":"s","operator":"=","answerReference":{"reference":"Practitioner/1"}}]}`, `answerReference cannot match the string question`},
	} {
		_, err := forms.Parse(form(tt.item))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.item, err, tt.want)
		}
	}
	q, err := forms.Parse(form(`{"linkId":"gp","type":"reference","text":"GP","answerOption":[{"valueReference":{"reference":"Practitioner/1","display":"A"},"initialSelected":true}]},
		{"linkId":"w","type":"string","text":"W","enableWhen":[{"question":"gp","operator":"!=","answerReference":{"reference":"Practitioner/2"}}]},
		{"linkId":"x","type":"string","text":"X","enableWhen":[{"question":"gp","operator":"exists","answerBoolean":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if in := q.Item("gp").Initial; len(in) != 1 || in[0].ValueReference == nil || in[0].ValueReference.Reference != "Practitioner/1" {
		t.Errorf("initialSelected: %+v", in)
	}
	if _, errs := validateJSON(t, q, `{"gp":"Practitioner/1","w":"a","x":"b"}`); len(errs) > 0 {
		t.Errorf("!= and exists on a reference: %v", errs)
	}
	// "!=" holds when no answer equals the value (conditionHolds), "exists"
	// false when unanswered.
	if _, errs := validateJSON(t, q, `{"w":"a","x":"b"}`); len(errs) != 1 || errs["x"] == "" {
		t.Errorf("unanswered reference: errors %v, want on x only", errs)
	}
}
