// Package formstest builds complete, valid answer sets for any form, so tests
// can push real public Questionnaires through every stage.
package formstest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
)

// CorpusBaseURL is the base URL the corpus tests configure for forms
// without a url.
const CorpusBaseURL = "https://forms.example/fhir/Questionnaire"

// PNG is a tiny valid PNG, for attachment answers.
var PNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

// Answer is one item's sample answer as JSON and as an HTML form field.
type Answer struct {
	JSON json.RawMessage
	// Form is the HTML field value ("" for attachments, sent as a file);
	// Unit is the unit field of a quantity with a choice of units.
	Form, Unit string
	File       []byte
}

// Instances is how many instances Sample gives each repeating group (fewer
// when the group's maxOccurs says so).
const Instances = 2

// Sample answers every question the patient answers that applies, with a
// value valid for its type and constraints, and returns the answers that
// Validate accepts, keyed by field name: the linkId, or within an instance
// of a repeating group the instance's field prefix and the linkId
// ("meds[2]/dose", see forms.InstanceField); each repeating group gets
// Instances instances. It fails (error) when an item that must be answered
// cannot be given a valid sample value.
func Sample(q *forms.Questionnaire) (map[string]Answer, error) {
	out := map[string]Answer{}
	if err := sampleScope(q.Members(), "", 1, out); err != nil {
		return nil, err
	}
	// Drop answers to questions that turn out not to apply, as the HTML
	// form does, until Validate is satisfied.
	for range 64 {
		raw := RawJSON(out)
		_, errs := q.Validate(raw)
		if len(errs) == 0 {
			return out, nil
		}
		dropped := false
		for _, fe := range errs {
			if fe.NotApplicable() {
				for k := range out {
					if k == fe.Field || strings.HasPrefix(k, fe.Field+"[") {
						delete(out, k)
					}
				}
				dropped = true
			}
		}
		if !dropped {
			return nil, fmt.Errorf("sample answers refused: %v", errs)
		}
	}
	return nil, fmt.Errorf("sample answers do not settle")
}

// sampleScope samples the members of one scope; inst is the number of its
// instance (1 at the top level): an unconstrained integer question answers
// 1 in the first instance, 5 in the second and so on, so that what is
// worked out per instance (calculated items) differs between instances.
func sampleScope(members []*forms.Item, prefix string, inst int, out map[string]Answer) error {
	for _, it := range members {
		if it.RepeatingGroup() {
			n := Instances
			if it.MaxOccurs > 0 && it.MaxOccurs < n {
				n = it.MaxOccurs
			}
			for i := 1; i <= n; i++ {
				if err := sampleScope(it.Members(), forms.InstanceField(prefix, it.LinkID, i), i, out); err != nil {
					return err
				}
			}
			continue
		}
		if !it.PatientAnswers() {
			continue
		}
		if it.HasInstances() {
			// A repeating question with questions under it: each answer
			// is an instance holding its own answers to them, named
			// "q[n]/q" for the answer itself as the HTML form names it.
			n := Instances
			if len(it.Options) > 0 {
				n = min(n, len(it.Options))
			}
			for i := 1; i <= n; i++ {
				a, ok := sample(it)
				if !ok {
					break
				}
				if len(it.Options) > 0 {
					a = optionAnswer(it.Options[i-1])
				}
				ip := forms.InstanceField(prefix, it.LinkID, i)
				out[ip+it.LinkID] = a
				if err := sampleScope(it.Members(), ip, i, out); err != nil {
					return err
				}
			}
			continue
		}
		a, ok := sample(it)
		if !ok {
			if it.Required {
				return fmt.Errorf("item %q: no valid sample value (regex %q)", it.LinkID, it.RegexSource)
			}
			continue
		}
		if it.Type == forms.TypeInteger && inst > 1 && it.MinValue == nil && it.MaxValue == nil && it.Regex == nil && len(it.Options) == 0 {
			s := strconv.Itoa(1 + 4*(inst-1))
			a = Answer{JSON: json.RawMessage(s), Form: s}
		}
		out[prefix+it.LinkID] = a
	}
	return nil
}

// FirstField is the HTML field name of an item in the first instance of
// every repeating group it sits in (forms.Item.FirstField).
func FirstField(it *forms.Item) string { return it.FirstField() }

// instanceSplit finds the first instance prefix in a field name: "g[2]/".
var instanceSplit = regexp.MustCompile(`\[([1-9][0-9]*)\]/`)

// RawJSON is the answers as the JSON API takes them: fields within an
// instance of a repeating group go into that instance's object.
func RawJSON(a map[string]Answer) map[string]json.RawMessage {
	type node struct {
		vals   map[string]json.RawMessage
		groups map[string]map[int]*node
	}
	newNode := func() *node { return &node{vals: map[string]json.RawMessage{}, groups: map[string]map[int]*node{}} }
	top := newNode()
	for k, v := range a {
		n, rest := top, k
		for {
			loc := instanceSplit.FindStringSubmatchIndex(rest)
			if loc == nil {
				break
			}
			g := rest[:loc[0]]
			i, _ := strconv.Atoi(rest[loc[2]:loc[3]])
			if n.groups[g] == nil {
				n.groups[g] = map[int]*node{}
			}
			if n.groups[g][i] == nil {
				n.groups[g][i] = newNode()
			}
			n, rest = n.groups[g][i], rest[loc[1]:]
		}
		n.vals[rest] = v.JSON
	}
	var encode func(n *node) map[string]json.RawMessage
	encode = func(n *node) map[string]json.RawMessage {
		raw := n.vals
		for g, insts := range n.groups {
			last := 0
			for i := range insts {
				last = max(last, i)
			}
			list := make([]any, last)
			for i := range list {
				list[i] = map[string]json.RawMessage{}
				inst := insts[i+1]
				if inst == nil {
					continue
				}
				// An instance holding its owner's own value is an answer
				// of a repeating question, with the answers under it.
				own, isAnswer := inst.vals[g]
				delete(inst.vals, g)
				list[i] = encode(inst)
				if isAnswer {
					list[i] = map[string]any{"answer": own, "item": list[i]}
				}
			}
			raw[g], _ = json.Marshal(list)
		}
		return raw
	}
	return encode(top)
}

// FormValues is the answers as HTML form fields (files apart), named as the
// HTML form names them (the keys of Sample).
func FormValues(a map[string]Answer) url.Values {
	v := url.Values{}
	for k, x := range a {
		if x.File != nil {
			continue
		}
		v.Set(k, x.Form)
		if x.Unit != "" {
			v.Set("unit:"+k, x.Unit)
		}
	}
	return v
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// optionAnswer picks an option.
func optionAnswer(o forms.Option) Answer {
	if o.Integer != nil {
		return Answer{JSON: json.RawMessage(strconv.FormatInt(*o.Integer, 10)), Form: o.Key()}
	}
	return Answer{JSON: jsonString(o.Key()), Form: o.Key()}
}

func sample(it *forms.Item) (Answer, bool) {
	if len(it.Options) > 0 {
		return optionAnswer(it.Options[0]), true
	}
	switch it.Type {
	case forms.TypeBoolean:
		return Answer{JSON: json.RawMessage("true"), Form: "true"}, true
	case forms.TypeInteger:
		n := 1.0
		if it.MinValue != nil {
			n = *it.MinValue
		} else if it.MaxValue != nil && *it.MaxValue < n {
			n = *it.MaxValue
		}
		s := strconv.FormatInt(int64(n), 10)
		if it.Regex != nil && !it.Regex.MatchString(s) {
			return Answer{}, false
		}
		return Answer{JSON: json.RawMessage(s), Form: s}, true
	case forms.TypeDecimal, forms.TypeQuantity:
		f := 1.5
		if it.MinValue != nil {
			f = *it.MinValue
		} else if it.MaxValue != nil && *it.MaxValue < f {
			f = *it.MaxValue
		}
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if it.MaxDecimalPlaces == 0 {
			s = strconv.FormatInt(int64(f), 10)
		} else if it.MaxDecimalPlaces > 0 {
			s = strconv.FormatFloat(f, 'f', 1, 64)
		}
		if it.Type == forms.TypeQuantity && len(it.Units) > 1 {
			u := it.Units[len(it.Units)-1]
			key := u.Code
			if key == "" {
				key = u.Display
			}
			b, _ := json.Marshal(map[string]any{"value": json.Number(s), "code": key})
			return Answer{JSON: b, Form: s, Unit: key}, true
		}
		return Answer{JSON: json.RawMessage(s), Form: s}, true
	case forms.TypeDate:
		d := "2020-01-15"
		if it.MinDate != "" && d < it.MinDate {
			d = it.MinDate
		}
		if it.MaxDate != "" && d > it.MaxDate {
			d = it.MaxDate
		}
		return Answer{JSON: jsonString(d), Form: d}, true
	case forms.TypeDateTime:
		d := "2020-01-15T10:30:00Z"
		return Answer{JSON: jsonString(d), Form: d}, true
	case forms.TypeTime:
		return Answer{JSON: jsonString("14:30"), Form: "14:30"}, true
	case forms.TypeURL:
		return Answer{JSON: jsonString("https://example.org/page"), Form: "https://example.org/page"}, true
	case forms.TypeAttachment:
		b, _ := json.Marshal(map[string]string{"contentType": "image/png", "data": base64.StdEncoding.EncodeToString(PNG), "title": "scan.png"})
		return Answer{JSON: b, File: PNG}, true
	}
	// Free text: the first candidate the item's rules accept.
	for _, s := range []string{"Sample answer", "12345", "1234567890", "a@example.org", "+1 555 0100", "AB1 2CD", "2020-01-15", "A", "x"} {
		n := len([]rune(s))
		if it.MinLength > n || (it.EffectiveMaxLength() > 0 && n > it.EffectiveMaxLength()) {
			continue
		}
		if it.Regex != nil && !it.Regex.MatchString(s) {
			continue
		}
		if strings.TrimSpace(s) == "" {
			continue
		}
		return Answer{JSON: jsonString(s), Form: s}, true
	}
	return Answer{}, false
}

// VariableScopeForm is the id of LHC-Forms' variable-scope-test in the
// corpus: a calculated item inside a repeating group.
const VariableScopeForm = "lforms-variable-scope-test"

// CheckVariableScope checks the computed values of VariableScopeForm
// answered with Sample (fieldB 1 in the first instance of group A, 5 in the
// second): fieldC = %Y + 4 + %Z, with X = fieldB, Y = X + 2 (declared on
// the group) and Z = 1 (on fieldC), is 8 and 12, one per instance; fieldD
// uses %Y outside group A, where it is not in scope, and has no value;
// fieldE is group B's own X (the first fieldC of the response) + 8 = 16.
func CheckVariableScope(a forms.Answers) error {
	var got []string
	for _, in := range a["/groupA"] {
		got = append(got, answerText(in.Instance["/groupA/fieldB"])+"->"+answerText(in.Instance["/groupA/fieldC"]))
	}
	if s := strings.Join(got, " "); s != "1->8 5->12" {
		return fmt.Errorf("group A fieldB->fieldC per instance: %s, want 1->8 5->12", s)
	}
	if d, e := answerText(a["/groupB/fieldD"]), answerText(a["/groupB/fieldE"]); d != "" || e != "16" {
		return fmt.Errorf("fieldD = %q, fieldE = %q, want none and 16", d, e)
	}
	return nil
}

func answerText(v []forms.Value) string {
	var s []string
	for _, x := range v {
		s = append(s, x.String())
	}
	return strings.Join(s, ",")
}

// Registry parses the Questionnaire in formJSON and returns it with a
// registry of it and the other forms given, failing tb on any error.
func Registry(tb testing.TB, formJSON string, others ...*forms.Questionnaire) (*forms.Questionnaire, *forms.Registry) {
	tb.Helper()
	q, err := forms.Parse([]byte(formJSON))
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := forms.NewRegistry(append(others, q)...)
	if err != nil {
		tb.Fatal(err)
	}
	return q, reg
}
