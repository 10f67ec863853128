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
			checkRefusal(t, a, errs)
			return
		}
		if _, err := json.Marshal(a); err != nil {
			t.Fatalf("accepted answers do not marshal: %v", err)
		}
		checkSealedAccepted(t, q, a)
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
		checkSealedAccepted(t, q, a)
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

// checkSealedAccepted: answers Validate accepted, sealed as JSON and read
// back, pass ValidateSealed unchanged (what transfer does with every row).
func checkSealedAccepted(t *testing.T, q *Questionnaire, a Answers) {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var sealed Answers
	if err := json.Unmarshal(b, &sealed); err != nil {
		t.Fatal(err)
	}
	got, errs := q.ValidateSealed(sealed)
	if len(errs) > 0 {
		t.Fatalf("ValidateSealed rejected what Validate accepted: %v (%s)", errs, b)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("ValidateSealed changed the answers:\n got %v\nwant %v", got, a)
	}
}

// roundTripValidate is how transfer checked sealed answers before
// ValidateSealed: through a QuestionnaireResponse and back into Validate.
func roundTripValidate(q *Questionnaire, a Answers) (Answers, bool) {
	raw, err := q.AnswersFromResponseItems(q.ResponseItems(a))
	if err != nil {
		return nil, false
	}
	out, errs := q.Validate(raw)
	return out, len(errs) == 0
}

// checkSealedAgrees: ValidateSealed accepts nothing the round trip through
// a QuestionnaireResponse refuses, and what it accepts comes out the same.
func checkSealedAgrees(t *testing.T, q *Questionnaire, sealed []byte) {
	t.Helper()
	var a, again Answers
	if json.Unmarshal(sealed, &a) != nil {
		return
	}
	json.Unmarshal(sealed, &again) // the round trip may not see what ValidateSealed touched
	got, errs := q.ValidateSealed(a)
	want, ok := roundTripValidate(q, again)
	if len(errs) > 0 {
		checkRefusal(t, got, errs)
		return
	}
	if !ok {
		t.Fatalf("ValidateSealed accepted answers the round trip refuses: %s", sealed)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ValidateSealed and the round trip differ on %s:\n got %v\nwant %v", sealed, got, want)
	}
}

// sealedSeeds are sealed answers (Answers as JSON) for the fuzzers of
// ValidateSealed, valid and not.
var sealedSeeds = []string{
	`{}`,
	`{"takes":[{"valueBoolean":true}],"med":[{"instance":{"name":[{"valueString":"A"}],"regular":[{"valueBoolean":true}],"dose":[{"valueInteger":2}],"side":[{"instance":{"effect":[{"valueString":"x"}],"since":[{"valueTime":"10:00:00"}]}}]}},{"instance":{"name":[{"valueString":"B"}]}}],"why":[{"valueString":"x"}]}`,
	`{"takes":[{"valueBoolean":false}],"med":[{"instance":{"name":[{"valueString":"A"}]}}]}`,
	`{"med":[{"valueString":"x","instance":{"name":[{"valueString":"A"}]}}],"name":[{"valueString":"B"}]}`,
	`{"allergy":[{"valueCoding":{"code":"pen","display":"Penicillin"},"instance":{"reaction":[{"valueString":"rash"}],"first":[{"valueDate":"2020-01-01"}]}},{"valueCoding":{"code":"nut"},"instance":{"reaction":[{"valueString":"y"}]}}]}`,
	`{"allergy":[{"valueCoding":{"code":"egg"},"instance":{"reaction":[{"valueString":"y"}]}}],"reaction":[{"valueString":"z"}]}`,
	`{"allergy":[{"instance":{"reaction":[{"valueString":"y"}]}}]}`,
	`{"why":[{"valueString":"x","item":[{"linkId":"takes","answer":[{"valueBoolean":true}]}]}]}`,
	`{"name":[{"valueString":"Ann"}],"ok":[{"valueBoolean":false}],"age":[{"valueInteger":131}]}`,
	`{"name":[{"valueString":"Annabel"}],"ok":[{"valueBoolean":true}],"detail":[{"valueString":"d"}]}`,
	`{"name":[{"valueString":"Ann"},{"valueString":"Bob"}],"ok":[{"valueBoolean":false}],"tags":[{"valueString":"a"},{"valueString":" "}]}`,
	`{"name":[{"valueString":"Ann"}],"ok":[{"valueBoolean":false}],"colour":[{"valueCoding":{"system":"urn:other","code":"red"}}],"why-red":[{"valueString":"r"}]}`,
	`{"name":[{"valueString":"Ann"}],"ok":[{"valueBoolean":false}],"colour":[{"valueCoding":{"code":"blue"}}],"source":[{"valueString":"Somewhere else"}]}`,
	`{"name":[{"valueString":"Ann"}],"ok":[{"valueBoolean":false}],"weight":[{"valueDecimal":0.25}],"dob":[{"valueDate":"2023-02-29"}],"seen":[{"valueDateTime":"2024-01-01T10:00:00"}]}`,
	`{"name":[{"valueString":"Ann"}],"ok":[{"valueBoolean":false}],"files":[{"valueAttachment":{"contentType":"application/pdf","data":"JVBERi0xLjcgaGVsbG8=","size":3,"title":"a.pdf"}}]}`,
	`{"name":[{"valueString":"Ann"}],"ok":[{"valueBoolean":false}],"count":[{"valueDecimal":1.5}],"notes":[{"valueInteger":3}],"info":[{"valueString":"x"}],"details":[{"valueString":"x"}]}`,
	`{"name":[{"valueString":"A\u0000"}],"ok":[{"valueBoolean":"yes"}],"unknown":[{"valueString":"x"}]}`,
	`{"name":[{"valueString":"Ann","valueInteger":1}],"ok":[{}]}`,
}

// FuzzValidateSealed feeds ValidateSealed arbitrary sealed answers for the
// form with every type and the one with repeating groups: it accepts
// nothing that Validate, given the same answers as a QuestionnaireResponse,
// refuses, and what it accepts comes out the same.
func FuzzValidateSealed(f *testing.F) {
	for _, s := range sealedSeeds {
		f.Add([]byte(s))
	}
	typed, err := Parse(allTypes)
	if err != nil {
		f.Fatal(err)
	}
	repeating, err := Parse([]byte(repeatFuzzForm))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sealed []byte) {
		checkSealedAgrees(t, typed, sealed)
		checkSealedAgrees(t, repeating, sealed)
	})
}

// FuzzDecodeSealedAnswers: whatever DecodeSealedAnswers accepts,
// json.Unmarshal reads as the same Answers; and the JSON json.Marshal makes
// of answers Validate accepted, it reads back unchanged.
func FuzzDecodeSealedAnswers(f *testing.F) {
	for _, s := range sealedSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":[{"valueReference":{"reference":"P/1","identifier":{"value":"x"},"type":"Patient"}}]}`))
	f.Add([]byte(`{"a":[{"valueQuantity":{"value":1.5e3,"unit":"cm","system":"http://unitsofmeasure.org","code":"cm"}}]}`))
	f.Add([]byte(`{"a":[{"valueAttachment":{"contentType":"image/png","data":"aGVsbG8=","title":"\u00e9\ud83d\ude00","size":5,"hash":""}}]}`))
	f.Add([]byte(`{"a" : [ {"valueString" : "x\"\\\/\b\f\n\r\t\u0041\u2028"} ] , "b":[]}`))
	f.Add([]byte(`{"a":[{"valueString":"\ud800"}]}`))
	f.Add([]byte(`{"a":[{"valueInteger":-0,"valueDecimal":-0.0e-0}],"a":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeSealedAnswers(data)
		if err != nil {
			return
		}
		var want Answers
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("DecodeSealedAnswers accepted what json.Unmarshal refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeSealedAnswers and json.Unmarshal differ on %q:\n got %#v\nwant %#v", data, got, want)
		}
	})
}

// TestDecodeSealedAnswersReadsWhatValidateReturns: the sealed JSON of
// answers Validate accepted (every type, repeating groups, answers with
// questions under them) reads back unchanged.
func TestDecodeSealedAnswersReadsWhatValidateReturns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ form, body string }{
		{string(allTypes), `{"name":"Ann","ok":true,"detail":"d","subdetail":"s","notes":"a\r\nb \u2028 <&>","age":30,"count":-2,"pick-a":"p","weight":70.25,
			"dob":"2024-02-29","seen":"2024-01-01T10:00:00Z","colour":"red","why-red":"r","source":"Friend","tags":["x","y"],"dated":"z",
			"files":[{"contentType":"application/pdf","data":"JVBERi0xLjcgaGVsbG8=","title":"Scan \u00e9"}]}`},
		{repeatFuzzForm, `{"takes":true,"med":[{"name":"A","regular":true,"dose":2,"side":[{"effect":"x","since":"10:00"}]},{"name":"B"}],
			"allergy":[{"answer":"pen","item":{"reaction":"rash","first":"2020-01-01"}},{"answer":"nut","item":{"reaction":"hives"}}]}`},
	} {
		q := mustParse(t, []byte(tc.form))
		a := mustValidate(t, q, decodeRaw(t, tc.body))
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSealedAnswers(b)
		if err != nil {
			t.Fatalf("DecodeSealedAnswers(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("DecodeSealedAnswers(%s):\n got %v\nwant %v", b, got, a)
		}
	}
}

// FuzzMarshalAnswers: MarshalAnswers writes exactly what json.Marshal
// writes, for any answers json.Unmarshal reads.
func FuzzMarshalAnswers(f *testing.F) {
	for _, s := range sealedSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":[{"valueString":"<&>\u2028\u2029\u0000\u001f\b\f\n\r\t\"\\ é","valueInteger":-3,"valueDecimal":1.50,"valueBoolean":false}],"b":null,"c":[]}`))
	f.Add([]byte(`{"a":[{"valueAttachment":{"data":"aGVsbG8=","size":5,"hash":"AA=="}},{"valueAttachment":{"title":"t","contentType":"x/y"}},{"valueAttachment":{}}]}`))
	f.Add([]byte(`{"a":[{"valueQuantity":{"value":1,"code":"cm"}},{"valueQuantity":{}},{"valueQuantity":{"value":2,"unit":"u","system":"s"}}]}`))
	f.Add([]byte(`{"a":[{"valueReference":{"reference":"P/1","type":"T"}},{"valueReference":{"identifier":{"a" : 1}}},{"valueCoding":{}},{"item":[]}]}`))
	f.Add([]byte(`{"a":[{"valueDecimal":"1x"}]}`))
	f.Add([]byte("{\"a\":[{\"valueString\":\"\xff\xfe\"}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Answers
		if json.Unmarshal(data, &a) != nil {
			return
		}
		want, werr := json.Marshal(a)
		got, err := MarshalAnswers(a)
		if (err != nil) != (werr != nil) || string(got) != string(want) {
			t.Fatalf("MarshalAnswers(%#v) = %s, %v; json.Marshal: %s, %v", a, got, err, want, werr)
		}
	})
}

// FuzzAppendString: appendString writes a string exactly as json.Marshal
// does (answerJSON and MarshalAnswers rely on it).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<&>\u2028\u2029", "\x00\x1f\b\f\n\r\t\"\\", "é😀", "\xff\xfe", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if got := appendString(nil, s); err != nil || string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, json.Marshal: %s, %v", s, got, want, err)
		}
	})
}

// checkRefusal: a validation that fails returns no answers, and every error
// has a message of its own (not an empty one, not a bare catalogue key).
func checkRefusal(t *testing.T, a Answers, errs FieldErrors) {
	t.Helper()
	if a != nil {
		t.Fatal("answers returned with errors")
	}
	for _, fe := range errs {
		if fe.Message.IsZero() || fe.Message.String() == fe.Message.Key {
			t.Fatalf("empty message for %q", fe.Field)
		}
	}
}
