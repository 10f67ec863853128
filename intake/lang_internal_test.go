package intake

import (
	"testing"

	"golang.org/x/text/language"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/locale"
)

// TestReadOnlyValueInThePagesLanguage: a read-only item's value that is an
// option or a boolean reads in the page's language.
func TestReadOnlyValueInThePagesLanguage(t *testing.T) {
	tr := func(es string) string {
		return `{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/translation","extension":[{"url":"lang","valueCode":"es"},{"url":"content","valueString":"` + es + `"}]}]}`
	}
	q, err := forms.Parse([]byte(`{"resourceType":"Questionnaire","id":"x","url":"http://x/q","item":[
		{"linkId":"c","type":"choice","text":"Colour","readOnly":true,"answerOption":[
			{"valueCoding":{"code":"r","display":"Red","_display":` + tr("Rojo") + `},"initialSelected":true}]},
		{"linkId":"b","type":"boolean","text":"Done","readOnly":true,"initial":[{"valueBoolean":true}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	es := locale.Default().Printer(language.Spanish)
	for id, want := range map[string]string{"c": "Rojo", "b": "Sí"} {
		it := q.Item(id)
		if got := valueText(es, it, it.Initial[0]); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
}
