package forms_test

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestTimeAndURLItems: time takes a time of day (stored as FHIR writes it,
// HH:MM:SS), url an absolute http(s) address and nothing a browser would
// repair or a phishing link would hide behind; both survive the FHIR round
// trip, and enableWhen compares times.
func TestTimeAndURLItems(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"tu","url":"http://x/tu","item":[
		{"linkId":"woke","type":"time","text":"When did you wake up?"},
		{"linkId":"late","type":"string","text":"Why so late?",
		 "enableWhen":[{"question":"woke","operator":">","answerTime":"10:00:00"}]},
		{"linkId":"page","type":"url","text":"Link to your care plan","maxLength":40}]}`)
	for _, tt := range []struct {
		body string
		errs []string
	}{
		{`{"woke":"07:15","page":"https://clinic.example/plan?id=7"}`, nil},
		{`{"woke":"11:05:30","late":"night shift"}`, nil},
		{`{"woke":"23:59:59.250"}`, nil},
		{`{"woke":"07:15","late":"x"}`, []string{"late"}},
		{`{"woke":"24:00"}`, []string{"woke"}},
		{`{"woke":"7:15"}`, []string{"woke"}},
		{`{"woke":715}`, []string{"woke"}},
		{`{"page":"javascript:alert(1)"}`, []string{"page"}},
		{`{"page":"https://user:pw@evil.example/"}`, []string{"page"}},
		{`{"page":"ftp://files.example/x"}`, []string{"page"}},
		{`{"page":"clinic.example/plan"}`, []string{"page"}},
		{`{"page":"https://clinic.example/a b"}`, []string{"page"}},
		{`{"page":"https://clinic.example/a-very-long-path-over-forty"}`, []string{"page"}},
	} {
		a, errs := validateJSON(t, q, tt.body)
		var fields []string
		for f := range errs {
			fields = append(fields, f)
		}
		if !reflect.DeepEqual(fields, tt.errs) && (len(fields) != 0 || tt.errs != nil) {
			t.Errorf("%s: errors %v, want on %v", tt.body, errs, tt.errs)
			continue
		}
		if len(errs) > 0 {
			continue
		}
		items := q.ResponseItems(a)
		if p := q.CheckResponse(items); len(p) > 0 {
			t.Errorf("%s: response does not fit: %v", tt.body, p)
		}
		raw, err := q.AnswersFromResponseItems(items)
		if err != nil {
			t.Fatal(err)
		}
		if again, ferrs := q.Validate(raw); len(ferrs) > 0 || !reflect.DeepEqual(again, a) {
			t.Errorf("%s: FHIR round trip %v %v", tt.body, ferrs, again)
		}
	}
	a, _ := validateJSON(t, q, `{"woke":"07:15","page":"https://clinic.example/plan"}`)
	b, _ := json.Marshal(q.ResponseItems(a))
	if want := `[{"linkId":"woke","text":"When did you wake up?","answer":[{"valueTime":"07:15:00"}]},{"linkId":"page","text":"Link to your care plan","answer":[{"valueUri":"https://clinic.example/plan"}]}]`; string(b) != want {
		t.Errorf("FHIR items %s\nwant %s", b, want)
	}
}

// TestTimeOptions: answerOption valueTime on a time item; "14:30" picks the
// option 14:30:00, any other time is refused, and the export fits the form.
func TestTimeOptions(t *testing.T) {
	t.Parallel()
	q := parseWith(t, `{"resourceType":"Questionnaire","id":"to","url":"http://x/to","item":[
		{"linkId":"slot","type":"time","text":"Appointment slot","answerOption":[{"valueTime":"09:00:00"},{"valueTime":"14:30:00"}]}]}`)
	a, errs := validateJSON(t, q, `{"slot":"14:30"}`)
	if len(errs) > 0 || *a["slot"][0].ValueTime != "14:30:00" {
		t.Fatalf("14:30: %v %+v", errs, a)
	}
	if p := q.CheckResponse(q.ResponseItems(a)); len(p) > 0 {
		t.Errorf("response does not fit: %v", p)
	}
	if _, errs := validateJSON(t, q, `{"slot":"10:00"}`); len(errs) != 1 {
		t.Errorf("10:00 is not an option: %v", errs)
	}
}
