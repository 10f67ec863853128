package clinical

import (
	"context"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/forms"
)

// TestListNamesByDefinition: the list takes the patient's name from the
// items whose item.definition names Patient.name.family and .given, for any
// form, not from the linkIds family-name and given-name.
func TestListNamesByDefinition(t *testing.T) {
	t.Parallel()
	a, _ := newFormApp(t, `{"resourceType":"Questionnaire","id":"gp-intake","url":"https://clinic.example/q/gp","item":[
		{"linkId":"surname","type":"string","text":"Surname","definition":"http://hl7.org/fhir/StructureDefinition/Patient#Patient.name.family"},
		{"linkId":"forename","type":"string","text":"First name","definition":"http://hl7.org/fhir/StructureDefinition/Patient#Patient.name.given"},
		{"linkId":"family-name","type":"string","text":"Family doctor's name"}]}`)
	day := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	a.insert(t, "gp-intake", forms.Answers{"surname": {str("Okafor")}, "forename": {str("Ngozi")}, "family-name": {str("Dr Smith")}}, day, ReviewNew)
	a.insert(t, "new-patient", patient("Doe", "Jane", ""), day.Add(time.Hour), ReviewNew)
	page, err := a.srv.subs.List(context.Background(), ListFilter{Limit: 10, Oldest: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range page.Rows {
		names = append(names, r.Name)
	}
	if len(names) != 2 || names[0] != "Okafor, Ngozi" || names[1] != "Doe, Jane" {
		t.Errorf("list names = %q, want [Okafor, Ngozi] [Doe, Jane]", names)
	}
}
