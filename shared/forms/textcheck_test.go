package forms

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"
)

// TestValidateRefusesFormatCharacters: a Unicode format character (category
// Cf) in any free-text answer or attachment title is a field error naming
// the field, so a value cannot display as something it is not.
func TestValidateRefusesFormatCharacters(t *testing.T) {
	t.Parallel()
	q := mustParse(t, allTypes)
	data := base64.StdEncoding.EncodeToString([]byte("hello"))
	chars := map[string]string{
		"right-to-left override":  `\u202e`,
		"left-to-right embedding": `\u202a`,
		"first strong isolate":    `\u2068`,
		"pop directional isolate": `\u2069`,
		"zero-width space":        `\u200b`,
		"zero-width joiner":       `\u200d`,
		"right-to-left mark":      `\u200f`,
		"byte order mark":         `\ufeff`,
		"soft hyphen":             `\u00ad`,
		"tag character":           `\udb40\udc41`, // U+E0041
	}
	for name, c := range chars {
		cases := []struct {
			body string
			errs map[string]string
		}{
			{`,"tags":"results_` + c + `fdp.html"`, map[string]string{"tags": MsgFormatCharacters}},
			{`,"notes":"line one\nline` + c + ` two"`, map[string]string{"notes": MsgFormatCharacters}},
			{`,"source":"a` + c + `b"`, map[string]string{"source": MsgFormatCharacters}},
			{`,"files":{"data":"` + data + `","title":"scan_` + c + `fdp.html"}`, map[string]string{"files": "forms.attachment.title_format"}},
		}
		for _, tc := range cases {
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(`{"name":"Ann","ok":false`+tc.body+`}`), &raw); err != nil {
				t.Fatalf("%s: test body: %v", name, err)
			}
			a, errs := q.Validate(raw)
			got := map[string]string{}
			for _, fe := range errs {
				got[fe.Field] = messageOrKey(fe, tc.errs[fe.Field])
			}
			if a != nil || !reflect.DeepEqual(got, tc.errs) {
				t.Errorf("%s in %s: errors %v, want %v", name, tc.body, got, tc.errs)
			}
		}
	}
	// Visible text in any script, and the usual marks, still passes.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(`{"name":"Ann","ok":false,"tags":["Zoë","مريم","שרה","李雷","Ñandú"],"notes":"tab\there\nnext line"}`), &raw); err != nil {
		t.Fatal(err)
	}
	if _, errs := q.Validate(raw); len(errs) > 0 {
		t.Errorf("visible text refused: %v", errs)
	}
}
