package forms

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes: form files are operator input, but
// a crash at start-up is still a crash. Whatever Parse accepts must then be
// usable without panics.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"new-patient.json", "symptoms.json"} {
		data, err := os.ReadFile(filepath.Join("examples", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(allTypes)
	f.Add([]byte(`{"resourceType":"Questionnaire","id":"x","title":"X","item":[{"linkId":"a","type":"string","text":"A"}]}`))
	f.Add(formJSON(`{"linkId":"a","type":"string","text":"A","enableWhen":[{"question":"b","operator":"exists","answerBoolean":true}]},
		{"linkId":"b","type":"string","text":"B","enableWhen":[{"question":"a","operator":"exists","answerBoolean":true}]}`))
	f.Add(formJSON(`{"linkId":"g","type":"group","item":[{"linkId":"g2","type":"group","item":[{"linkId":"q","type":"integer","text":"Q",
		"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueDecimal":-1e308}]}]}]}`))
	f.Add([]byte(`{"resourceType":"Questionnaire","item":[{"item":[{"item":[]}]}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"resourceType":"Questionnaire","id":"x","title":"X","item":[{"linkId":"a","type":"choice","text":"A","answerOption":[{"valueCoding":{"code":"\u0000"}}]}]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := Parse(data)
		if err != nil {
			if q != nil {
				t.Fatal("Parse returned a form and an error")
			}
			return
		}
		// Exercise the parsed form: nothing here may panic.
		raw := make(map[string]json.RawMessage)
		for i, it := range q.all {
			switch i % 4 {
			case 0:
				raw[it.LinkID] = json.RawMessage(`"x"`)
			case 1:
				raw[it.LinkID] = json.RawMessage(`true`)
			case 2:
				raw[it.LinkID] = json.RawMessage(`1`)
			}
		}
		q.Validate(raw)
		q.Validate(nil)
		for _, it := range q.Questions() {
			if len(it.Options) > 0 {
				a, errs := q.Validate(map[string]json.RawMessage{it.LinkID: mustMarshal(t, it.Options[0].Key())})
				if len(errs) == 0 {
					q.ResponseItems(a)
					q.Carried(a)
				}
			}
		}
		if _, err := NewRegistry(q); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzValidate submits arbitrary JSON objects to the new-patient form. No
// input may panic, and an accepted submission must survive the FHIR round
// trip (ResponseItems, AnswersFromResponseItems, Validate) unchanged, which
// is what intake relies on when a client posts a QuestionnaireResponse.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(newPatientSubmission))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"family-name":"A","given-name":"B","birth-date":"2024-02-29","sex-at-birth":"male","allergies":false,"consent":false}`))
	f.Add([]byte(`{"family-name":"A","given-name":"B","birth-date":"2025-02-29","sex-at-birth":"x","allergies":"no","consent":1}`))
	f.Add([]byte(`{"family-name":" A\u00a0","given-name":"B\u2028","birth-date":"2000-01-01","sex-at-birth":"other","allergies":true,"allergy-details":"a\r\nb\r","consent":true}`))
	f.Add([]byte(`{"family-name":"A","given-name":"B","birth-date":"2000-01-01","sex-at-birth":"other","allergies":false,"allergy-details":"x","consent":true,"height":-0,"alcohol-units":-0}`))
	f.Add([]byte(`{"family-name":"A","given-name":"B","birth-date":"2000-01-01","sex-at-birth":"ASKU","allergies":false,"consent":true,"height":1.5E+2,"alcohol-units":200,"smoker":null,"email":""}`))
	f.Add([]byte(`{"family-name":["A"],"patient":"x","unknown":1,"height":1e999,"alcohol-units":1.0}`))
	f.Add([]byte(`{"address":"\ud800","family-name":"\u0000"}`))

	q, ok := Builtin().Get("new-patient")
	if !ok {
		f.Fatal("no new-patient form")
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]json.RawMessage
		if json.Unmarshal(body, &raw) != nil {
			return
		}
		a, errs := q.Validate(raw)
		if len(errs) > 0 {
			if a != nil {
				t.Fatal("answers returned with errors")
			}
			for _, fe := range errs {
				if fe.Message.IsZero() || fe.Message.String() == fe.Message.Key {
					t.Fatalf("empty message for %q", fe.Field)
				}
			}
			return
		}
		if _, err := json.Marshal(a); err != nil {
			t.Fatalf("accepted answers do not marshal: %v", err)
		}
		raw2, err := q.AnswersFromResponseItems(q.ResponseItems(a))
		if err != nil {
			t.Fatalf("AnswersFromResponseItems: %v", err)
		}
		a2, errs := q.Validate(raw2)
		if len(errs) > 0 {
			t.Fatalf("round trip rejected: %v", errs)
		}
		if !reflect.DeepEqual(a, a2) {
			t.Fatalf("round trip changed the answers:\n got %v\nwant %v", a2, a)
		}
		if _, ok := q.Carried(a)["consent"]; ok {
			t.Fatal("consent carried")
		}
	})
}

func mustMarshal(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repeatFuzzForm has nested repeating groups, limits on instances,
// enableWhen within an instance and across instances, and a repeating
// question with questions under each answer.
const repeatFuzzForm = `{"resourceType":"Questionnaire","id":"rf","url":"http://x/rf","item":[
	{"linkId":"takes","type":"boolean","text":"Takes medication?"},
	{"linkId":"med","type":"group","text":"Medication","repeats":true,
	 "enableWhen":[{"question":"takes","operator":"=","answerBoolean":true}],
	 "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs","valueInteger":4}],
	 "item":[
		{"linkId":"name","type":"string","text":"Name","required":true},
		{"linkId":"regular","type":"boolean","text":"Every day?"},
		{"linkId":"dose","type":"integer","text":"Doses","enableWhen":[{"question":"regular","operator":"=","answerBoolean":true}]},
		{"linkId":"side","type":"group","text":"Side effect","repeats":true,"item":[
			{"linkId":"effect","type":"string","text":"Effect","required":true},
			{"linkId":"since","type":"time","text":"Since"}]}]},
	{"linkId":"why","type":"string","text":"Why every day?","enableWhen":[{"question":"regular","operator":"=","answerBoolean":true}]},
	{"linkId":"allergy","type":"choice","text":"Allergic to","repeats":true,"answerOption":[
		{"valueCoding":{"code":"pen","display":"Penicillin"}},{"valueCoding":{"code":"nut","display":"Nuts"}}],
	 "item":[{"linkId":"reaction","type":"string","text":"Reaction","required":true},
	         {"linkId":"first","type":"date","text":"First time","enableWhen":[{"question":"reaction","operator":"exists","answerBoolean":true}]}]}]}`

// FuzzValidateRepeating submits arbitrary JSON to a form with repeating
// groups: no input panics, and an accepted submission survives the FHIR
// round trip and the stored JSON round trip unchanged.
func FuzzValidateRepeating(f *testing.F) {
	f.Add([]byte(`{"takes":true,"med":[{"name":"A","regular":true,"dose":2,"side":[{"effect":"x","since":"10:00"}]},{"name":"B"}],"why":"x"}`))
	f.Add([]byte(`{"takes":true,"med":{"name":"A"}}`))
	f.Add([]byte(`{"takes":true,"med":[{},null,{"name":"C","side":[{"effect":"y"},{}]}]}`))
	f.Add([]byte(`{"takes":false,"med":[{"name":"A"}],"name":"B"}`))
	f.Add([]byte(`{"med":[[1]],"side":[{"effect":"z"}]}`))
	f.Add([]byte(`{"allergy":[{"answer":"pen","item":{"reaction":"rash","first":"2020-01-01"}},"nut"]}`))
	f.Add([]byte(`{"allergy":[{"item":{"reaction":"x"}},{"answer":"nut","item":{"reaction":"y"},"x":1}],"reaction":"z"}`))
	q, err := Parse([]byte(repeatFuzzForm))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]json.RawMessage
		if json.Unmarshal(body, &raw) != nil {
			return
		}
		a, errs := q.Validate(raw)
		if len(errs) > 0 {
			if a != nil {
				t.Fatal("answers returned with errors")
			}
			return
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("accepted answers do not marshal: %v", err)
		}
		var stored Answers
		if err := json.Unmarshal(b, &stored); err != nil || !reflect.DeepEqual(stored, a) {
			t.Fatalf("stored JSON round trip: %v %s", err, b)
		}
		raw2, err := q.AnswersFromResponseItems(q.ResponseItems(a))
		if err != nil {
			t.Fatalf("AnswersFromResponseItems: %v", err)
		}
		a2, errs := q.Validate(raw2)
		if len(errs) > 0 {
			t.Fatalf("round trip rejected: %v (%s)", errs, b)
		}
		if !reflect.DeepEqual(a, a2) {
			t.Fatalf("round trip changed the answers:\n got %v\nwant %v", a2, a)
		}
		if p := q.CheckResponse(q.ResponseItems(a)); len(p) > 0 {
			t.Fatalf("response does not fit the form: %v", p)
		}
	})
}
