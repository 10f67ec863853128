package forms

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// newPatientSubmission is a complete, valid answer to the new-patient form.
const newPatientSubmission = `{
	"family-name": "Muster", "given-name": "Erika", "birth-date": "1984-02-29", "sex-at-birth": "female",
	"email": "erika@example.org", "phone": "+49 30 1234567", "address": "Hauptstr. 1\r\n10115 Berlin",
	"insurance-number": "A123456789", "insurer": "AOK",
	"medications": "Ibuprofen 400 mg as needed", "allergies": true, "allergy-details": "Penicillin: rash",
	"smoker": "former", "alcohol-units": 4, "height": 171.5,
	"consent": true
}`

func decodeRaw(t testing.TB, body string) map[string]json.RawMessage {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustValidate(t testing.TB, q *Questionnaire, raw map[string]json.RawMessage) Answers {
	t.Helper()
	a, errs := q.Validate(raw)
	if len(errs) > 0 {
		t.Fatalf("Validate: %v", errs)
	}
	return a
}

func TestCarried(t *testing.T) {
	t.Parallel()
	np := builtinForm(t, "new-patient")
	a := mustValidate(t, np, decodeRaw(t, newPatientSubmission))
	a["not-in-form"] = a["email"]
	carried := np.Carried(a)
	if _, ok := carried["consent"]; ok {
		t.Error("consent carried")
	}
	if _, ok := carried["not-in-form"]; ok {
		t.Error("unknown linkId carried")
	}
	if _, ok := a["consent"]; !ok {
		t.Error("Carried modified its argument")
	}
	if len(carried) != len(a)-2 || !reflect.DeepEqual(carried["family-name"], a["family-name"]) {
		t.Errorf("carried = %v", carried)
	}

	q := mustParse(t, formJSON(`
		{"linkId":"keep","type":"string","text":"Keep"},
		{"linkId":"abuse","type":"group","text":"Anti-abuse","extension":[{"url":"`+CarriedExtensionURL+`","valueBoolean":false}],"item":[
			{"linkId":"nested","type":"group","item":[{"linkId":"deep","type":"string","text":"Deep"}]},
			{"linkId":"shallow","type":"string","text":"Shallow"}]}`))
	a = mustValidate(t, q, decodeRaw(t, `{"keep":"k","deep":"d","shallow":"s"}`))
	if got := q.Carried(a); len(got) != 1 || got["keep"] == nil {
		t.Errorf("Carried = %v, want only keep", got)
	}
}

func TestResponseItems(t *testing.T) {
	t.Parallel()
	np := builtinForm(t, "new-patient")
	a := mustValidate(t, np, decodeRaw(t, `{"family-name":"Muster","given-name":"Erika","birth-date":"1984-02-29",
		"sex-at-birth":"ASKU","allergies":false,"height":171.5,"consent":true}`))
	got, err := json.Marshal(np.ResponseItems(a))
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"linkId":"patient","text":"About you","item":[` +
		`{"linkId":"family-name","text":"Family name","answer":[{"valueString":"Muster"}]},` +
		`{"linkId":"given-name","text":"Given name(s)","answer":[{"valueString":"Erika"}]},` +
		`{"linkId":"birth-date","text":"Date of birth","answer":[{"valueDate":"1984-02-29"}]},` +
		`{"linkId":"sex-at-birth","text":"Sex assigned at birth","answer":[{"valueCoding":{"system":"http://terminology.hl7.org/CodeSystem/v3-NullFlavor","code":"ASKU","display":"Prefer not to say"}}]}]},` +
		`{"linkId":"history","text":"Medical history","item":[` +
		`{"linkId":"allergies","text":"Do you have any allergies?","answer":[{"valueBoolean":false}]},` +
		`{"linkId":"height","text":"Height in centimetres","answer":[{"valueDecimal":171.5}]}]},` +
		`{"linkId":"consent","text":"I agree that the clinic may store and use this information to provide my care.","answer":[{"valueBoolean":true}]}]`
	if string(got) != want {
		t.Errorf("ResponseItems:\n got %s\nwant %s", got, want)
	}
	if items := np.ResponseItems(nil); len(items) != 0 {
		t.Errorf("ResponseItems(nil) = %v", items)
	}
}

// TestResponseRoundTrip sends answers through the FHIR shape and back, as
// intake does when a client posts a QuestionnaireResponse.
func TestResponseRoundTrip(t *testing.T) {
	t.Parallel()
	pdf := base64.StdEncoding.EncodeToString([]byte("%PDF-1.7 report"))
	tests := []struct {
		form string
		body string
	}{
		{"new-patient", newPatientSubmission},
		{"symptoms", `{"complaint":"Cough for two weeks,\nworse at night","onset":"2025-01-31","severity":"6736007",
			"fever":true,"temperature":38.4,"contact-preference":"sms","heard-about":"A poster at the station",
			"documents":[{"contentType":"application/pdf","data":"` + pdf + `","title":"report.pdf"},{"data":"` + pdf + `"}]}`},
		{"symptoms", `{"complaint":"x","severity":"24484000","heard-about":"Friend or family","documents":{"data":"` + pdf + `"}}`},
	}
	for _, tt := range tests {
		q := builtinForm(t, tt.form)
		a := mustValidate(t, q, decodeRaw(t, tt.body))
		body, err := json.Marshal(map[string]any{"resourceType": "QuestionnaireResponse", "item": q.ResponseItems(a)})
		if err != nil {
			t.Fatal(err)
		}
		var qr struct {
			Item []ResponseItem `json:"item"`
		}
		if err := json.Unmarshal(body, &qr); err != nil {
			t.Fatal(err)
		}
		raw, err := q.AnswersFromResponseItems(qr.Item)
		if err != nil {
			t.Fatalf("AnswersFromResponseItems: %v", err)
		}
		if got := mustValidate(t, q, raw); !reflect.DeepEqual(got, a) {
			t.Errorf("%s: round trip changed the answers:\n got %v\nwant %v", tt.form, got, a)
		}
	}
}

func TestAnswersFromResponseItems(t *testing.T) {
	t.Parallel()
	s, n, d, b := "text", int64(7), json.Number("1.50"), true
	q, err := Parse([]byte(`{"resourceType":"Questionnaire","id":"x","item":[{"linkId":"z","type":"string"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.AnswersFromResponseItems([]ResponseItem{
		{LinkID: "g", Item: []ResponseItem{
			{LinkID: "s", Answer: []Value{{ValueString: &s}}},
			{LinkID: "many", Answer: []Value{{ValueInteger: &n}, {ValueDecimal: &d}, {ValueBoolean: &b}}},
		}},
		{LinkID: "c", Answer: []Value{{ValueCoding: &Coding{System: "urn:x", Code: "red", Display: "Red"}}}},
		{LinkID: "a", Answer: []Value{{ValueAttachment: &Attachment{Data: []byte("hi"), Size: 2}}}},
		{LinkID: "empty"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s": `"text"`, "many": `[7,1.50,true]`, "c": `"red"`, "a": `{"data":"aGk=","size":2}`}
	if len(got) != len(want) {
		t.Errorf("got keys %v", slices.Sorted(maps.Keys(got)))
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}

	bad := json.Number("NaN")
	deep := []ResponseItem{{LinkID: "leaf"}}
	for range maxResponseDepth {
		deep = []ResponseItem{{LinkID: "g", Item: deep}}
	}
	secret := "ZQXJ secret"
	for name, tt := range map[string]struct {
		items []ResponseItem
		want  string
	}{
		"no linkId":      {[]ResponseItem{{Answer: []Value{{ValueString: &s}}}}, "response item #1 has no linkId"},
		"duplicate":      {[]ResponseItem{{LinkID: "x"}, {LinkID: "g", Item: []ResponseItem{{LinkID: "x", Answer: []Value{{ValueString: &s}}}}}, {LinkID: "x", Answer: []Value{{ValueString: &s}}}}, `response item "x" appears more than once`},
		"two values":     {[]ResponseItem{{LinkID: "x", Answer: []Value{{ValueString: &s, ValueInteger: &n}}}}, `response item "x", answer 1: has 2 value[x] elements`},
		"no value":       {[]ResponseItem{{LinkID: "x", Answer: []Value{{ValueString: &s}, {}}}}, `answer 2: has 0 value[x] elements`},
		"coding no code": {[]ResponseItem{{LinkID: "x", Answer: []Value{{ValueCoding: &Coding{System: "urn:" + secret}}}}}, "valueCoding has no code"},
		"bad decimal":    {[]ResponseItem{{LinkID: "x", Answer: []Value{{ValueDecimal: &bad}}}}, "valueDecimal is not a number"},
		"odd linkId":     {[]ResponseItem{{LinkID: secret, Answer: []Value{{ValueCoding: &Coding{}}}}}, "response item #1, answer 1"},
		"too deep":       {deep, "nested more than"},
		"too many":       {[]ResponseItem{{LinkID: "x", Answer: make([]Value, MaxAnswersPerItem+1)}}, "more than 1000 answers"},
	} {
		_, err := q.AnswersFromResponseItems(tt.items)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "ZQXJ") {
			t.Errorf("%s: error echoes a value: %v", name, err)
		}
	}
}
