package forms

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// allTypes exercises every supported type, limits and enableWhen shapes.
var allTypes = formJSON(`
	{"linkId":"name","type":"string","text":"Name","required":true,"maxLength":5},
	{"linkId":"notes","type":"text","text":"Notes"},
	{"linkId":"age","type":"integer","text":"Age","extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueInteger":0},
		{"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueInteger":130}]},
	{"linkId":"count","type":"integer","text":"Count"},
	{"linkId":"weight","type":"decimal","text":"Weight","extension":[
		{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueDecimal":0.5},
		{"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueDecimal":500}]},
	{"linkId":"dob","type":"date","text":"Date of birth"},
	{"linkId":"seen","type":"dateTime","text":"Seen at"},
	{"linkId":"ok","type":"boolean","text":"OK?","required":true},
	{"linkId":"colour","type":"choice","text":"Colour","answerOption":[
		{"valueCoding":{"system":"urn:colours","code":"red","display":"Red"}},
		{"valueCoding":{"system":"urn:colours","code":"green"}},
		{"valueString":"Other colour"}]},
	{"linkId":"source","type":"open-choice","text":"Source","maxLength":10,"answerOption":[
		{"valueCoding":{"system":"urn:src","code":"web","display":"Web"}},
		{"valueString":"Friend"}]},
	{"linkId":"files","type":"attachment","text":"Files","repeats":true},
	{"linkId":"tags","type":"string","text":"Tags","repeats":true},
	{"linkId":"info","type":"display","text":"Some text"},
	{"linkId":"details","type":"group","text":"Details","enableWhen":[{"question":"ok","operator":"=","answerBoolean":true}],"item":[
		{"linkId":"detail","type":"string","text":"Detail","required":true},
		{"linkId":"sub","type":"group","text":"Sub","item":[{"linkId":"subdetail","type":"string","text":"Sub detail"}]}]},
	{"linkId":"why-red","type":"text","text":"Why red?","required":true,"enableWhen":[
		{"question":"colour","operator":"=","answerCoding":{"system":"urn:colours","code":"red"}}]},
	{"linkId":"not-red","type":"string","text":"Not red","enableWhen":[
		{"question":"colour","operator":"!=","answerCoding":{"code":"red"}}]},
	{"linkId":"dated","type":"string","text":"Dated","enableBehavior":"any","enableWhen":[
		{"question":"dob","operator":"=","answerDate":"2024-02-29"},
		{"question":"seen","operator":"exists","answerBoolean":true}]},
	{"linkId":"chained","type":"string","text":"Chained","enableWhen":[
		{"question":"detail","operator":"exists","answerBoolean":true}]},
	{"linkId":"adult","type":"string","text":"Adult","enableBehavior":"all","enableWhen":[
		{"question":"age","operator":"=","answerInteger":18},
		{"question":"tags","operator":"=","answerString":"x"}]},
	{"linkId":"choice-string","type":"string","text":"Other colour?","enableWhen":[
		{"question":"colour","operator":"=","answerString":"Other colour"}]},
	{"linkId":"req-group","type":"group","text":"Pick one","required":true,"enableWhen":[
		{"question":"count","operator":"exists","answerBoolean":true}],"item":[
		{"linkId":"pick-a","type":"string","text":"A"},{"linkId":"pick-b","type":"string","text":"B"}]}`)

// base holds the answers that make allTypes valid, so each case states only
// what it changes. ok=false keeps the "details" group disabled.
const base = `"name":"Ann","ok":false`

func TestValidate(t *testing.T) {
	t.Parallel()
	q := mustParse(t, allTypes)
	str := func(s string) []Value { return []Value{{ValueString: &s}} }
	data := base64.StdEncoding.EncodeToString([]byte("%PDF-1.7 hello"))
	sum := sha1.Sum([]byte("%PDF-1.7 hello"))
	hash := base64.StdEncoding.EncodeToString(sum[:])

	tests := []struct {
		name   string
		body   string            // JSON object members, added to base unless noBase
		noBase bool              // use body alone
		errs   map[string]string // field -> message; nil means valid
		check  func(t *testing.T, a Answers)
	}{
		{name: "minimal", check: func(t *testing.T, a Answers) {
			if len(a) != 2 || *a["name"][0].ValueString != "Ann" || *a["ok"][0].ValueBoolean != false {
				t.Errorf("answers = %v", a)
			}
		}},
		{name: "required missing", noBase: true, body: `"notes":"x"`, errs: map[string]string{"name": MsgRequired, "ok": MsgRequired}},
		{name: "required empty string", noBase: true, body: `"name":"   ","ok":null`, errs: map[string]string{"name": MsgRequired, "ok": MsgRequired}},
		{name: "required empty array", noBase: true, body: `"name":"Ann","ok":false,"tags":[]`},
		{name: "unknown field", body: `,"nope":1,"zz":2`, errs: map[string]string{"nope": MsgUnknownField, "zz": MsgUnknownField}},
		{name: "unknown odd key hidden", body: `,"my secret value":1`, errs: map[string]string{"(unknown field)": MsgUnknownField}},
		{name: "group not answerable", body: `,"details":"x"`, errs: map[string]string{"details": MsgNotAnswerable}},
		{name: "display not answerable", body: `,"info":"x"`, errs: map[string]string{"info": MsgNotAnswerable}},

		// string and text
		{name: "string trimmed", body: `,"tags":"  a b  "`, check: func(t *testing.T, a Answers) {
			if !reflect.DeepEqual(a["tags"], str("a b")) {
				t.Errorf("tags = %v", a["tags"])
			}
		}},
		{name: "string maxLength in runes", noBase: true, body: `"name":"ÄÖÜßé","ok":true,"detail":"d"`},
		{name: "string too long", noBase: true, body: `"name":"abcdef","ok":false`, errs: map[string]string{"name": "Enter at most 5 characters."}},
		{name: "string default cap", body: `,"tags":"` + strings.Repeat("é", DefaultMaxLength+1) + `"`, errs: map[string]string{"tags": "Enter at most 10,000 characters."}},
		{name: "string at default cap", body: `,"tags":"` + strings.Repeat("é", DefaultMaxLength) + `"`},
		{name: "string newline", body: `,"tags":"a\nb"`, errs: map[string]string{"tags": "This answer must not contain line breaks or control characters."}},
		{name: "string tab", body: `,"tags":"a\tb"`, errs: map[string]string{"tags": "This answer must not contain line breaks or control characters."}},
		{name: "string line separator", body: `,"tags":"a\u2028b"`, errs: map[string]string{"tags": "This answer must not contain line breaks or control characters."}},
		{name: "string NUL", body: `,"tags":"a\u0000b"`, errs: map[string]string{"tags": "This answer must not contain line breaks or control characters."}},
		{name: "string number", body: `,"tags":5`, errs: map[string]string{"tags": "This answer must be text."}},
		{name: "string object", body: `,"tags":{}`, errs: map[string]string{"tags": "This answer must be text."}},
		{name: "text newlines and tabs", body: `,"notes":"line 1\r\n\tline 2\rline 3\n"`, check: func(t *testing.T, a Answers) {
			if !reflect.DeepEqual(a["notes"], str("line 1\n\tline 2\nline 3")) {
				t.Errorf("notes = %q", *a["notes"][0].ValueString)
			}
		}},
		{name: "text control", body: `,"notes":"bell\u0007"`, errs: map[string]string{"notes": "This answer must not contain control characters other than line breaks and tabs."}},
		{name: "text C1 control", body: `,"notes":"a\u0085b"`, errs: map[string]string{"notes": "This answer must not contain control characters other than line breaks and tabs."}},
		{name: "text bool", body: `,"notes":true`, errs: map[string]string{"notes": "This answer must be text."}},

		// integer
		{name: "integer", body: `,"age":42,"count":-2147483648,"pick-a":"a"`, check: func(t *testing.T, a Answers) {
			if *a["age"][0].ValueInteger != 42 || *a["count"][0].ValueInteger != -2147483648 {
				t.Errorf("age = %v", a["age"])
			}
		}},
		{name: "integer bounds inclusive", body: `,"age":0`},
		{name: "integer max inclusive", body: `,"age":130`},
		{name: "integer below min", body: `,"age":-1`, errs: map[string]string{"age": "Enter a number of at least 0."}},
		{name: "integer above max", body: `,"age":131`, errs: map[string]string{"age": "Enter a number of at most 130."}},
		{name: "integer fraction", body: `,"age":4.5`, errs: map[string]string{"age": "Enter a whole number."}},
		{name: "integer exponent", body: `,"age":1e2`, errs: map[string]string{"age": "Enter a whole number."}},
		{name: "integer string", body: `,"age":"42"`, errs: map[string]string{"age": "Enter a whole number."}},
		{name: "integer beyond int32", body: `,"count":2147483648`, errs: map[string]string{"count": "This number is out of range."}},
		{name: "integer beyond int64", body: `,"count":99999999999999999999999`, errs: map[string]string{"count": "This number is out of range."}},
		{name: "integer empty string is unanswered", body: `,"age":""`},

		// decimal
		{name: "decimal keeps digits", body: `,"weight":70.50`, check: func(t *testing.T, a Answers) {
			if got := a["weight"][0].ValueDecimal.String(); got != "70.50" {
				t.Errorf("weight = %s", got)
			}
		}},
		{name: "decimal integer token", body: `,"weight":70`},
		{name: "decimal exponent", body: `,"weight":1.2e2`},
		{name: "decimal below min", body: `,"weight":0.4`, errs: map[string]string{"weight": "Enter a number of at least 0.5."}},
		{name: "decimal above max", body: `,"weight":500.01`, errs: map[string]string{"weight": "Enter a number of at most 500."}},
		{name: "decimal huge", body: `,"weight":1e400`, errs: map[string]string{"weight": "This number is out of range."}},
		{name: "decimal too many digits", body: `,"weight":1.` + strings.Repeat("0", 70), errs: map[string]string{"weight": "Enter at most 64 digits."}},
		{name: "decimal string", body: `,"weight":"70"`, errs: map[string]string{"weight": "Enter a number."}},

		// date and dateTime
		{name: "leap day 2024", body: `,"dob":"2024-02-29"`, check: func(t *testing.T, a Answers) {
			if *a["dob"][0].ValueDate != "2024-02-29" {
				t.Errorf("dob = %v", a["dob"])
			}
		}},
		{name: "no leap day 2025", body: `,"dob":"2025-02-29"`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "date month 13", body: `,"dob":"2024-13-01"`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "date April 31", body: `,"dob":"2024-04-31"`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "date short", body: `,"dob":"2024-2-9"`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "date with time", body: `,"dob":"2024-02-09T00:00:00Z"`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "date European", body: `,"dob":"09.02.2024"`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "date number", body: `,"dob":20240209`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "dateTime", body: `,"seen":"2024-02-29T13:45:00+01:00"`},
		{name: "dateTime UTC fraction", body: `,"seen":"2024-02-29T13:45:00.123Z"`},
		{name: "dateTime without zone", body: `,"seen":"2024-02-29T13:45:00"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},
		{name: "dateTime bad day", body: `,"seen":"2025-02-29T13:45:00Z"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},
		{name: "dateTime hour 25", body: `,"seen":"2024-02-28T25:45:00Z"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},
		{name: "dateTime comma fraction", body: `,"seen":"2024-02-28T13:45:00,5Z"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},
		{name: "dateTime one-digit hour", body: `,"seen":"2024-02-28T1:45:00Z"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},
		{name: "dateTime lowercase", body: `,"seen":"2024-02-28t13:45:00z"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},
		{name: "dateTime zone beyond 14h", body: `,"seen":"2024-02-28T13:45:00+15:00"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},
		{name: "dateTime year zero", body: `,"seen":"0000-02-28T13:45:00Z"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},
		{name: "date year zero", body: `,"dob":"0000-01-01"`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "date signed year", body: `,"dob":"+202-01-01"`, errs: map[string]string{"dob": "Enter a date as year-month-day, for example 1980-03-27."}},
		{name: "dateTime date only", body: `,"seen":"2024-02-28"`, errs: map[string]string{"seen": "Enter a date and time with time zone, for example 2024-03-27T14:30:00+01:00."}},

		// boolean
		{name: "boolean true", noBase: true, body: `"name":"Ann","ok":true,"detail":"d"`},
		{name: "boolean string", noBase: true, body: `"name":"Ann","ok":"true"`, errs: map[string]string{"ok": "Answer yes or no."}},
		{name: "boolean number", noBase: true, body: `"name":"Ann","ok":1`, errs: map[string]string{"ok": "Answer yes or no."}},

		// choice and open-choice
		{name: "choice coding", body: `,"colour":"green"`, check: func(t *testing.T, a Answers) {
			want := Coding{System: "urn:colours", Code: "green"}
			if *a["colour"][0].ValueCoding != want {
				t.Errorf("colour = %+v", a["colour"][0].ValueCoding)
			}
		}},
		{name: "choice string option", body: `,"colour":" Other colour "`, check: func(t *testing.T, a Answers) {
			if !reflect.DeepEqual(a["colour"], str("Other colour")) {
				t.Errorf("colour = %v", a["colour"])
			}
		}},
		{name: "choice not an option", body: `,"colour":"blue"`, errs: map[string]string{"colour": "Choose one of the options."}},
		{name: "choice display is not a code", body: `,"colour":"Red"`, errs: map[string]string{"colour": "Choose one of the options."}},
		{name: "choice case matters", body: `,"colour":"RED"`, errs: map[string]string{"colour": "Choose one of the options."}},
		{name: "choice object", body: `,"colour":{"code":"red"}`, errs: map[string]string{"colour": "Choose one of the options."}},
		{name: "open-choice option", body: `,"source":"web"`, check: func(t *testing.T, a Answers) {
			if a["source"][0].ValueCoding == nil || a["source"][0].ValueCoding.Display != "Web" {
				t.Errorf("source = %+v", a["source"])
			}
		}},
		{name: "open-choice string option", body: `,"source":"Friend"`, check: func(t *testing.T, a Answers) {
			if !reflect.DeepEqual(a["source"], str("Friend")) {
				t.Errorf("source = %v", a["source"])
			}
		}},
		{name: "open-choice free text", body: `,"source":"radio"`, check: func(t *testing.T, a Answers) {
			if !reflect.DeepEqual(a["source"], str("radio")) {
				t.Errorf("source = %v", a["source"])
			}
		}},
		{name: "open-choice free text too long", body: `,"source":"a newspaper ad"`, errs: map[string]string{"source": "Enter at most 10 characters."}},
		{name: "open-choice control", body: `,"source":"a\nb"`, errs: map[string]string{"source": "This answer must not contain line breaks or control characters."}},
		{name: "open-choice number", body: `,"source":3`, errs: map[string]string{"source": "Choose one of the options or type your answer."}},

		// attachment
		{name: "attachment", body: `,"files":{"contentType":"application/pdf","data":"` + data + `","title":" scan.pdf ","size":14,"hash":"` + hash + `"}`, check: func(t *testing.T, a Answers) {
			att := a["files"][0].ValueAttachment
			if att == nil || string(att.Data) != "%PDF-1.7 hello" || att.Size != 14 || att.Title != "scan.pdf" || att.ContentType != "application/pdf" || len(att.Hash) != 20 {
				t.Errorf("files = %+v", att)
			}
		}},
		{name: "attachments repeat", body: `,"files":[{"data":"` + data + `"},{"data":"` + data + `"}]`, check: func(t *testing.T, a Answers) {
			if len(a["files"]) != 2 || a["files"][1].ValueAttachment.Size != 14 {
				t.Errorf("files = %v", a["files"])
			}
		}},
		{name: "attachment bad base64", body: `,"files":{"data":"!!!"}`, errs: map[string]string{"files": "The file's data is not valid base64."}},
		{name: "attachment no data", body: `,"files":{"title":"x"}`, errs: map[string]string{"files": "The file has no data."}},
		{name: "attachment empty data", body: `,"files":{"data":""}`, errs: map[string]string{"files": "The file has no data."}},
		{name: "attachment url refused", body: `,"files":{"url":"http://169.254.169.254/","data":"` + data + `"}`, errs: map[string]string{"files": "This answer must be an attachment with only contentType, data, title, size and hash."}},
		{name: "attachment size mismatch", body: `,"files":{"data":"` + data + `","size":15}`, errs: map[string]string{"files": "The file's size does not match its data."}},
		{name: "attachment hash mismatch", body: `,"files":{"data":"` + data + `","hash":"AAAA"}`, errs: map[string]string{"files": "The file's hash does not match its data."}},
		{name: "attachment bad content type", body: `,"files":{"data":"` + data + `","contentType":"not a type"}`, errs: map[string]string{"files": "The file's content type is not valid."}},
		{name: "attachment title control", body: `,"files":{"data":"` + data + `","title":"a\u0000"}`, errs: map[string]string{"files": "The file name must be at most 255 characters, without control characters."}},
		{name: "attachment as string", body: `,"files":"` + data + `"`, errs: map[string]string{"files": "This answer must be a file."}},
		{name: "attachment second bad", body: `,"files":[{"data":"` + data + `"},{"data":"%%"}]`, errs: map[string]string{"files": "Answer 2: The file's data is not valid base64."}},

		// repeats
		{name: "repeats array", body: `,"tags":["a", "", null, " b "]`, check: func(t *testing.T, a Answers) {
			if len(a["tags"]) != 2 || *a["tags"][1].ValueString != "b" {
				t.Errorf("tags = %v", a["tags"])
			}
		}},
		{name: "repeats single value", body: `,"tags":"a"`},
		{name: "repeats all empty is unanswered", body: `,"tags":["", null]`, check: func(t *testing.T, a Answers) {
			if _, ok := a["tags"]; ok {
				t.Errorf("tags present: %v", a["tags"])
			}
		}},
		{name: "array for non-repeating", body: `,"notes":["a"]`, errs: map[string]string{"notes": "This question takes a single answer."}},
		{name: "nested array", body: `,"tags":[["a"]]`, errs: map[string]string{"tags": "This answer must be text."}},
		{name: "repeats bad element", body: `,"tags":["a", 2]`, errs: map[string]string{"tags": "Answer 2: This answer must be text."}},
		{name: "repeats at limit", body: `,"tags":[` + strings.TrimSuffix(strings.Repeat(`"a",`, MaxAnswersPerItem), ",") + `]`},
		{name: "repeats over limit", body: `,"tags":[` + strings.TrimSuffix(strings.Repeat(`"a",`, MaxAnswersPerItem+1), ",") + `]`, errs: map[string]string{"tags": "Give at most 1,000 answers."}},

		// enableWhen
		{name: "disabled group's required child may be missing", body: ``, check: func(t *testing.T, a Answers) {
			if _, ok := a["detail"]; ok {
				t.Error("detail present")
			}
		}},
		{name: "enabled group's required child", noBase: true, body: `"name":"Ann","ok":true`, errs: map[string]string{"detail": MsgRequired}},
		{name: "disabled group's child answered", body: `,"detail":"x"`, errs: map[string]string{"detail": MsgNotApplicable}},
		{name: "disabled nested child answered", body: `,"subdetail":"x"`, errs: map[string]string{"subdetail": MsgNotApplicable}},
		{name: "disabled and invalid says not applicable", body: `,"detail":5`, errs: map[string]string{"detail": MsgNotApplicable}},
		{name: "enableWhen coding enables required", body: `,"colour":"red"`, errs: map[string]string{"why-red": MsgRequired}},
		{name: "enableWhen coding answered", body: `,"colour":"red","why-red":"because"`},
		{name: "enableWhen disabled answered", body: `,"colour":"green","why-red":"because"`, errs: map[string]string{"why-red": MsgNotApplicable}},
		{name: "enableWhen unanswered question disables required", body: `,"why-red":""`},
		{name: "not-equal with no answer holds", body: `,"not-red":"x"`},
		{name: "not-equal with other answer holds", body: `,"colour":"green","not-red":"x"`},
		{name: "not-equal with that answer fails", body: `,"colour":"red","why-red":"r","not-red":"x"`, errs: map[string]string{"not-red": MsgNotApplicable}},
		{name: "enableWhen answerString on choice", body: `,"colour":"Other colour","choice-string":"teal"`},
		{name: "enableWhen date any", body: `,"dob":"2024-02-29","dated":"x"`},
		{name: "enableWhen exists any", body: `,"seen":"2024-02-29T10:00:00Z","dated":"x"`},
		{name: "enableWhen any none hold", body: `,"dob":"2024-02-28","dated":"x"`, errs: map[string]string{"dated": MsgNotApplicable}},
		{name: "enableWhen all of integer and repeat", body: `,"age":18,"tags":["y","x"],"adult":"yes"`},
		{name: "enableWhen all, one fails", body: `,"age":18,"tags":["y"],"adult":"yes"`, errs: map[string]string{"adult": MsgNotApplicable}},
		{name: "enableWhen chain through disabled question", body: `,"chained":"x"`, errs: map[string]string{"chained": MsgNotApplicable}},
		{name: "enableWhen chain enabled", noBase: true, body: `"name":"Ann","ok":true,"detail":"d","chained":"x"`},
		{name: "invalid answer makes dependants unknown", body: `,"colour":"blue","why-red":"x"`, errs: map[string]string{"colour": "Choose one of the options."}},
		{name: "required group needs an answer", body: `,"count":1`, errs: map[string]string{"req-group": MsgRequired}},
		{name: "required group answered", body: `,"count":1,"pick-b":"b"`},
		{name: "required group disabled", body: `,"pick-b":"b"`, errs: map[string]string{"pick-b": MsgNotApplicable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := "{" + base + tt.body + "}"
			if tt.noBase {
				body = "{" + tt.body + "}"
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &raw); err != nil {
				t.Fatalf("test body: %v", err)
			}
			a, errs := q.Validate(raw)
			got := make(map[string]string)
			for _, fe := range errs {
				got[fe.Field] = messageOrKey(fe, tt.errs[fe.Field])
			}
			if tt.errs == nil {
				if len(errs) > 0 {
					t.Fatalf("errors: %v", errs)
				}
				if a == nil {
					t.Fatal("nil Answers without errors")
				}
				for id, values := range a {
					if len(values) == 0 {
						t.Errorf("%s has no values", id)
					}
					for _, v := range values {
						if v.setFields() != 1 {
							t.Errorf("%s: value with %d fields", id, v.setFields())
						}
					}
				}
				if tt.check != nil {
					tt.check(t, a)
				}
				return
			}
			if a != nil {
				t.Errorf("answers returned with errors: %v", a)
			}
			if !reflect.DeepEqual(got, tt.errs) {
				t.Errorf("errors = %v\nwant     %v", got, tt.errs)
			}
		})
	}
}

func TestValidateErrorOrder(t *testing.T) {
	t.Parallel()
	q := mustParse(t, allTypes)
	raw := map[string]json.RawMessage{
		"zz-unknown": json.RawMessage(`1`),
		"a-unknown":  json.RawMessage(`1`),
		"seen":       json.RawMessage(`"x"`),
		"age":        json.RawMessage(`-5`),
		"colour":     json.RawMessage(`"red"`),
	}
	_, errs := q.Validate(raw)
	var fields []string
	for _, fe := range errs {
		fields = append(fields, fe.Field)
	}
	if got, want := strings.Join(fields, ","), "name,age,seen,ok,why-red,a-unknown,zz-unknown"; got != want {
		t.Errorf("error order = %s, want %s", got, want)
	}
	if errs.ForField("seen") != "forms.type.datetime" || errs.ForField("notes") != "" {
		t.Errorf("ForField wrong: %v", errs)
	}
	if msg := errs.Error(); !strings.HasPrefix(msg, "invalid answers: name: This question is required.; age: Enter a number of at least 0.;") {
		t.Errorf("Error() = %q", msg)
	}
}

func TestValidateBoundsUnknownFields(t *testing.T) {
	t.Parallel()
	q := mustParse(t, allTypes)
	raw := map[string]json.RawMessage{"name": json.RawMessage(`"Ann"`), "ok": json.RawMessage(`true`), "detail": json.RawMessage(`"d"`)}
	for i := range 10000 {
		raw[fmt.Sprintf("junk-%05d", i)] = json.RawMessage(`1`)
	}
	_, errs := q.Validate(raw)
	if len(errs) != maxUnknownFields+1 || errs[0].Field != "junk-00000" {
		t.Errorf("got %d errors, first %v", len(errs), errs[0])
	}
}

// TestValidateNeverEchoes submits one distinctive value in every wrong shape
// to every field and checks that no error (or its Error text) repeats it.
func TestValidateNeverEchoes(t *testing.T) {
	t.Parallel()
	const secret = "ZQXJ-4711-SECRET-ÄÖ"
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	shapes := []string{
		`"` + secret + `"`,
		`"` + secret + strings.Repeat("x", 20000) + `"`,
		`"` + secret + `\u0007"`,
		`["` + secret + `"]`,
		`[1,"` + secret + `"]`,
		`{"data":"` + secret + `"}`,
		`{"data":"` + b64 + `","title":"` + secret + `\u0000"}`,
		`{"data":"` + b64 + `","contentType":"` + secret + `"}`,
		`{"data":"` + b64 + `","` + secret + `":1}`,
		`{"data":"` + b64 + `","size":99,"hash":"` + b64 + `"}`,
		`47114711471147114711`,
	}
	for _, form := range []*Questionnaire{mustParse(t, allTypes), builtinForm(t, "new-patient"), builtinForm(t, "symptoms")} {
		for _, it := range form.all {
			for _, shape := range shapes {
				raw := map[string]json.RawMessage{it.LinkID: json.RawMessage(shape), secret: json.RawMessage(`1`)}
				_, errs := form.Validate(raw)
				if len(errs) == 0 {
					continue
				}
				text, _ := json.Marshal(errs)
				for _, s := range []string{string(text), errs.Error()} {
					if strings.Contains(s, "ZQXJ") || strings.Contains(s, "4711") {
						t.Errorf("%s/%s: error echoes the value: %s", form.ID, it.LinkID, s)
					}
				}
			}
		}
	}
}

// TestValidateToleratesBadRaw feeds values no JSON decoder would produce, as
// a caller building the map by hand might.
func TestValidateToleratesBadRaw(t *testing.T) {
	t.Parallel()
	q := mustParse(t, allTypes)
	for _, bad := range []string{``, ` `, `"`, `[`, `[1,`, `[1] x`, `{`, `-Inf`, `NaN`, `0x10`, `+1`, `1.`, `01`, `-`, `tru`, `"\ud800"`, "\"\xff\""} {
		for _, it := range q.all {
			raw := map[string]json.RawMessage{"name": json.RawMessage(`"Ann"`), "ok": json.RawMessage(`false`), it.LinkID: json.RawMessage(bad)}
			a, errs := q.Validate(raw)
			if len(errs) == 0 {
				if _, err := json.Marshal(a); err != nil {
					t.Errorf("%s = %q: accepted an answer that does not marshal: %v", it.LinkID, bad, err)
				}
			}
		}
	}
}

func TestIsJSONNumber(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "1.5": true, "-1.5e-3": true, "1E+2": true, "0.0": true,
		"": false, "-": false, "01": false, "1.": false, ".5": false, "1e": false, "1e+": false, "+1": false,
		"Inf": false, "NaN": false, "0x10": false, "1_000": false, "1.5.5": false, " 1": false,
	} {
		if got := isJSONNumber(s); got != want {
			t.Errorf("isJSONNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValueString(t *testing.T) {
	t.Parallel()
	s, n, d, b, f := "text", int64(-3), json.Number("36.6"), true, false
	date := "2024-02-29"
	tests := []struct {
		v    Value
		want string
	}{
		{Value{}, ""},
		{Value{ValueString: &s}, "text"},
		{Value{ValueInteger: &n}, "-3"},
		{Value{ValueDecimal: &d}, "36.6"},
		{Value{ValueBoolean: &b}, "yes"},
		{Value{ValueBoolean: &f}, "no"},
		{Value{ValueDate: &date}, "2024-02-29"},
		{Value{ValueDateTime: &date}, "2024-02-29"},
		{Value{ValueCoding: &Coding{Code: "red", Display: "Red"}}, "Red"},
		{Value{ValueCoding: &Coding{Code: "red"}}, "red"},
		{Value{ValueAttachment: &Attachment{Title: "scan.pdf", Size: 2048, Data: []byte("x")}}, "scan.pdf (2048 bytes)"},
		{Value{ValueAttachment: &Attachment{Data: []byte("abc")}}, "attachment (3 bytes)"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestValueMarshalsAsFHIR(t *testing.T) {
	t.Parallel()
	d := json.Number("70.50")
	b := false
	got, err := json.Marshal([]Value{
		{ValueDecimal: &d},
		{ValueBoolean: &b},
		{ValueCoding: &Coding{System: "urn:x", Code: "a"}},
		{ValueAttachment: &Attachment{ContentType: "image/png", Data: []byte("hi"), Size: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"valueDecimal":70.50},{"valueBoolean":false},{"valueCoding":{"system":"urn:x","code":"a"}},` +
		`{"valueAttachment":{"contentType":"image/png","data":"aGk=","size":2}}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// messageOrKey is what a test compares an error with: its key when the
// test wants a key (forms.*), else its English text. Both answers to a
// question that does not apply compare equal to MsgNotApplicable.
func messageOrKey(fe FieldError, want string) string {
	if strings.HasPrefix(want, "forms.") {
		if fe.NotApplicable() {
			return MsgNotApplicable
		}
		return fe.Message.Key
	}
	return fe.Message.String()
}
