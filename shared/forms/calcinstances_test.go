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
