package forms_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/forms/formstest"
)

const (
	sdcCalc     = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
	fhirVarible = "http://hl7.org/fhir/StructureDefinition/variable"
)

// visitsForm is a repeating "visit" group with weight and height, a BMI
// worked out per visit (through a variable declared on the group), a flag
// that applies only to heavy visits, and top-level items over all visits.
func visitsForm(bmiExpr string) string {
	return `{"resourceType":"Questionnaire","id":"visits","url":"http://example.org/visits","status":"active","title":"Visits","item":[
 {"linkId":"visit","type":"group","text":"Visit","repeats":true,
  "extension":[{"url":"` + fhirVarible + `","valueExpression":{"name":"h","language":"text/fhirpath","expression":"item.where(linkId='height').answer.value"}}],
  "item":[
   {"linkId":"weight","type":"decimal","text":"Weight (kg)"},
   {"linkId":"height","type":"decimal","text":"Height (m)"},
   {"linkId":"bmi","type":"decimal","text":"BMI","readOnly":true,
    "extension":[{"url":"` + sdcCalc + `","valueExpression":{"language":"text/fhirpath","expression":"` + bmiExpr + `"}}]},
   {"linkId":"heavy","type":"boolean","text":"Heavy","readOnly":true,
    "enableWhen":[{"question":"weight","operator":">","answerDecimal":85}],
    "extension":[{"url":"` + sdcCalc + `","valueExpression":{"language":"text/fhirpath","expression":"true"}}]}]},
 {"linkId":"total","type":"decimal","text":"Total weight","readOnly":true,
  "extension":[{"url":"` + sdcCalc + `","valueExpression":{"language":"text/fhirpath","expression":"%resource.item.where(linkId='visit').item.where(linkId='weight').answer.value.sum()"}}]},
 {"linkId":"bmis","type":"integer","text":"Visits with a BMI","readOnly":true,
  "extension":[{"url":"` + sdcCalc + `","valueExpression":{"language":"text/fhirpath","expression":"%resource.repeat(item).where(linkId='bmi').count()"}}]}]}`
}

// TestCalculatedPerInstance: each instance of a repeating group gets its
// own value, with the instance as %context and the group's variable worked
// out per instance; a patient's value is never taken; top-level items
// computed over the instances see the instances' computed values.
func TestCalculatedPerInstance(t *testing.T) {
	q, err := forms.Parse([]byte(visitsForm("(%context.item.where(linkId='weight').answer.value / (%h * %h)).round(1)")))
	if err != nil {
		t.Fatal(err)
	}
	raw := map[string]json.RawMessage{"visit": json.RawMessage(`[
		{"weight":80,"height":2,"bmi":99},
		{"weight":90,"height":1.5},
		{"weight":70}]`)}
	a, errs := q.Validate(raw)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c, err := q.Calculate(a)
	if err != nil {
		t.Fatal(err)
	}
	visits := c["visit"]
	if len(visits) != 3 {
		t.Fatalf("%d visits", len(visits))
	}
	want := []struct{ bmi, heavy string }{{"20", ""}, {"40", "yes"}, {"", ""}}
	for i, w := range want {
		in := visits[i].Instance
		if got := valueString(in["bmi"]); got != w.bmi {
			t.Errorf("visit %d: bmi = %q, want %q", i+1, got, w.bmi)
		}
		if got := valueString(in["heavy"]); got != w.heavy {
			t.Errorf("visit %d: heavy = %q, want %q", i+1, got, w.heavy)
		}
	}
	if got := valueString(c["total"]); got != "240" {
		t.Errorf("total = %q, want 240", got)
	}
	if got := valueString(c["bmis"]); got != "2" {
		t.Errorf("visits with a BMI = %q, want 2", got)
	}
	// The original answers are not changed, and the result fits the form.
	if _, ok := a["visit"][0].Instance["bmi"]; ok {
		t.Error("Calculate changed its input")
	}
	if problems := q.CheckResponse(q.ResponseItems(c)); len(problems) > 0 {
		t.Errorf("response does not fit the form: %v", problems)
	}
}

func valueString(v []forms.Value) string {
	var s []string
	for _, x := range v {
		s = append(s, x.String())
	}
	return strings.Join(s, ",")
}

// TestCalculatedPerInstanceRefusals: an expression outside the FHIRPath
// subset inside a repeating group is still refused at load, naming the
// item; so is a variable that shadows one in scope, and one used that the
// form declares nowhere.
func TestCalculatedPerInstanceRefusals(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"%context.item.aggregate($this)", `item "bmi" (visit/bmi): calculatedExpression: "%context.item.aggregate($this)": function aggregate() is not supported`},
		{"%nowhere + 1", `item "bmi" (visit/bmi): calculatedExpression uses %nowhere, which is not declared`},
	} {
		_, err := forms.Parse([]byte(visitsForm(c.expr)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %s", c.expr, err, c.want)
		}
	}
	shadow := strings.Replace(visitsForm("1"), `{"linkId":"weight","type":"decimal","text":"Weight (kg)"}`,
		`{"linkId":"weight","type":"decimal","text":"Weight (kg)","extension":[{"url":"`+fhirVarible+`","valueExpression":{"name":"h","language":"text/fhirpath","expression":"1"}}]}`, 1)
	if _, err := forms.Parse([]byte(shadow)); err == nil || !strings.Contains(err.Error(), `item "weight" (visit/weight): variable h is declared twice`) {
		t.Errorf("shadowing variable: got %v", err)
	}
}

// TestCorpusVariableScope checks the values LHC-Forms' variable-scope-test
// gets from the corpus sample (fieldB 1 in the first instance of group A, 5
// in the second): fieldC = %Y + 4 + %Z with X = fieldB, Y = X + 2, Z = 1 is
// worked out per instance (8 and 12); fieldD uses %Y outside group A, where
// it is not in scope, and gets nothing; fieldE is group B's own X (the first
// fieldC in the response) + 8.
func TestCorpusVariableScope(t *testing.T) {
	reg := loadCorpus(t)
	q, ok := reg.Get("lforms-variable-scope-test")
	if !ok {
		t.Fatal("lforms-variable-scope-test is not in the corpus")
	}
	sample, err := formstest.Sample(q)
	if err != nil {
		t.Fatal(err)
	}
	a, errs := q.Validate(formstest.RawJSON(sample))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c, err := q.Calculate(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := formstest.CheckVariableScope(c); err != nil {
		t.Error(err)
	}
}

// TestCalculatedPerInstanceBounded: an expression over the whole response
// in each of many instances is quadratic; one Calculate call is bounded as
// a whole, and what is left over is unanswered with an error naming the
// item (transfer logs it), not computed for seconds.
func TestCalculatedPerInstanceBounded(t *testing.T) {
	q, err := forms.Parse([]byte(visitsForm("%resource.repeat(item).where(linkId='weight').answer.value.sum()")))
	if err != nil {
		t.Fatal(err)
	}
	visits := strings.Repeat(`{"weight":80,"height":2},`, 500)
	a, errs := q.Validate(map[string]json.RawMessage{"visit": json.RawMessage("[" + strings.TrimSuffix(visits, ",") + "]")})
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	c, err := q.Calculate(a)
	if err == nil || !strings.Contains(err.Error(), `item "bmi": calculatedExpression: expression takes too much work`) {
		t.Fatalf("Calculate: %v, want the work bound named", err)
	}
	if got := valueString(c["visit"][499].Instance["bmi"]); got != "" {
		t.Errorf("last visit's value past the bound = %q, want none", got)
	}
}

// TestScorePerInstance: ordinalValue scoring (weight()) inside a repeating
// group gives each instance its own score, and a top-level total adds them.
func TestScorePerInstance(t *testing.T) {
	const ordinal = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
	q, err := forms.Parse([]byte(`{"resourceType":"Questionnaire","id":"pain","url":"http://example.org/pain","status":"active","item":[
	 {"linkId":"site","type":"group","text":"Painful site","repeats":true,"item":[
	  {"linkId":"where","type":"string","text":"Where"},
	  {"linkId":"level","type":"choice","text":"How bad","answerOption":[
	   {"valueCoding":{"code":"mild","display":"Mild"},"extension":[{"url":"` + ordinal + `","valueDecimal":1}]},
	   {"valueCoding":{"code":"severe","display":"Severe"},"extension":[{"url":"` + ordinal + `","valueDecimal":3}]}]},
	  {"linkId":"score","type":"integer","text":"Score","readOnly":true,
	   "extension":[{"url":"` + sdcCalc + `","valueExpression":{"language":"text/fhirpath","expression":"item.where(linkId='level').answer.value.weight().sum() * 10"}}]}]},
	 {"linkId":"total","type":"integer","text":"Total","readOnly":true,
	  "extension":[{"url":"` + sdcCalc + `","valueExpression":{"language":"text/fhirpath","expression":"%resource.item.where(linkId='site').item.where(linkId='score').answer.value.sum()"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, errs := q.Validate(map[string]json.RawMessage{"site": json.RawMessage(`[{"where":"knee","level":"severe"},{"where":"back","level":"mild"}]`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c, err := q.Calculate(a)
	if err != nil {
		t.Fatal(err)
	}
	got := valueString(c["site"][0].Instance["score"]) + " " + valueString(c["site"][1].Instance["score"]) + " " + valueString(c["total"])
	if got != "30 10 40" {
		t.Errorf("scores per site and total: %s, want 30 10 40", got)
	}
}

// TestCalculatedInNestedInstances: a calculated item in a repeating group
// nested in another has a value in every inner instance, using a variable
// worked out in the enclosing outer instance.
func TestCalculatedInNestedInstances(t *testing.T) {
	q, err := forms.Parse([]byte(`{"resourceType":"Questionnaire","id":"bp","url":"http://example.org/bp","status":"active","item":[
	 {"linkId":"visit","type":"group","text":"Visit","repeats":true,
	  "extension":[{"url":"` + fhirVarible + `","valueExpression":{"name":"base","language":"text/fhirpath","expression":"item.where(linkId='baseline').answer.value"}}],
	  "item":[
	  {"linkId":"baseline","type":"integer","text":"Baseline"},
	  {"linkId":"reading","type":"group","text":"Reading","repeats":true,"item":[
	   {"linkId":"value","type":"integer","text":"Value"},
	   {"linkId":"rise","type":"integer","text":"Rise","readOnly":true,
	    "extension":[{"url":"` + sdcCalc + `","valueExpression":{"language":"text/fhirpath","expression":"%context.item.where(linkId='value').answer.value - %base"}}]}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, errs := q.Validate(map[string]json.RawMessage{"visit": json.RawMessage(`[
		{"baseline":100,"reading":[{"value":110},{"value":130}]},
		{"baseline":200,"reading":[{"value":205}]}]`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c, err := q.Calculate(a)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range c["visit"] {
		for _, r := range v.Instance["reading"] {
			got = append(got, valueString(r.Instance["rise"]))
		}
	}
	if strings.Join(got, " ") != "10 30 5" {
		t.Errorf("rise per reading: %v, want 10 30 5", got)
	}
	if problems := q.CheckResponse(q.ResponseItems(c)); len(problems) > 0 {
		t.Errorf("response does not fit the form: %v", problems)
	}
}
