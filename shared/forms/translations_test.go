package forms_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/locale"
)

// TestBuiltinFormsInSpanish: the built-in forms carry Spanish for every
// text a patient reads (title, description, questions, options, formats),
// and keep their English as the form's own language.
func TestBuiltinFormsInSpanish(t *testing.T) {
	es := language.Spanish
	for _, id := range []string{"new-patient", "symptoms"} {
		q, ok := forms.Builtin().Get(id)
		if !ok {
			t.Fatalf("no built-in form %s", id)
		}
		if got := q.Languages(); !slices.Equal(got, []language.Tag{language.English, es}) || q.Language() != language.English {
			t.Errorf("%s: languages %v (own %v), want [en es]", id, got, q.Language())
		}
		if q.TitleIn(es) == q.Title || q.DescriptionIn(es) == q.Description || q.TitleIn(language.English) != q.Title {
			t.Errorf("%s: title %q / %q", id, q.TitleIn(es), q.DescriptionIn(es))
		}
		var walk func(items []*forms.Item)
		walk = func(items []*forms.Item) {
			for _, it := range items {
				if it.Text != "" && it.LabelIn(es) == it.Label {
					t.Errorf("%s: item %s has no Spanish text", id, it.LinkID)
				}
				if it.EntryFormat != "" && it.EntryFormatIn(es) == it.EntryFormat {
					t.Errorf("%s: item %s has no Spanish entryFormat", id, it.LinkID)
				}
				for _, o := range it.Options {
					if o.LabelIn(es) == o.Label() {
						t.Errorf("%s: option %s of %s has no Spanish label", id, o.Key(), it.LinkID)
					}
				}
				walk(it.Items)
			}
		}
		walk(q.Items)
	}
	q, _ := forms.Builtin().Get("new-patient")
	if got := q.Item("allergies").LabelIn(language.MustParse("es-MX")); got != "¿Tiene alguna alergia?" {
		t.Errorf("es-MX reads es: %q", got)
	}
}

// TestEmailAndPhoneAreChecked: the built-in form checks email and phone
// with the regex extension, and the error says what is expected (from
// entryFormat) in the reader's language, never repeating the answer.
func TestEmailAndPhoneAreChecked(t *testing.T) {
	q, _ := forms.Builtin().Get("new-patient")
	base := `"family-name":"Ann","given-name":"Lee","birth-date":"1980-03-27","sex-at-birth":"female","allergies":false,"consent":true`
	for _, good := range []string{`"email":"ann.lee@example.org","phone":"+44 20 7946 0958"`, `"email":"a@b.es","phone":"0612 34 56 78"`, `"phone":"(030) 1234-567"`} {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte("{"+base+","+good+"}"), &raw); err != nil {
			t.Fatal(err)
		}
		if _, errs := q.Validate(raw); len(errs) > 0 {
			t.Errorf("%s refused: %v", good, errs)
		}
	}
	for _, tc := range []struct{ field, value, en, es string }{
		{"email", "ann.lee-at-example", "Enter it like this: name@example.com.", "Escríbalo así: nombre@ejemplo.com."},
		{"email", "ann@example", "Enter it like this: name@example.com.", "Escríbalo así: nombre@ejemplo.com."},
		{"phone", "call me maybe", "Enter it like this: digits, spaces and an optional + at the start, such as +44 20 7946 0958.",
			"Escríbalo así: cifras, espacios y un + opcional al principio, como +34 912 345 678."},
		{"phone", "qq", "", ""},
	} {
		b, _ := json.Marshal(tc.value)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte("{"+base+`,"`+tc.field+`":`+string(b)+"}"), &raw); err != nil {
			t.Fatal(err)
		}
		_, errs := q.Validate(raw)
		msg := errs.MessageFor(tc.field)
		if msg.IsZero() {
			t.Errorf("%s %q accepted", tc.field, tc.value)
			continue
		}
		en, es := msg.String(), locale.Default().Printer(language.Spanish).Sprint(msg)
		if tc.en != "" && (en != tc.en || es != tc.es) {
			t.Errorf("%s %q: %q / %q", tc.field, tc.value, en, es)
		}
		if strings.Contains(en, tc.value) || strings.Contains(es, tc.value) {
			t.Errorf("message repeats the answer: %q", en)
		}
	}
}

// TestTranslationsRefusedWhenBroken: a translation without a language or
// without content would show a blank label: refused at load, named.
func TestTranslationsRefusedWhenBroken(t *testing.T) {
	for name, tr := range map[string]string{
		"no lang":    `[{"url":"content","valueString":"Hola"}]`,
		"bad lang":   `[{"url":"lang","valueCode":"not a tag!"},{"url":"content","valueString":"Hola"}]`,
		"no content": `[{"url":"lang","valueCode":"es"}]`,
	} {
		form := `{"resourceType":"Questionnaire","id":"x","url":"http://x/q","item":[{"linkId":"a","type":"string","text":"Hello",
			"_text":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/translation","extension":` + tr + `}]}}]}`
		_, err := forms.Parse([]byte(form))
		if err == nil || !strings.Contains(err.Error(), "translation") || !strings.Contains(err.Error(), `"a"`) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestNotApplicableSaysWhy: an answer to a question that does not apply
// names, in the reader's language, the answer the question depends on.
func TestNotApplicableSaysWhy(t *testing.T) {
	q, _ := forms.Builtin().Get("new-patient")
	var raw map[string]json.RawMessage
	json.Unmarshal([]byte(`{"family-name":"Ann","given-name":"Lee","birth-date":"1980-03-27","sex-at-birth":"female","allergies":false,"allergy-details":"secret detail","consent":true}`), &raw)
	_, errs := q.Validate(raw)
	msg := errs.MessageFor("allergy-details")
	if msg.Key != forms.MsgNotApplicable {
		t.Fatalf("errors %v", errs)
	}
	want := "Esta pregunta solo corresponde si su respuesta a «¿Tiene alguna alergia?» es «Sí», así que debe quedar vacía. Borre esta respuesta o cambie la respuesta de la que depende."
	if got := locale.Default().Printer(language.Spanish).Sprint(msg); got != want {
		t.Errorf("Spanish: %q\nwant      %q", got, want)
	}
	if strings.Contains(msg.String(), "secret") {
		t.Error("message repeats the answer")
	}
}

// TestValueSetDesignations: the options of an answerValueSet read in the
// patient's language from the ValueSet's designations, and the form is
// offered in their languages.
func TestValueSetDesignations(t *testing.T) {
	q, err := forms.Parse([]byte(`{"resourceType":"Questionnaire","id":"x","url":"http://x/q",
		"contained":[{"resourceType":"ValueSet","id":"yn","compose":{"include":[{"system":"http://x/cs","concept":[
			{"code":"y","display":"Yes","designation":[{"language":"es","value":"Sí"},{"value":"Affirmative"}]},
			{"code":"n","display":"No","designation":[{"language":"es","value":"No"}]}]}]}}],
		"item":[{"linkId":"a","type":"choice","text":"Sure?","answerValueSet":"#yn"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Languages(); !slices.Equal(got, []language.Tag{language.English, language.Spanish}) {
		t.Errorf("languages %v", got)
	}
	opts := q.Item("a").Options
	if opts[0].LabelIn(language.Spanish) != "Sí" || opts[0].LabelIn(language.English) != "Yes" || opts[0].Display != "Yes" {
		t.Errorf("option labels %q %q", opts[0].LabelIn(language.Spanish), opts[0].LabelIn(language.English))
	}
	if _, err := forms.Parse([]byte(`{"resourceType":"Questionnaire","id":"x","url":"http://x/q",
		"contained":[{"resourceType":"ValueSet","id":"yn","compose":{"include":[{"system":"http://x/cs","concept":[
			{"code":"y","display":"Yes","designation":[{"language":"not a tag!","value":"Sí"}]}]}]}}],
		"item":[{"linkId":"a","type":"choice","text":"Sure?","answerValueSet":"#yn"}]}`)); err == nil || !strings.Contains(err.Error(), "designation") {
		t.Errorf("bad designation language: %v", err)
	}
}
