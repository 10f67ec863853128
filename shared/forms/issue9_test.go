package forms_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
)

// The silent misbehaviours of issue 9, each with a test that failed before.

func parseWith(t *testing.T, body string) *forms.Questionnaire {
	t.Helper()
	q, err := forms.ParseWith([]byte(body), forms.ParseOptions{BaseURL: "https://clinic.example/fhir/Questionnaire"})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestCanonicalIsTheFormsOwn(t *testing.T) {
	t.Parallel()
	noURL := parseWith(t, `{"resourceType":"Questionnaire","id":"Intake.v2","item":[{"linkId":"a","type":"string"}]}`)
	if got, want := noURL.Canonical(noURL.FormVersion()), "https://clinic.example/fhir/Questionnaire/intake-v2"; got != want {
		t.Errorf("form without url: canonical %s, want %s", got, want)
	}
	noVersion := parseWith(t, `{"resourceType":"Questionnaire","id":"x","url":"http://loinc.org/q/44249-1","item":[{"linkId":"a","type":"string"}]}`)
	if got, want := noVersion.Canonical(noVersion.FormVersion()), "http://loinc.org/q/44249-1"; got != want {
		t.Errorf("form without version: canonical %s, want %s (no |0)", got, want)
	}
	versioned := parseWith(t, `{"resourceType":"Questionnaire","id":"x","url":"http://x/q","version":"2.1","item":[{"linkId":"a","type":"string"}]}`)
	if got := versioned.Canonical(versioned.FormVersion()); got != "http://x/q|2.1" {
		t.Errorf("versioned canonical %s", got)
	}
	for _, q := range []*forms.Questionnaire{noURL, noVersion, versioned} {
		c := q.Canonical(q.FormVersion())
		url, _, _ := strings.Cut(c, "|")
		if !q.NamedBy(c) || !q.NamedBy(url) {
			t.Errorf("%s does not accept its own canonical %s (with and without version)", q.ID, c)
		}
	}
	if versioned.NamedBy("http://x/q|9") || noVersion.NamedBy("http://other/q") {
		t.Error("a canonical of another form or version is accepted")
	}
}

func TestNestedAnswersSurvive(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"x","url":"http://x/q","item":[
		{"linkId":"smoke","type":"boolean","text":"Do you smoke?","item":[
			{"linkId":"per-day","type":"integer","text":"How many a day?"},
			{"linkId":"help","type":"display","text":"Count cigarettes."}]}]}`)
	qr := `[{"linkId":"smoke","answer":[{"valueBoolean":true,"item":[{"linkId":"per-day","answer":[{"valueInteger":12}]}]}]}]`
	var items []forms.ResponseItem
	if err := json.Unmarshal([]byte(qr), &items); err != nil {
		t.Fatal(err)
	}
	raw, err := q.AnswersFromResponseItems(items)
	if err != nil {
		t.Fatal(err)
	}
	answers, errs := q.Validate(raw)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	out, _ := json.Marshal(q.ResponseItems(answers))
	if want := `[{"linkId":"smoke","text":"Do you smoke?","answer":[{"valueBoolean":true,"item":[{"linkId":"per-day","text":"How many a day?","answer":[{"valueInteger":12}]}]}]}]`; string(out) != want {
		t.Errorf("export\n%s\nwant\n%s", out, want)
	}
	if p := q.CheckResponse(q.ResponseItems(answers)); len(p) > 0 {
		t.Error(p)
	}
	// A nested answer without the answer it belongs to does not apply.
	if _, errs := q.Validate(map[string]json.RawMessage{"per-day": json.RawMessage("3")}); errs.ForField("per-day") != forms.MsgNotApplicableParent {
		t.Errorf("child answered without its parent: %v", errs)
	}
}

func TestCalculatedScoreIsNeverThePatients(t *testing.T) {
	t.Parallel()
	reg := loadCorpus(t)
	q, ok := reg.Get("lforms-phq9")
	if !ok {
		t.Fatal("lforms-phq9 not in the corpus")
	}
	raw := map[string]json.RawMessage{"/44261-6": json.RawMessage("0")} // the patient's "total"
	for _, id := range []string{"/44250-9", "/44255-8", "/44259-0", "/44254-1", "/44251-7", "/44258-2", "/44252-5", "/44253-3", "/44260-8"} {
		raw[id] = json.RawMessage(`"LA6571-9"`) // Nearly every day (3)
	}
	answers, errs := q.Validate(raw)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, ok := answers["/44261-6"]; ok {
		t.Fatal("the patient's value for the calculated total was kept")
	}
	scored, err := q.Calculate(answers)
	if err != nil {
		t.Fatal(err)
	}
	total := scored["/44261-6"]
	if len(total) != 1 || total[0].String() != "27" {
		t.Fatalf("PHQ-9 total = %v, want 27", total)
	}
}

func TestBMIIsCalculatedInTheFormsUnits(t *testing.T) {
	t.Parallel()
	reg := loadCorpus(t)
	q, _ := reg.Get("lforms-weight-height")
	if q == nil {
		t.Fatal("lforms-weight-height not in the corpus")
	}
	height := q.Item("/8302-2")
	if len(height.Units) != 1 || height.Units[0].Code != "[in_i]" {
		t.Fatalf("height unit = %+v, want inches", height.Units)
	}
	answers, errs := q.Validate(map[string]json.RawMessage{"/29463-7": json.RawMessage("70"), "/8302-2": json.RawMessage("70")})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	scored, err := q.Calculate(answers)
	if err != nil {
		t.Fatal(err)
	}
	// 70 kg, 70 in = 1.778 m: BMI 22.1.
	if bmi := scored["/39156-5"]; len(bmi) != 1 || bmi[0].String() != "22.1" {
		t.Fatalf("BMI = %v, want 22.1", bmi)
	}
}

func TestQuantityKeepsItsUnit(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"x","url":"http://x/q","item":[{"linkId":"h","type":"quantity","text":"Height","extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption","valueCoding":{"system":"http://unitsofmeasure.org","code":"cm","display":"centimetres"}},
		{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption","valueCoding":{"system":"http://unitsofmeasure.org","code":"[in_i]","display":"inches"}}]}]}`)
	answers, errs := q.Validate(map[string]json.RawMessage{"h": json.RawMessage(`{"value":170,"code":"cm"}`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got, _ := json.Marshal(answers["h"])
	if want := `[{"valueQuantity":{"value":170,"unit":"centimetres","system":"http://unitsofmeasure.org","code":"cm"}}]`; string(got) != want {
		t.Errorf("answer %s, want %s", got, want)
	}
	if _, errs := q.Validate(map[string]json.RawMessage{"h": json.RawMessage(`170`)}); errs.ForField("h") == "" {
		t.Error("a quantity without its unit, where the form offers two, was accepted")
	}
}

func TestRegexAndMinLengthAreEnforced(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"x","url":"http://x/q","item":[
		{"linkId":"zip","type":"string","text":"ZIP","extension":[
			{"url":"http://hl7.org/fhir/StructureDefinition/regex","valueString":"[0-9]{5}(-[0-9]{4})?"},
			{"url":"http://hl7.org/fhir/StructureDefinition/entryFormat","valueString":"nnnnn or nnnnn-nnnn"}]},
		{"linkId":"email","type":"string","text":"Email","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/regex","valueString":"[^@ ]+@[^@ ]+"}]},
		{"linkId":"name","type":"string","text":"Name","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minLength","valueInteger":2}]}]}`)
	_, errs := q.Validate(map[string]json.RawMessage{"zip": json.RawMessage(`"not a zip"`), "email": json.RawMessage(`"no-at-sign"`), "name": json.RawMessage(`"A"`)})
	if errs.MessageFor("zip").String() != "Enter it like this: nnnnn or nnnnn-nnnn." || errs.ForField("email") != "forms.format" || errs.MessageFor("name").String() != "Enter at least 2 characters." {
		t.Errorf("errors = %v", errs)
	}
	if _, errs := q.Validate(map[string]json.RawMessage{"zip": json.RawMessage(`"12345-6789"`), "email": json.RawMessage(`"a@b"`), "name": json.RawMessage(`"Al"`)}); len(errs) > 0 {
		t.Errorf("valid answers refused: %v", errs)
	}
}

func TestEnableWhenOperators(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"x","url":"http://x/q","item":[
		{"linkId":"age","type":"integer","text":"Age"},
		{"linkId":"weight","type":"decimal","text":"Weight"},
		{"linkId":"when","type":"date","text":"When"},
		{"linkId":"adult","type":"string","text":"Adult","enableWhen":[{"question":"age","operator":">=","answerInteger":18}]},
		{"linkId":"child","type":"string","text":"Child","enableWhen":[{"question":"age","operator":"<","answerInteger":18}]},
		{"linkId":"heavy","type":"string","text":"Heavy","enableWhen":[{"question":"weight","operator":">","answerDecimal":100.5}]},
		{"linkId":"recent","type":"string","text":"Recent","enableBehavior":"any","enableWhen":[
			{"question":"when","operator":">","answerDate":"2024-01-01"},
			{"question":"when","operator":"exists","answerBoolean":false}]}]}`)
	ans := func(body string) forms.FieldErrors {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		_, errs := q.Validate(raw)
		return errs
	}
	for body, bad := range map[string]string{
		`{"age":18,"adult":"y"}`:             "",
		`{"age":18,"child":"y"}`:             "child",
		`{"age":17,"child":"y"}`:             "",
		`{"weight":100.5,"heavy":"y"}`:       "heavy",
		`{"weight":100.51,"heavy":"y"}`:      "",
		`{"when":"2024-01-02","recent":"y"}`: "",
		`{"when":"2023-12-31","recent":"y"}`: "recent",
		`{"recent":"y"}`:                     "",
		`{"adult":"y"}`:                      "adult",
	} {
		errs := ans(body)
		if bad == "" && len(errs) > 0 || bad != "" && errs.ForField(bad) != forms.MsgNotApplicable {
			t.Errorf("%s: errors %v, want %q not applicable", body, errs, bad)
		}
	}
}

func TestByteOrderMarkAndFHIRIds(t *testing.T) {
	t.Parallel()
	q, err := forms.Parse([]byte("\xef\xbb\xbf" + `{"resourceType":"Questionnaire","id":"PHQ.9","url":"http://x/q","item":[{"linkId":"a","type":"string","code":[{"display":"Label from code"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != "phq-9" || q.ResourceID != "PHQ.9" || q.Title != "PHQ.9" || q.Item("a").Label != "Label from code" {
		t.Errorf("id %q resource id %q title %q label %q", q.ID, q.ResourceID, q.Title, q.Item("a").Label)
	}
}

func TestOrdinalScoreSum(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"x","url":"http://x/q","item":[
		{"linkId":"a","type":"choice","text":"A","answerOption":[
			{"valueCoding":{"code":"no"},"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/itemWeight","valueDecimal":0}]},
			{"valueCoding":{"code":"yes"},"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/itemWeight","valueDecimal":2}]}]},
		{"linkId":"b","type":"choice","text":"B","answerOption":[
			{"valueCoding":{"code":"no","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/ordinalValue","valueDecimal":0}]}},
			{"valueCoding":{"code":"yes","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/ordinalValue","valueDecimal":3}]}}]},
		{"linkId":"total","type":"integer","text":"Total","readOnly":true,"extension":[
			{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
			 "valueExpression":{"language":"text/fhirpath","expression":"%resource.repeat(item).answer.value.weight().sum()"}}]},
		{"linkId":"high","type":"boolean","text":"High","readOnly":true,"extension":[
			{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
			 "valueExpression":{"language":"text/fhirpath","expression":"iif(%score >= 4, true, false)"}}]}],
		"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/variable","valueExpression":{"name":"score","language":"text/fhirpath",
			"expression":"%resource.item.where(linkId='a' or linkId='b').answer.value.ordinal().sum()"}}]}`)
	answers, errs := q.Validate(map[string]json.RawMessage{"a": json.RawMessage(`"yes"`), "b": json.RawMessage(`"yes"`), "total": json.RawMessage(`99`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got, err := q.Calculate(answers)
	if err != nil {
		t.Fatal(err)
	}
	if s := got["total"]; len(s) != 1 || s[0].String() != "5" {
		t.Errorf("total = %v, want 5", s)
	}
	if s := got["high"]; len(s) != 1 || s[0].String() != "yes" {
		t.Errorf("high = %v, want yes", s)
	}
}
