package forms

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMustBeTrue(t *testing.T) {
	t.Parallel()
	q := mustParse(t, formJSON(`{"linkId":"consent","type":"boolean","text":"I agree","required":true,
		"extension":[{"url":"`+MustBeTrueExtensionURL+`","valueBoolean":true}]}`))
	if !q.Item("consent").MustBeTrue {
		t.Fatal("MustBeTrue not set")
	}
	for body, want := range map[string]string{
		`{"consent":true}`:  "",
		`{"consent":false}`: MsgMustBeTrue,
		`{}`:                MsgRequired,
		`{"consent":"yes"}`: "forms.type.boolean",
	} {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		_, errs := q.Validate(raw)
		if got := errs.ForField("consent"); got != want {
			t.Errorf("%s: error %q, want %q", body, got, want)
		}
	}

	// The new-patient example requires consent to be given.
	np, _ := Builtin().Get("new-patient")
	if !np.Item("consent").MustBeTrue {
		t.Error("new-patient consent is not marked must-be-true")
	}

	for name, item := range map[string]string{
		"on a string item":   `{"linkId":"a","type":"string","text":"A","extension":[{"url":"` + MustBeTrueExtensionURL + `","valueBoolean":true}]}`,
		"valueBoolean false": `{"linkId":"a","type":"boolean","text":"A","extension":[{"url":"` + MustBeTrueExtensionURL + `","valueBoolean":false}]}`,
		"no valueBoolean":    `{"linkId":"a","type":"boolean","text":"A","extension":[{"url":"` + MustBeTrueExtensionURL + `","valueInteger":1}]}`,
	} {
		if _, err := Parse(formJSON(item)); err == nil || !strings.Contains(err.Error(), "must-be-true") {
			t.Errorf("%s: Parse error %v, want one naming the extension", name, err)
		}
	}
}
