package forms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// formJSON wraps item JSON in an otherwise valid Questionnaire.
func formJSON(items string) []byte {
	return []byte(`{"resourceType":"Questionnaire","id":"test-form","url":"https://airlock.dev/fhir/Questionnaire/test-form",` +
		`"version":"3","title":"Test form","status":"active","item":[` + items + `]}`)
}

// mustParse parses a form for a test that is not about parsing.
func mustParse(t testing.TB, data []byte) *Questionnaire {
	t.Helper()
	q, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return q
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	data := formJSON(`
		{"linkId":"intro","type":"display","text":"Welcome"},
		{"linkId":"history","type":"group","text":"History","item":[
			{"linkId":"allergies","type":"boolean","text":"Allergies?","required":true},
			{"linkId":"details","type":"text","text":"Details","maxLength":200,
			 "enableWhen":[{"question":"allergies","operator":"=","answerBoolean":true}]},
			{"linkId":"private","type":"group","text":"Private",
			 "extension":[{"url":"` + CarriedExtensionURL + `","valueBoolean":false}],
			 "item":[{"linkId":"secret","type":"string","text":"Secret"}]}
		]},
		{"linkId":"colour","type":"choice","text":"Colour","repeats":true,"answerOption":[
			{"valueCoding":{"system":"urn:colours","code":"red","display":"Red"}},
			{"valueString":"Something else"}]},
		{"linkId":"units","type":"integer","text":"Units","extension":[
			{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueInteger":0},
			{"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueDecimal":99.5},
			{"url":"http://hl7.org/fhir/StructureDefinition/entryFormat","valueString":"ignored"}]},
		{"linkId":"later","type":"string","text":"Later","enableBehavior":"any","enableWhen":[
			{"question":"colour","operator":"=","answerCoding":{"code":"red"}},
			{"question":"units","operator":"exists","answerBoolean":true},
			{"question":"future","operator":"!=","answerDate":"2024-02-29"}]},
		{"linkId":"future","type":"date","text":"Future"}`)
	q := mustParse(t, data)

	if q.ID != "test-form" || q.Title != "Test form" || q.Version != "3" || q.FormVersion() != "3" || q.Status != "active" {
		t.Errorf("header = %q %q %q %q", q.ID, q.Title, q.Version, q.Status)
	}
	if !bytes.Equal(q.Raw, data) {
		t.Error("Raw is not the original file")
	}
	var ids []string
	for _, it := range q.Questions() {
		ids = append(ids, it.LinkID)
	}
	if got, want := strings.Join(ids, ","), "allergies,details,secret,colour,units,later,future"; got != want {
		t.Errorf("Questions() = %s, want %s", got, want)
	}
	if len(q.Items) != 6 || len(q.Item("history").Items) != 3 {
		t.Errorf("tree shape: %d top-level items, history has %d", len(q.Items), len(q.Item("history").Items))
	}
	if q.Item("nope") != nil {
		t.Error("Item(unknown) is not nil")
	}
	details := q.Item("details")
	if details.MaxLength != 200 || details.EffectiveMaxLength() != 200 || details.EnableBehavior != "all" || !details.Carried {
		t.Errorf("details = %+v", details)
	}
	if got := details.EnableWhen; len(got) != 1 || got[0].Question != "allergies" || got[0].Operator != "=" || *got[0].Answer.ValueBoolean != true {
		t.Errorf("details.EnableWhen = %+v", got)
	}
	if details.Path() != "history/details" || details.Parent() != q.Item("history") {
		t.Errorf("details path %q, parent %v", details.Path(), details.Parent())
	}
	if q.Item("private").Carried || q.Item("secret").Carried {
		t.Error("not-carried group or its child is Carried")
	}
	if q.Item("secret").EffectiveMaxLength() != DefaultMaxLength {
		t.Errorf("default max length = %d", q.Item("secret").EffectiveMaxLength())
	}
	colour := q.Item("colour")
	if len(colour.Options) != 2 || !reflect.DeepEqual(colour.Options[0], Option{System: "urn:colours", Code: "red", Display: "Red"}) ||
		!reflect.DeepEqual(colour.Options[1], Option{String: "Something else"}) {
		t.Errorf("colour options = %+v", colour.Options)
	}
	if colour.Options[0].Key() != "red" || colour.Options[0].Label() != "Red" || colour.Options[1].Key() != "Something else" {
		t.Errorf("option key/label wrong")
	}
	units := q.Item("units")
	if units.MinValue == nil || *units.MinValue != 0 || units.MaxValue == nil || *units.MaxValue != 99.5 {
		t.Errorf("units min/max = %v %v", units.MinValue, units.MaxValue)
	}
	if later := q.Item("later"); later.EnableBehavior != "any" || len(later.EnableWhen) != 3 {
		t.Errorf("later = %+v", later)
	}
}

func TestFormVersionDefault(t *testing.T) {
	t.Parallel()
	q := mustParse(t, []byte(`{"resourceType":"Questionnaire","id":"x","title":"X","item":[{"linkId":"a","type":"string","text":"A"}]}`))
	if q.FormVersion() != "0" || q.Version != "" {
		t.Errorf("FormVersion() = %q, Version = %q", q.FormVersion(), q.Version)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	group := func(children string) []byte {
		return formJSON(`{"linkId":"history","type":"group","text":"History","item":[` + children + `]}`)
	}
	deep := `{"linkId":"leaf","type":"string","text":"Leaf"}`
	for i := range maxDepth + 1 {
		deep = fmt.Sprintf(`{"linkId":"g%d","type":"group","item":[%s]}`, i, deep)
	}
	tests := []struct {
		name string
		data []byte
		want string // a substring of the error
	}{
		{"not json", []byte(`{`), "invalid JSON"},
		{"not an object", []byte(`[]`), "want an object"},
		{"wrong resource", []byte(`{"resourceType":"Patient","id":"x"}`), `resourceType is "Patient"`},
		{"bad id", []byte(`{"resourceType":"Questionnaire","id":"New Patient","title":"x","item":[]}`), `id "New Patient" is not a FHIR id`},
		{"id too long", []byte(`{"resourceType":"Questionnaire","id":"` + strings.Repeat("a", 65) + `","title":"x"}`), "is not a FHIR id"},
		{"no items", []byte(`{"resourceType":"Questionnaire","id":"x","title":"X"}`), "has no items"},
		{"modifier extension", []byte(`{"resourceType":"Questionnaire","id":"x","title":"X","modifierExtension":[{}],"item":[{"linkId":"a","type":"string","text":"A"}]}`), "modifierExtension"},
		{"missing linkId", group(`{"linkId":"a","type":"string","text":"A"},{"type":"string","text":"B"}`), `item at history/item[1]: missing linkId`},
		{"linkId with space", group(`{"linkId":"a b","type":"string","text":"A"}`), `item at history/item[0]: linkId "a b"`},
		{"missing type", group(`{"linkId":"allergies","text":"A"}`), `item "allergies" (history/allergies): missing type`},
		{"duplicate linkId", formJSON(`{"linkId":"a","type":"string","text":"A"},{"linkId":"history","type":"group","item":[{"linkId":"a","type":"string","text":"A"}]}`), `item "a" (history/a): duplicate linkId`},
		{"wrong JSON type", group(`{"linkId":"allergies","type":"boolean","text":"A","required":"yes"}`), `item "allergies" (history/allergies): field "required": want a boolean`},
		{"wrong JSON type no linkId", group(`{"linkId":7,"type":"boolean","text":"A"}`), `item at history/item[0]: field "linkId": want a string`},
		{"item modifier extension", group(`{"linkId":"allergies","type":"boolean","text":"A","modifierExtension":[{}]}`), `(history/allergies): modifierExtension`},
		{"value set", group(`{"linkId":"smoker","type":"choice","text":"Smoker?","answerValueSet":"http://x"}`), "answerValueSet http://x is unknown"},
		{"integer option", group(`{"linkId":"c","type":"choice","text":"C","answerOption":[{"valueInteger":1}]}`), "answerOption[0]: valueInteger, valueDate and valueTime options are only supported on integer, date and time items"},
		{"coding without code", group(`{"linkId":"c","type":"choice","text":"C","answerOption":[{"valueCoding":{"system":"x"}}]}`), "answerOption[0]: valueCoding without code or display"},
		{"both option values", group(`{"linkId":"c","type":"choice","text":"C","answerOption":[{"valueString":"a","valueCoding":{"code":"a"}}]}`), "needs exactly one value[x]"},
		{"duplicate option", group(`{"linkId":"c","type":"choice","text":"C","answerOption":[{"valueCoding":{"code":"a"}},{"valueString":"a"}]}`), `answerOption[1]: "a" is listed twice`},
		{"untrimmed option", group(`{"linkId":"c","type":"choice","text":"C","answerOption":[{"valueString":" a"}]}`), "surrounding spaces"},
		{"calculated under a repeating question", formJSON(`{"linkId":"g","type":"string","text":"G","repeats":true,"item":[{"linkId":"a","type":"integer","text":"A","extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression","valueExpression":{"language":"text/fhirpath","expression":"1"}}]}]}`), `item "a" (g/a): calculatedExpression under the answers of a repeating question is not supported`},
		{"empty group", group(`{"linkId":"g","type":"group"}`), `item "g" (history/g): group has no items`},
		{"required display", group(`{"linkId":"d","type":"display","text":"D","required":true}`), "a display item cannot be required"},
		{"maxLength on integer", group(`{"linkId":"n","type":"integer","text":"N","maxLength":3}`), `item "n" (history/n): maxLength is only supported`},
		{"maxLength zero", group(`{"linkId":"s","type":"string","text":"S","maxLength":0}`), "maxLength must be between"},
		{"minValue on string", group(`{"linkId":"s","type":"string","text":"S","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueInteger":1}]}`), "only supported on integer, decimal, quantity and date"},
		{"minValue as string", group(`{"linkId":"n","type":"integer","text":"N","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueBoolean":true}]}`), "needs valueInteger or valueDecimal"},
		{"min above max", group(`{"linkId":"n","type":"integer","text":"N","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueInteger":5},{"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueInteger":4}]}`), "minValue is greater than maxValue"},
		{"carried without boolean", group(`{"linkId":"s","type":"string","text":"S","extension":[{"url":"` + CarriedExtensionURL + `","valueInteger":0}]}`), `(history/s): extension ` + CarriedExtensionURL + ` needs valueBoolean`},
		{"carried twice", group(`{"linkId":"s","type":"string","text":"S","extension":[{"url":"` + CarriedExtensionURL + `","valueBoolean":false},{"url":"` + CarriedExtensionURL + `","valueBoolean":false}]}`), "is given twice"},
		{"carried inside not carried", formJSON(`{"linkId":"g","type":"group","extension":[{"url":"` + CarriedExtensionURL + `","valueBoolean":false}],"item":[{"linkId":"s","type":"string","text":"S","extension":[{"url":"` + CarriedExtensionURL + `","valueBoolean":true}]}]}`), `item "s" (g/s): marked carried`},
		{"unknown enableBehavior", group(`{"linkId":"s","type":"string","text":"S","enableBehavior":"some"}`), `unsupported enableBehavior "some"`},
		{"enableWhen unknown question", group(`{"linkId":"s","type":"string","text":"S","enableWhen":[{"question":"ghost","operator":"exists","answerBoolean":true}]}`), `item "s" (history/s): enableWhen[0]: question "ghost" is not in the form`},
		{"enableWhen missing operator", group(`{"linkId":"a","type":"integer","text":"A"},{"linkId":"s","type":"string","text":"S","enableWhen":[{"question":"a","answerInteger":1}]}`), "missing operator"},
		{"enableWhen missing question", group(`{"linkId":"s","type":"string","text":"S","enableWhen":[{"operator":"exists","answerBoolean":true}]}`), "enableWhen[0]: missing question"},
		{"enableWhen exists needs boolean", group(`{"linkId":"a","type":"integer","text":"A"},{"linkId":"s","type":"string","text":"S","enableWhen":[{"question":"a","operator":"exists","answerInteger":1}]}`), `"exists" needs answerBoolean`},
		{"enableWhen two answers", group(`{"linkId":"a","type":"integer","text":"A"},{"linkId":"s","type":"string","text":"S","enableWhen":[{"question":"a","operator":"=","answerInteger":1,"answerString":"1"}]}`), "exactly one answer[x]"},
		{"enableWhen bad date", group(`{"linkId":"a","type":"date","text":"A"},{"linkId":"s","type":"string","text":"S","enableWhen":[{"question":"a","operator":"=","answerDate":"2025-02-29"}]}`), "is not a date"},
		{"enableWhen type mismatch", group(`{"linkId":"a","type":"boolean","text":"A"},{"linkId":"s","type":"string","text":"S","enableWhen":[{"question":"a","operator":"=","answerString":"yes"}]}`), `answerString cannot match the boolean question "a"`},
		{"enableWhen on group", group(`{"linkId":"s","type":"string","text":"S","enableWhen":[{"question":"history","operator":"exists","answerBoolean":true}]}`), `question "history" is a group item`},
		{"enableWhen cycle", group(`{"linkId":"a","type":"string","text":"A","enableWhen":[{"question":"b","operator":"exists","answerBoolean":true}]},{"linkId":"b","type":"string","text":"B","enableWhen":[{"question":"a","operator":"exists","answerBoolean":true}]}`), "enableWhen conditions form a cycle"},
		{"enableWhen on own child", formJSON(`{"linkId":"g","type":"group","enableWhen":[{"question":"a","operator":"exists","answerBoolean":true}],"item":[{"linkId":"a","type":"string","text":"A"}]}`), "form a cycle"},
		{"enableWhen on itself", group(`{"linkId":"a","type":"string","text":"A","enableWhen":[{"question":"a","operator":"exists","answerBoolean":true}]}`), "form a cycle"},
		{"too deep", formJSON(deep), "nested more than"},
		{"unsupported type", group(`{"linkId":"when","type":"question","text":"When"}`), `item "when" (history/when): unsupported type "question"`},
		{"reference type", group(`{"linkId":"gp","type":"reference","text":"Your GP","answerValueSet":"http://x/vs"}`), `item "gp" (history/gp): answerValueSet on a reference item`},
		{"time option on a date", group(`{"linkId":"when","type":"date","text":"When","answerOption":[{"valueTime":"10:00:00"}]}`), `a date item's options must be valueDate`},
		{"bad valueTime", group(`{"linkId":"when","type":"time","text":"When","answerOption":[{"valueTime":"25:00"}]}`), `valueTime is not a time`},
		{"reference type", group(`{"linkId":"who","type":"reference","text":"Who","answerValueSet":"http://x/vs"}`), `answerValueSet on a reference item`},
		{"no id no fallback", []byte(`{"resourceType":"Questionnaire","title":"x","item":[{"linkId":"a","type":"string"}]}`), "missing id"},
		{"que-12", group(`{"linkId":"a","type":"integer","text":"A"},{"linkId":"s","type":"string","text":"S","enableWhen":[{"question":"a","operator":">","answerInteger":1},{"question":"a","operator":"<","answerInteger":9}]}`), "enableBehavior is required when there is more than one enableWhen"},
		{"ordering a coding", group(`{"linkId":"c","type":"choice","answerOption":[{"valueCoding":{"code":"a"}}]},{"linkId":"s","type":"string","enableWhen":[{"question":"c","operator":">","answerCoding":{"code":"a"}}]}`), `operator ">" cannot compare booleans, codings or references`},
		{"unknown valueset", group(`{"linkId":"c","type":"choice","answerValueSet":"http://example.org/ValueSet/none"}`), `answerValueSet http://example.org/ValueSet/none is unknown`},
		{"contained valueset by filter", []byte(`{"resourceType":"Questionnaire","id":"x","url":"http://x","contained":[{"resourceType":"ValueSet","id":"vs","compose":{"include":[{"system":"http://loinc.org","filter":[{"property":"a","op":"=","value":"b"}]}]}}],"item":[{"linkId":"c","type":"choice","answerValueSet":"#vs"}]}`), "needs a terminology server"},
		{"regex RE2 cannot compile", group(`{"linkId":"z","type":"string","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/regex","valueString":"(?=a)b"}]}`), "is not a regular expression Airlock can check"},
		{"enableWhenExpression", group(`{"linkId":"z","type":"string","extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression","valueExpression":{"language":"text/fhirpath","expression":"true"}}]}`), "enableWhenExpression is not supported"},
		{"expression outside subset", group(`{"linkId":"z","type":"integer","readOnly":true,"extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression","valueExpression":{"language":"text/fhirpath","expression":"%resource.item.trace('x').count()"}}]}`), "function trace() is not supported"},
		{"expression undeclared variable", group(`{"linkId":"z","type":"integer","readOnly":true,"extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression","valueExpression":{"language":"text/fhirpath","expression":"%score + 1"}}]}`), "uses %score, which is not declared"},
		{"cql expression", group(`{"linkId":"z","type":"integer","readOnly":true,"extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression","valueExpression":{"language":"text/cql","expression":"1"}}]}`), `language "text/cql" is not supported`},
		{"unit on string", group(`{"linkId":"z","type":"string","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-unit","valueCoding":{"code":"cm"}}]}`), "only supported on quantity items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse accepted the form (%d items)", len(q.all))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseTooManyItems(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range maxItems + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"linkId":"q%d","type":"boolean","text":"Q"}`, i)
	}
	_, err := Parse(formJSON(b.String()))
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("Parse error = %v, want a limit on items", err)
	}
}

func TestParseKeepsRawCopy(t *testing.T) {
	t.Parallel()
	data := formJSON(`{"linkId":"a","type":"string","text":"A"}`)
	q := mustParse(t, data)
	data[0] = ' '
	if q.Raw[0] != '{' {
		t.Error("Raw aliases the caller's buffer")
	}
	if !json.Valid(q.Raw) {
		t.Error("Raw is not valid JSON")
	}
}
