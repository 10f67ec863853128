package forms

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"
	"time"
)

// specCase is one case of the FHIRPath specification's test suite (see
// testdata/fhirpath/SOURCE.md): an expression, whether it is invalid, and
// the expected output collection.
type specCase struct {
	Group, Name, Expression, Invalid string
	Outputs                          []struct{ Type, Value string }
}

// TestFHIRPathSpecSuite runs the cases of the FHIRPath test suite
// (tests-fhir-r4.xml) that exercise the subset Airlock implements and need no
// input resource: literals, arithmetic, comparison, boolean logic, iif,
// union, distinct, conversion and math functions.
func TestFHIRPathSpecSuite(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/fhirpath/tests-fhir-r4-subset.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []specCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	q := &Questionnaire{byLinkID: map[string]*Item{}, Raw: json.RawMessage(`{}`)}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			expr, err := CompileFHIRPath(c.Expression)
			var got []fpItem
			if err == nil {
				got, err = q.evaluate(expr, map[string]any{}, nil)
			}
			if c.Invalid != "" {
				if err == nil {
					t.Fatalf("%s: invalid (%s) but evaluated to %v", c.Expression, c.Invalid, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", c.Expression, err)
			}
			if len(got) != len(c.Outputs) {
				t.Fatalf("%s = %v, want %d items %v", c.Expression, values(got), len(c.Outputs), c.Outputs)
			}
			for i, o := range c.Outputs {
				if !matches(got[i].v, o.Type, o.Value) {
					t.Errorf("%s [%d] = %#v, want %s %s", c.Expression, i, got[i].v, o.Type, o.Value)
				}
			}
		})
	}
}

func values(c []fpItem) []any {
	out := make([]any, len(c))
	for i, x := range c {
		out[i] = x.v
	}
	return out
}

func matches(v any, typ, want string) bool {
	switch typ {
	case "boolean":
		b, ok := v.(bool)
		return ok && strconv.FormatBool(b) == want
	case "integer":
		n, ok := v.(int64)
		return ok && strconv.FormatInt(n, 10) == want
	case "decimal":
		f, ok := asNumber(v)
		w, err := strconv.ParseFloat(want, 64)
		return ok && err == nil && math.Abs(f-w) < 1e-6*math.Max(1, math.Abs(w))
	case "string":
		s, ok := v.(string)
		return ok && s == want
	}
	return false
}

// TestFHIRPathTodayDescendantsSubstring: the functions real scoring forms use
// beyond the suite subset above. substring follows the specification's
// testSubstring1-5 (tests-fhir-r4.xml, the same commit); today() gives the
// day Calculate is told (the day the patient sent the form) as a date, and
// its toString() has length 10 as testToday2 asks; descendants() is
// repeat(children()), as the specification defines it.
func TestFHIRPathTodayDescendantsSubstring(t *testing.T) {
	t.Parallel()
	q := &Questionnaire{byLinkID: map[string]*Item{}, Raw: json.RawMessage(`{}`)}
	for _, expr := range []string{
		`'12345'.substring(2) = '345'`, `'12345'.substring(2,1) = '3'`, `'12345'.substring(2,5) = '345'`,
		`'12345'.substring(25).empty()`, `'12345'.substring(-1).empty()`,
		`today().toString().length() = 10`,
	} {
		e, err := CompileFHIRPath(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		got, err := q.evaluate(e, map[string]any{}, nil)
		if err != nil || len(got) != 1 || got[0].v != true {
			t.Errorf("%s = %v (%v), want true", expr, got, err)
		}
	}

	// An age from a date of birth, as SMART forms writes it, on the day the
	// form was sent.
	age := mustParse(t, []byte(`{"resourceType":"Questionnaire","id":"age","url":"http://x/age","item":[
		{"linkId":"birthdate","type":"date","text":"Date of birth"},
		{"linkId":"g","type":"group","text":"About you","item":[{"linkId":"seen","type":"boolean","text":"Seen before?"}]},
		{"linkId":"age","type":"integer","text":"Age","readOnly":true,"extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression","valueExpression":{"language":"text/fhirpath",
		 "expression":"%resource.repeat(item).where(linkId='birthdate' and answer.empty().not()).select(today().toString().substring(0,4).toInteger() - answer.value.toString().substring(0,4).toInteger() + iif(today().toString().substring(5,2) & today().toString().substring(8,2) > answer.value.toString().substring(5,2) & answer.value.toString().substring(8,2), 1, 0) - 1)"}}]},
		{"linkId":"answered","type":"integer","text":"Questions answered","readOnly":true,"extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression","valueExpression":{"language":"text/fhirpath",
		 "expression":"%resource.descendants().where(linkId = 'seen' or linkId = 'birthdate').answer.count()"}}]}]}`))
	a, errs := age.Validate(map[string]json.RawMessage{"birthdate": json.RawMessage(`"1980-06-15"`), "seen": json.RawMessage("true")})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for day, want := range map[string]int64{"2024-06-14": 43, "2024-06-16": 44} {
		on, _ := time.Parse(time.DateOnly, day)
		got, err := age.CalculateOn(a, on)
		if err != nil || len(got["age"]) != 1 || *got["age"][0].ValueInteger != want {
			t.Errorf("age on %s = %v (%v), want %d", day, got["age"], err, want)
		}
		if n := got["answered"]; len(n) != 1 || *n[0].ValueInteger != 2 {
			t.Errorf("descendants count = %v, want 2 (birthdate, and seen inside its group)", n)
		}
	}
}
