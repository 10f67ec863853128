package transfer_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/forms/formstest"
	"github.com/airlockhq/airlock/transfer"
)

// sealedCheckForm has an item for each rule transfer checks again on
// sealed answers.
const sealedCheckForm = `{"resourceType":"Questionnaire","id":"sc","url":"http://x/sc","version":"1","item":[
	{"linkId":"name","type":"string","text":"Name","required":true,"maxLength":10,"extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/regex","valueString":"[A-Za-z ]+"},
		{"url":"http://hl7.org/fhir/StructureDefinition/minLength","valueInteger":2}]},
	{"linkId":"notes","type":"text","text":"Notes"},
	{"linkId":"age","type":"integer","text":"Age","extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueInteger":0},
		{"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueInteger":130}]},
	{"linkId":"weight","type":"decimal","text":"Weight","extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces","valueInteger":1}]},
	{"linkId":"dob","type":"date","text":"Born"},
	{"linkId":"at","type":"time","text":"At"},
	{"linkId":"site","type":"url","text":"Site"},
	{"linkId":"agree","type":"boolean","text":"Agree"},
	{"linkId":"colour","type":"choice","text":"Colour","answerOption":[
		{"valueCoding":{"system":"urn:c","code":"red","display":"Red"}},
		{"valueCoding":{"system":"urn:c","code":"blue","display":"Blue"}}]},
	{"linkId":"why-red","type":"string","text":"Why red?","enableWhen":[
		{"question":"colour","operator":"=","answerCoding":{"system":"urn:c","code":"red"}}]},
	{"linkId":"gp","type":"reference","text":"Doctor","answerOption":[
		{"valueReference":{"reference":"Practitioner/1","display":"Dr A"}}]},
	{"linkId":"clinic","type":"reference","text":"Clinic"},
	{"linkId":"scan","type":"attachment","text":"Scan","extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/mimeType","valueCode":"image/png"},
		{"url":"http://hl7.org/fhir/StructureDefinition/maxSize","valueDecimal":1000}]},
	{"linkId":"height","type":"quantity","text":"Height","extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption","valueCoding":{"system":"http://unitsofmeasure.org","code":"cm"}}]},
	{"linkId":"tags","type":"string","text":"Tags","repeats":true,"extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs","valueInteger":2}]},
	{"linkId":"history","type":"group","text":"History","item":[
		{"linkId":"smoker","type":"boolean","text":"Smoker"}]},
	{"linkId":"med","type":"group","text":"Medication","repeats":true,"extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs","valueInteger":2}],"item":[
		{"linkId":"drug","type":"string","text":"Drug","required":true},
		{"linkId":"dose","type":"integer","text":"Dose"}]},
	{"linkId":"allergy","type":"choice","text":"Allergy","repeats":true,"answerOption":[
		{"valueCoding":{"code":"pen","display":"Penicillin"}},{"valueCoding":{"code":"nut","display":"Nuts"}}],"item":[
		{"linkId":"reaction","type":"string","text":"Reaction","required":true}]}]}`

// TestPassQuarantinesSealedAnswersTheFormRefuses: transfer checks sealed
// answers (under a valid MAC, envelope and binding) against the form again,
// rule by rule, and quarantines a row that breaks any one of them, as only a
// holder of the row key (a compromised intake host) can make one. Each case
// breaks one rule of answers that are otherwise valid, and is checked alone
// (a pass with the good row first, then the broken one).
func TestPassQuarantinesSealedAnswersTheFormRefuses(t *testing.T) {
	t.Parallel()
	q, reg := formstest.Registry(t, sealedCheckForm)
	valid := `"name":[{"valueString":"Ann"}]`
	cases := []struct{ name, answers string }{
		{"required item missing", `"notes":[{"valueString":"x"}]`},
		{"unknown linkId", valid + `,"nickname":[{"valueString":"x"}]`},
		{"group linkId answered", valid + `,"history":[{"valueString":"x"}]`},
		{"answer carrying FHIR items", valid + `,"smoker":[{"valueBoolean":true,"item":[{"linkId":"name","answer":[{"valueString":"Bob"}]}]}]`},
		{"item of a repeating group at the top", valid + `,"drug":[{"valueString":"x"}]`},
		{"wrong value type", `"name":[{"valueInteger":3}]`},
		{"two value[x] in one answer", `"name":[{"valueString":"Ann","valueInteger":3}]`},
		{"no value[x]", `"name":[{}]`},
		{"too long", `"name":[{"valueString":"Annabelle Smith"}]`},
		{"too short", `"name":[{"valueString":"A"}]`},
		{"regex", `"name":[{"valueString":"Ann9"}]`},
		{"control character", `"name":[{"valueString":"An\u0007n"}]`},
		{"format character", valid + `,"notes":[{"valueString":"a\u202eb"}]`},
		{"two answers to a question that does not repeat", `"name":[{"valueString":"Ann"},{"valueString":"Bob"}]`},
		{"integer over maxValue", valid + `,"age":[{"valueInteger":131}]`},
		{"integer out of FHIR range", valid + `,"age":[{"valueInteger":4294967296}]`},
		{"decimal places", valid + `,"weight":[{"valueDecimal":70.25}]`},
		{"impossible date", valid + `,"dob":[{"valueDate":"2023-02-29"}]`},
		{"time", valid + `,"at":[{"valueTime":"25:00:00"}]`},
		{"url scheme", valid + `,"site":[{"valueUri":"javascript:alert(1)"}]`},
		{"boolean as string", valid + `,"agree":[{"valueString":"true"}]`},
		{"option not offered", valid + `,"colour":[{"valueCoding":{"system":"urn:c","code":"green"}}]`},
		{"enableWhen: answer to a disabled question", valid + `,"colour":[{"valueCoding":{"system":"urn:c","code":"blue"}}],"why-red":[{"valueString":"x"}]`},
		{"reference not offered", valid + `,"gp":[{"valueReference":{"reference":"Practitioner/999","display":"Dr A"}}]`},
		{"record id on a free reference", valid + `,"clinic":[{"valueReference":{"reference":"Organization/1","display":"North"}}]`},
		{"attachment type", valid + `,"scan":[{"valueAttachment":{"contentType":"text/html","data":"PGI+aGk8L2I+"}}]`},
		{"attachment size", valid + `,"scan":[{"valueAttachment":{"contentType":"image/png","data":"` + base64Of(make([]byte, 1001)) + `"}}]`},
		{"attachment hash", valid + `,"scan":[{"valueAttachment":{"contentType":"image/png","data":"aGVsbG8=","hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAA="}}]`},
		{"quantity unit", valid + `,"height":[{"valueQuantity":{"value":180,"code":"[in_i]","system":"http://unitsofmeasure.org"}}]`},
		{"maxOccurs of a question", valid + `,"tags":[{"valueString":"a"},{"valueString":"b"},{"valueString":"c"}]`},
		{"maxOccurs of a repeating group", valid + `,"med":[{"instance":{"drug":[{"valueString":"a"}]}},{"instance":{"drug":[{"valueString":"b"}]}},{"instance":{"drug":[{"valueString":"c"}]}}]`},
		{"required item in an instance", valid + `,"med":[{"instance":{"drug":[{"valueString":"a"}]}},{"instance":{"dose":[{"valueInteger":2}]}}]`},
		{"unknown linkId in an instance", valid + `,"med":[{"instance":{"drug":[{"valueString":"a"}]}},{"instance":{"note":[{"valueString":"b"}]}}]`},
		{"value[x] on an instance", valid + `,"med":[{"valueString":"x","instance":{"drug":[{"valueString":"a"}]}}]`},
		{"invalid answer in an instance", valid + `,"med":[{"instance":{"drug":[{"valueInteger":1}]}}]`},
		{"required item under an answer", valid + `,"allergy":[{"valueCoding":{"code":"pen"}}]`},
		{"item under an answer given at the top", valid + `,"allergy":[{"valueCoding":{"code":"pen"},"instance":{"reaction":[{"valueString":"rash"}]}}],"reaction":[{"valueString":"rash"}]`},
		{"answer under an answer not offered", valid + `,"allergy":[{"valueCoding":{"code":"egg"},"instance":{"reaction":[{"valueString":"rash"}]}}]`},
		{"items under an unanswered answer", valid + `,"allergy":[{"instance":{"reaction":[{"valueString":"rash"}]}}]`},
		{"instance on a question without items", `"name":[{"valueString":"Ann","instance":{"drug":[{"valueString":"a"}]}}]`},
	}
	good, errs := q.Validate(map[string]json.RawMessage{"name": json.RawMessage(`"Ann"`),
		"med":     json.RawMessage(`[{"drug":"a"}]`),
		"allergy": json.RawMessage(`[{"answer":"pen","item":{"reaction":"rash"}}]`)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	// One queue: a valid row, then every forged one, each checked by its
	// own quarantine reason.
	f := newFixture(t)
	f.mover.Forms = reg
	row, receipt, err := f.sealer.SealSubmission(q, good)
	if err != nil {
		t.Fatal(err)
	}
	ok := f.insert(row, receipt)
	forgedIDs := make([]string, len(cases))
	for i, c := range cases {
		var forged forms.Answers
		if err := json.Unmarshal([]byte("{"+c.answers+"}"), &forged); err != nil {
			t.Fatalf("%s: case answers: %v", c.name, err)
		}
		row, receipt, err := f.sealer.SealSubmission(q, forged)
		if err != nil {
			t.Fatal(err)
		}
		forgedIDs[i] = f.insert(row, receipt).SubmissionID
	}
	sum := f.pass()
	if sum.Moved != 1 || sum.Quarantined != len(cases) {
		t.Errorf("pass %+v, want the valid row moved and %d forged ones quarantined", sum, len(cases))
	}
	if _, moved := f.clinicalRows()[ok.SubmissionID]; !moved {
		t.Error("the valid row was not moved")
	}
	quarantined := f.quarantined()
	for i, c := range cases {
		if got := quarantined[forgedIDs[i]]; got != transfer.ReasonInvalid {
			t.Errorf("%s: forged row quarantined as %q, want %q", c.name, got, transfer.ReasonInvalid)
		}
	}
}

func base64Of(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
