package forms

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"
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
