package forms_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
)

// freeReferenceForm has reference items without answerOption: the patient
// describes the record ("Dr Ana Ruiz, North clinic"), kept as a
// valueReference with a display only.
const freeReferenceForm = `{"resourceType":"Questionnaire","id":"fr","url":"http://x/fr","item":[
	{"linkId":"gp","type":"reference","text":"Your doctor","required":true,"maxLength":40},
	{"linkId":"why","type":"string","text":"Anything to add?",
	 "enableWhen":[{"question":"gp","operator":"exists","answerBoolean":true}]},
	{"linkId":"others","type":"reference","text":"Other carers","repeats":true}]}`

// TestFreeReference: a reference item without options takes text in JSON
// and a valueReference with a display only in FHIR, under the string rules;
// a record id (reference, identifier, type) is a 422 naming the item.
func TestFreeReference(t *testing.T) {
	t.Parallel()
	q := parseWith(t, freeReferenceForm)
	if !q.Item("gp").FreeReference() || q.Item("gp").EffectiveMaxLength() != 40 {
		t.Fatalf("gp: free %v, max length %d", q.Item("gp").FreeReference(), q.Item("gp").EffectiveMaxLength())
	}
	for _, tt := range []struct {
		body string
		errs []string
	}{
		{`{"gp":"Dr Ana Ruiz, North clinic"}`, nil},
		{`{"gp":"Dr Ana Ruiz","why":"x","others":["My sister","Nurse Li, South clinic"]}`, nil},
		{`{"why":"x"}`, []string{"gp", "why"}},
		{`{"gp":"` + strings.Repeat("a", 41) + `"}`, []string{"gp"}},
		{`{"gp":"Dr\u202eAna"}`, []string{"gp"}},
		{`{"gp":"Dr\nAna"}`, []string{"gp"}},
		{`{"gp":{"reference":"Practitioner/123"}}`, []string{"gp"}},
		{`{"gp":123}`, []string{"gp"}},
	} {
		a, errs := validateJSON(t, q, tt.body)
		var fields []string
		for f := range errs {
			fields = append(fields, f)
		}
		if len(fields) == 2 && fields[0] > fields[1] {
			fields[0], fields[1] = fields[1], fields[0]
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
	a, _ := validateJSON(t, q, `{"gp":"  Dr Ana Ruiz, North clinic "}`)
	if got := a["gp"][0].String(); got != "Dr Ana Ruiz, North clinic" {
		t.Errorf("shown as %q", got)
	}
	b, _ := json.Marshal(q.ResponseItems(a)[0])
	if want := `{"linkId":"gp","text":"Your doctor","answer":[{"valueReference":{"display":"Dr Ana Ruiz, North clinic"}}]}`; string(b) != want {
		t.Errorf("FHIR item %s\nwant %s", b, want)
	}

	// FHIR: a display only; anything naming a record is a field error on gp.
	for _, tt := range []struct {
		answer string
		ok     bool
	}{
		{`{"valueReference":{"display":"Dr Ana Ruiz"}}`, true},
		{`{"valueReference":{"reference":"Practitioner/123","display":"Dr Ana Ruiz"}}`, false},
		{`{"valueReference":{"reference":"Practitioner/123"}}`, false},
		{`{"valueReference":{"identifier":{"system":"http://x/ids","value":"123"},"display":"Dr Ana Ruiz"}}`, false},
		{`{"valueReference":{"type":"Practitioner","display":"Dr Ana Ruiz"}}`, false},
		{`{"valueReference":{"display":"Dr\u202eAna"}}`, false},
		{`{"valueReference":{"display":" "}}`, false},
		{`{"valueReference":{}}`, false},
		{`{"valueString":"Dr Ana Ruiz"}`, false},
		{`{"valueCoding":{"code":"x"}}`, false},
	} {
		var items []forms.ResponseItem
		if err := json.Unmarshal([]byte(`[{"linkId":"gp","answer":[`+tt.answer+`]}]`), &items); err != nil {
			t.Fatal(err)
		}
		raw, err := q.AnswersFromResponseItems(items)
		if err != nil {
			t.Errorf("%s: %v, want a field error naming gp (422), not a shape error", tt.answer, err)
			continue
		}
		a, errs := q.Validate(raw)
		if ok := len(errs) == 0; ok != tt.ok {
			t.Errorf("%s: errors %v, want ok %v", tt.answer, errs, tt.ok)
			continue
		}
		if !tt.ok && (len(errs) != 1 || errs[0].Field != "gp") {
			t.Errorf("%s: errors %v, want one naming gp", tt.answer, errs)
		}
		if tt.ok {
			if r := a["gp"][0].ValueReference; r == nil || r.Reference != "" || r.Display != "Dr Ana Ruiz" {
				t.Errorf("%s: stored %+v", tt.answer, r)
			}
		}
		// The strict export check agrees.
		if p := q.CheckResponse(items); (len(p) == 0) != tt.ok && !strings.Contains(tt.answer, `\u202e`) {
			t.Errorf("CheckResponse %s: %v, want ok %v", tt.answer, p, tt.ok)
		}
	}
}

// TestFreeReferenceLoad: enableWhen on a reference item without options
// takes only exists; answerValueSet stays refused.
func TestFreeReferenceLoad(t *testing.T) {
	t.Parallel()
	form := func(item string) []byte {
		return []byte(`{"resourceType":"Questionnaire","id":"r","url":"http://x/r","item":[` + item + `]}`)
	}
	for _, tt := range []struct{ item, want string }{
		{`{"linkId":"gp","type":"reference","text":"GP"},
		  {"linkId":"w","type":"string","text":"W","enableWhen":[{"question":"gp","operator":"=","answerReference":{"reference":"Practitioner/1"}}]}`,
			`operator "=" on the reference item "gp" without options: only exists is supported`},
		{`{"linkId":"gp","type":"reference","text":"GP"},
		  {"linkId":"w","type":"string","text":"W","enableWhen":[{"question":"gp","operator":"!=","answerReference":{"reference":"Practitioner/1"}}]}`,
			`only exists is supported`},
		{`{"linkId":"gp","type":"reference","text":"GP","answerValueSet":"http://x/vs"}`, `answerValueSet on a reference item`},
		{`{"linkId":"gp","type":"reference","text":"GP","maxLength":0}`, `maxLength must be between`},
		{`{"linkId":"gp","type":"reference","text":"GP","initial":[{"valueReference":{"reference":"Practitioner/1"}}]}`, `initial[0]: a reference item without answerOption takes initialReference with a display only`},
		{`{"linkId":"gp","type":"reference","text":"GP","initial":[{"valueString":"Dr A"}]}`, `initialReference with a display only`},
	} {
		_, err := forms.Parse(form(tt.item))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.item, err, tt.want)
		}
	}
	q, err := forms.Parse(form(`{"linkId":"gp","type":"reference","text":"GP",
		"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minLength","valueInteger":3}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := validateJSON(t, q, `{"gp":"Al"}`); errs["gp"] == "" {
		t.Errorf("minLength not enforced: %v", errs)
	}
	q, err = forms.Parse(form(`{"linkId":"gp","type":"reference","text":"GP","initial":[{"valueReference":{"display":"Dr Ana Ruiz"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if in := q.Item("gp").Initial; len(in) != 1 || in[0].ValueReference == nil || *in[0].ValueReference != (forms.Reference{Display: "Dr Ana Ruiz"}) {
		t.Errorf("initial: %+v", in)
	}
}
