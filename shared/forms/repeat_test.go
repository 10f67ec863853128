package forms_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
)

// medsForm has a repeating group (at most 3 medications, at least 1 when
// the patient takes any), a question inside it that applies only within the
// same instance, a nested repeating group, and a top-level question that
// looks into the group.
const medsForm = `{"resourceType":"Questionnaire","id":"meds","url":"http://x/meds","item":[
	{"linkId":"takes","type":"boolean","text":"Do you take medication?"},
	{"linkId":"med","type":"group","text":"Medication","repeats":true,
	 "enableWhen":[{"question":"takes","operator":"=","answerBoolean":true}],
	 "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs","valueInteger":1},
	              {"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs","valueInteger":3}],
	 "item":[
		{"linkId":"name","type":"string","text":"Name","required":true},
		{"linkId":"regular","type":"boolean","text":"Every day?"},
		{"linkId":"dose","type":"integer","text":"Doses a day","required":true,
		 "enableWhen":[{"question":"regular","operator":"=","answerBoolean":true}]},
		{"linkId":"side","type":"group","text":"Side effect","repeats":true,"item":[
			{"linkId":"effect","type":"string","text":"Effect","required":true}]}]},
	{"linkId":"last-regular","type":"string","text":"Why every day?",
	 "enableWhen":[{"question":"regular","operator":"=","answerBoolean":true}]}]}`

func validateJSON(t *testing.T, q *forms.Questionnaire, body string) (forms.Answers, map[string]string) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	a, errs := q.Validate(raw)
	got := map[string]string{}
	for _, fe := range errs {
		got[fe.Field] = fe.Message.Key
		if fe.NotApplicable() {
			got[fe.Field] = forms.MsgNotApplicable
		}
	}
	return a, got
}

func TestRepeatingGroupAnswers(t *testing.T) {
	t.Parallel()
	q := parseWith(t, medsForm)
	a, errs := validateJSON(t, q, `{"takes":true,"med":[
		{"name":"Aspirin","regular":true,"dose":2,"side":[{"effect":"Nausea"},{"effect":"Rash"}]},
		{"name":"Ibuprofen","regular":false},
		{}]}`)
	if len(errs) > 0 {
		t.Fatalf("refused: %v", errs)
	}
	meds := a["med"]
	if len(meds) != 2 {
		t.Fatalf("%d instances kept, want 2 (the blank one dropped): %v", len(meds), a)
	}
	if *meds[0].Instance["name"][0].ValueString != "Aspirin" || *meds[0].Instance["dose"][0].ValueInteger != 2 ||
		*meds[1].Instance["name"][0].ValueString != "Ibuprofen" || len(meds[1].Instance["dose"]) != 0 {
		t.Errorf("instances mixed up: %+v", meds)
	}
	if effects := meds[0].Instance["side"]; len(effects) != 2 || *effects[1].Instance["effect"][0].ValueString != "Rash" {
		t.Errorf("nested instances: %+v", effects)
	}

	// FHIR: one group item per instance, nested as the form nests; the
	// strict check accepts it and the way back gives the same answers.
	items := q.ResponseItems(a)
	var linkIDs []string
	for _, it := range items {
		linkIDs = append(linkIDs, it.LinkID)
	}
	if strings.Join(linkIDs, ",") != "takes,med,med" {
		t.Errorf("response items %v, want takes,med,med", linkIDs)
	}
	if problems := q.CheckResponse(items); len(problems) > 0 {
		t.Errorf("response does not fit the form: %v", problems)
	}
	raw, err := q.AnswersFromResponseItems(items)
	if err != nil {
		t.Fatal(err)
	}
	again, ferrs := q.Validate(raw)
	if len(ferrs) > 0 || !reflect.DeepEqual(again, a) {
		t.Errorf("FHIR round trip: %v\n got %+v\nwant %+v", ferrs, again, a)
	}
	// Sealed and stored as JSON: the same answers come back.
	b, _ := json.Marshal(a)
	var stored forms.Answers
	if err := json.Unmarshal(b, &stored); err != nil || !reflect.DeepEqual(stored, a) {
		t.Errorf("JSON round trip: %v %s", err, b)
	}
	// A top-level question looks at the nearest preceding instance: the
	// last one, where "regular" is false.
	if _, errs := validateJSON(t, q, `{"takes":true,"med":[{"name":"A","regular":true,"dose":1},{"name":"B","regular":false}],"last-regular":"x"}`); errs["last-regular"] != forms.MsgNotApplicable {
		t.Errorf("last-regular: %v, want not applicable (the last instance says not regular)", errs)
	}
}

func TestRepeatingGroupErrors(t *testing.T) {
	t.Parallel()
	q := parseWith(t, medsForm)
	for name, tt := range map[string]struct {
		body string
		want map[string]string
	}{
		"required in the second instance": {`{"takes":true,"med":[{"name":"A"},{"regular":true}]}`,
			map[string]string{"med[2]/name": forms.MsgRequired, "med[2]/dose": forms.MsgRequired}},
		"enableWhen in the same instance": {`{"takes":true,"med":[{"name":"A","regular":true,"dose":1},{"name":"B","regular":false,"dose":1}]}`,
			map[string]string{"med[2]/dose": forms.MsgNotApplicable}},
		"minOccurs": {`{"takes":true,"med":[{}]}`, map[string]string{"med": forms.MsgRequired}},
		"maxOccurs": {`{"takes":true,"med":[{"name":"A"},{"name":"B"},{"name":"C"},{"name":"D"}]}`,
			map[string]string{"med": "forms.group.max_instances"}},
		"group not applicable":  {`{"takes":false,"med":[{"name":"A"}]}`, map[string]string{"med": forms.MsgNotApplicable}},
		"nested required":       {`{"takes":true,"med":[{"name":"A","side":[{},{"effect":""},{"effect":3}]}]}`, map[string]string{"med[1]/side[3]/effect": "forms.type.text"}},
		"outside its instance":  {`{"takes":true,"med":[{"name":"A"}],"name":"B"}`, map[string]string{"name": forms.MsgInRepeatingGroup}},
		"top-level in instance": {`{"takes":true,"med":[{"name":"A","takes":true}]}`, map[string]string{"med[1]/takes": forms.MsgNotInThisGroup}},
		"not a list":            {`{"takes":true,"med":"Aspirin"}`, map[string]string{"med": "forms.group.instances"}},
		"list of strings":       {`{"takes":true,"med":["Aspirin"]}`, map[string]string{"med": "forms.group.instances"}},
		"unknown in instance":   {`{"takes":true,"med":[{"name":"A","zz":1}]}`, map[string]string{"med[1]/zz": forms.MsgUnknownField}},
	} {
		_, got := validateJSON(t, q, tt.body)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: errors %v, want %v", name, got, tt.want)
		}
	}
}

func TestRepeatingGroupCarried(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"c","url":"http://x/c","item":[
		{"linkId":"g","type":"group","repeats":true,"text":"Contact","item":[
			{"linkId":"rel","type":"string","text":"Relationship"},
			{"linkId":"phone","type":"string","text":"Phone","extension":[{"url":"`+forms.CarriedExtensionURL+`","valueBoolean":false}]}]}]}`)
	a, errs := validateJSON(t, q, `{"g":[{"rel":"mother","phone":"1"},{"phone":"2"}]}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c := q.Carried(a)
	if len(c["g"]) != 1 || c["g"][0].Instance["phone"] != nil || *c["g"][0].Instance["rel"][0].ValueString != "mother" {
		t.Errorf("carried %+v: want one instance with only rel", c)
	}
	var fields []string
	q.WalkAnswers(a, func(x forms.Answered) { fields = append(fields, x.Field) })
	if strings.Join(fields, ",") != "g[1]/rel,g[1]/phone,g[2]/phone" {
		t.Errorf("WalkAnswers fields %v", fields)
	}
}

// TestQuestionsUnderARepeatingQuestion: each answer of a repeating question
// holds its own answers to the questions under it: JSON gives them as
// {"answer": ..., "item": {...}}, FHIR as answer[].item, errors name the
// answer ("allergy[2]/reaction").
func TestQuestionsUnderARepeatingQuestion(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"al","url":"http://x/al","item":[
		{"linkId":"allergy","type":"choice","text":"Allergic to","repeats":true,"answerOption":[
			{"valueCoding":{"code":"pen","display":"Penicillin"}},{"valueCoding":{"code":"nut","display":"Nuts"}}],
		 "item":[{"linkId":"reaction","type":"string","text":"Reaction","required":true},
		         {"linkId":"severe","type":"boolean","text":"Severe?"}]}]}`)
	a, errs := validateJSON(t, q, `{"allergy":[{"answer":"pen","item":{"reaction":"rash"}},{"answer":"nut","item":{"reaction":"swelling","severe":true}}]}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	al := a["allergy"]
	if len(al) != 2 || al[0].ValueCoding.Code != "pen" || *al[0].Instance["reaction"][0].ValueString != "rash" || *al[1].Instance["severe"][0].ValueBoolean != true {
		t.Fatalf("answers %+v", al)
	}
	items := q.ResponseItems(a)
	b, _ := json.Marshal(items)
	if !strings.Contains(string(b), `{"valueCoding":{"code":"nut","display":"Nuts"},"item":[{"linkId":"reaction","text":"Reaction","answer":[{"valueString":"swelling"}]}`) || strings.Contains(string(b), `"instance"`) {
		t.Errorf("FHIR: %s", b)
	}
	if p := q.CheckResponse(items); len(p) > 0 {
		t.Errorf("response does not fit: %v", p)
	}
	raw, err := q.AnswersFromResponseItems(items)
	if err != nil {
		t.Fatal(err)
	}
	if again, ferrs := q.Validate(raw); len(ferrs) > 0 || !reflect.DeepEqual(again, a) {
		t.Errorf("FHIR round trip: %v %+v", ferrs, again)
	}
	for body, want := range map[string]map[string]string{
		`{"allergy":[{"answer":"pen","item":{"reaction":"rash"}},{"answer":"nut","item":{"severe":false}}]}`: {"allergy[2]/reaction": forms.MsgRequired},
		`{"allergy":[{"item":{"reaction":"rash"}}]}`:                                                         {"allergy": "forms.answer_items_need_answer"},
		`{"allergy":["pen"]}`: {"allergy[1]/reaction": forms.MsgRequired},
		`{"allergy":[{"answer":"pen","item":{"reaction":"x"},"extra":1}]}`: {"allergy": "forms.answer_with_items"},
		`{"allergy":"pen","reaction":"x"}`:                                 {"allergy[1]/reaction": forms.MsgRequired, "reaction": forms.MsgInRepeatingGroup},
	} {
		var raw map[string]json.RawMessage
		_ = json.Unmarshal([]byte(body), &raw)
		_, ferrs := q.Validate(raw)
		got := map[string]string{}
		for _, fe := range ferrs {
			got[fe.Field] = fe.Message.Key
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: errors %v, want %v", body, got, want)
		}
	}
	var fields []string
	q.WalkAnswers(a, func(x forms.Answered) { fields = append(fields, x.Field) })
	if strings.Join(fields, ",") != "allergy,allergy[1]/reaction,allergy[2]/reaction,allergy[2]/severe" {
		t.Errorf("WalkAnswers %v", fields)
	}
}

// TestInstancesBoundedPerSubmission: nested repeating groups cannot
// multiply into more than MaxInstances instances (1000 groups of 1000 blank
// instances is 3 MB of JSON).
func TestInstancesBoundedPerSubmission(t *testing.T) {
	t.Parallel()
	q := parseWith(t, medsForm)
	side := `[` + strings.TrimSuffix(strings.Repeat(`{},`, 600), ",") + `]`
	body := `{"takes":true,"med":[{"name":"A","side":` + side + `},{"name":"B","side":` + side + `}]}`
	_, errs := validateJSON(t, q, body)
	if len(errs) != 1 || errs["med[2]/side"] == "" {
		t.Errorf("1202 instances: errors %v, want one on med[2]/side", errs)
	}
}

// A repeating group holding a read-only item with an initial value (common
// in SDC forms: a unit, a code shown to the patient).
const readOnlyInGroupForm = `{"resourceType":"Questionnaire","id":"things","url":"http://x/things","item":[
	{"linkId":"any","type":"boolean","text":"Any?"},
	{"linkId":"thing","type":"group","text":"Things","repeats":true,
	 "enableWhen":[{"question":"any","operator":"=","answerBoolean":true}],
	 "item":[
		{"linkId":"kind","type":"string","text":"Kind","readOnly":true,"initial":[{"valueString":"device"}]},
		{"linkId":"name","type":"string","text":"Name","required":true}]}]}`

// TestBlankInstanceWithReadOnlyInitial: an instance the patient left blank
// is blank even when a read-only item in it has an initial value. It is not
// an answer to a group that does not apply ("No", then send: the page
// without script always draws one instance), nor a given instance whose
// required questions are missing (an adversarial review found both refused).
func TestBlankInstanceWithReadOnlyInitial(t *testing.T) {
	t.Parallel()
	q := parseWith(t, readOnlyInGroupForm)
	if _, errs := validateJSON(t, q, `{"any":false,"thing":[{}]}`); len(errs) > 0 {
		t.Errorf(`"No" with a blank instance: %v, want no error`, errs)
	}
	a, errs := validateJSON(t, q, `{"any":true,"thing":[{"name":"Pump"},{}]}`)
	if len(errs) > 0 {
		t.Errorf("one filled and one blank instance: %v, want no error", errs)
	}
	if got := len(a["thing"]); got != 1 {
		t.Errorf("%d instances kept, want 1 (the blank one dropped)", got)
	}
	if a, errs := validateJSON(t, q, `{"any":true,"thing":[{"name":"Pump"}]}`); len(errs) > 0 || *a["thing"][0].Instance["kind"][0].ValueString != "device" {
		t.Errorf("a filled instance: %v, %v; want it kept with the read-only initial value", errs, a)
	}
}
