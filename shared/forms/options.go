package forms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/text/language"
)

type wireOption struct {
	ValueCoding     *wireCoding     `json:"valueCoding"`
	ValueString     *string         `json:"valueString"`
	ValueStringExt  *wirePrimitive  `json:"_valueString"`
	ValueInteger    *int64          `json:"valueInteger"`
	ValueDate       *string         `json:"valueDate"`
	ValueTime       json.RawMessage `json:"valueTime"`
	ValueReference  *wireReference  `json:"valueReference"`
	InitialSelected bool            `json:"initialSelected"`
	Extension       []wireExtension `json:"extension"`
}

type wireCoding struct {
	System     string          `json:"system"`
	Code       string          `json:"code"`
	Display    string          `json:"display"`
	DisplayExt *wirePrimitive  `json:"_display"`
	Extension  []wireExtension `json:"extension"`
}

// wireReference is an answerOption's valueReference. Only a literal
// reference is read: an option identified otherwise (identifier, type
// alone) gives the clinic nothing to resolve.
type wireReference struct {
	Reference  string         `json:"reference"`
	Display    string         `json:"display"`
	DisplayExt *wirePrimitive `json:"_display"`
}

// ValueSet is the part of a FHIR ValueSet Airlock reads: the codes it lists,
// from expansion.contains or compose.include.concept. Airlock reaches no
// terminology server, so a ValueSet defined by filters or by other
// ValueSets cannot be used.
type ValueSet struct {
	URL, Version string
	Codes        []Option
}

type wireValueSet struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	URL          string `json:"url"`
	Version      string `json:"version"`
	Compose      *struct {
		Include []wireInclude `json:"include"`
		Exclude []wireInclude `json:"exclude"`
	} `json:"compose"`
	Expansion *struct {
		Contains []wireContains `json:"contains"`
	} `json:"expansion"`
}

type wireInclude struct {
	System   string            `json:"system"`
	Version  string            `json:"version"`
	Concept  []wireConcept     `json:"concept"`
	Filter   []json.RawMessage `json:"filter"`
	ValueSet []string          `json:"valueSet"`
}

type wireConcept struct {
	Code        string            `json:"code"`
	Display     string            `json:"display"`
	Designation []wireDesignation `json:"designation"`
	Extension   []wireExtension   `json:"extension"`
}

// wireDesignation is a concept's display in another language (FHIR
// ValueSet designation); one without a language is another name, not a
// translation, and is not read.
type wireDesignation struct {
	Language string `json:"language"`
	Value    string `json:"value"`
}

// designations are a concept's displays by language.
func designations(ds []wireDesignation) (Translations, error) {
	var out Translations
	for _, d := range ds {
		if d.Language == "" || strings.TrimSpace(d.Value) == "" {
			continue
		}
		tag, err := language.Parse(d.Language)
		if err != nil {
			return nil, fmt.Errorf("designation language %q is not a language tag", clip(d.Language))
		}
		if out == nil {
			out = Translations{}
		}
		if _, dup := out[tag]; !dup {
			out[tag] = strings.TrimSpace(d.Value)
		}
	}
	return out, nil
}

type wireContains struct {
	System      string            `json:"system"`
	Code        string            `json:"code"`
	Display     string            `json:"display"`
	Designation []wireDesignation `json:"designation"`
	Abstract    bool              `json:"abstract"`
	Contains    []wireContains    `json:"contains"`
	Extension   []wireExtension   `json:"extension"`
}

// ParseValueSet reads a ValueSet that lists its codes (an expansion, or
// compose.include with concepts and nothing else).
func ParseValueSet(data []byte) (*ValueSet, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var w wireValueSet
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("valueset: %s", describeJSONError(err))
	}
	return valueSetFromWire(w)
}

func valueSetFromWire(w wireValueSet) (*ValueSet, error) {
	if w.ResourceType != "ValueSet" {
		return nil, fmt.Errorf("resourceType is %q, want \"ValueSet\"", clip(w.ResourceType))
	}
	vs := &ValueSet{URL: w.URL, Version: w.Version}
	name := w.URL
	if name == "" {
		name = "#" + w.ID
	}
	add := func(system, code, display string, ds []wireDesignation, exts []wireExtension) error {
		if code == "" {
			return fmt.Errorf("ValueSet %s lists a concept without code", clip(name))
		}
		for _, o := range vs.Codes {
			if o.Code == code {
				return fmt.Errorf("ValueSet %s lists code %q twice; the patient submits only the code", clip(name), clip(code))
			}
		}
		o := Option{System: system, Code: code, Display: display}
		o.Score = scoreFrom(exts)
		tr, err := designations(ds)
		if err != nil {
			return fmt.Errorf("ValueSet %s, code %q: %v", clip(name), clip(code), err)
		}
		o.labelTr = tr
		vs.Codes = append(vs.Codes, o)
		return nil
	}
	if w.Expansion != nil && len(w.Expansion.Contains) > 0 {
		var walk func(cs []wireContains) error
		walk = func(cs []wireContains) error {
			for _, c := range cs {
				if !c.Abstract {
					if err := add(c.System, c.Code, c.Display, c.Designation, c.Extension); err != nil {
						return err
					}
				}
				if err := walk(c.Contains); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(w.Expansion.Contains); err != nil {
			return nil, err
		}
		return vs, nil
	}
	if w.Compose == nil || len(w.Compose.Include) == 0 {
		return nil, fmt.Errorf("ValueSet %s has neither an expansion nor listed concepts (no terminology server is reachable to expand it)", clip(name))
	}
	if len(w.Compose.Exclude) > 0 {
		return nil, fmt.Errorf("ValueSet %s uses compose.exclude, which needs a terminology server", clip(name))
	}
	for _, inc := range w.Compose.Include {
		if len(inc.Filter) > 0 || len(inc.ValueSet) > 0 || len(inc.Concept) == 0 {
			return nil, fmt.Errorf("ValueSet %s includes codes by filter, by other ValueSets or a whole code system, which needs a terminology server; list the concepts or add an expansion", clip(name))
		}
		for _, c := range inc.Concept {
			if err := add(inc.System, c.Code, c.Display, c.Designation, c.Extension); err != nil {
				return nil, err
			}
		}
	}
	return vs, nil
}

// contained reads contained ValueSets; other contained resources are
// ignored unless an item refers to them.
func (p *parser) contained(raws []json.RawMessage) {
	for i, raw := range raws {
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			p.formProblem("contained[%d]: %s", i, describeJSONError(err))
			continue
		}
		if head.ResourceType != "ValueSet" {
			continue
		}
		var w wireValueSet
		if err := json.Unmarshal(raw, &w); err != nil {
			p.formProblem("contained[%d]: %s", i, describeJSONError(err))
			continue
		}
		vs, err := valueSetFromWire(w)
		if err != nil {
			// Only an error if an item uses it; remember why.
			vs = &ValueSet{URL: "!" + err.Error()}
		}
		if p.containedVS == nil {
			p.containedVS = make(map[string]*ValueSet)
		}
		p.containedVS["#"+head.ID] = vs
	}
}

func (p *parser) valueSet(ref string) (*ValueSet, error) {
	var vs *ValueSet
	if strings.HasPrefix(ref, "#") {
		vs = p.containedVS[ref]
		if vs == nil {
			return nil, fmt.Errorf("answerValueSet %q: no contained ValueSet with that id", clip(ref))
		}
	} else {
		vs = p.opts.ValueSets[ref]
		if vs == nil {
			if url, _, ok := strings.Cut(ref, "|"); ok {
				vs = p.opts.ValueSets[url]
			}
		}
		if vs == nil {
			return nil, fmt.Errorf("answerValueSet %s is unknown: put the ValueSet JSON in the forms directory's valuesets/ folder (no terminology server is reachable)", clip(ref))
		}
	}
	if strings.HasPrefix(vs.URL, "!") {
		return nil, errors.New(vs.URL[1:])
	}
	return vs, nil
}

// scoreFrom reads ordinalValue or itemWeight from extensions.
func scoreFrom(exts []wireExtension) *float64 {
	for _, e := range exts {
		if e.URL == extOrdinalValue || e.URL == extItemWeight {
			if v, ok := e.number(); ok {
				return &v
			}
		}
	}
	return nil
}

func (p *parser) options(it *Item, w *wireItem, fail func(string, ...any)) {
	if w.AnswerValueSet != "" && len(w.AnswerOption) > 0 {
		fail("both answerOption and answerValueSet (FHIR que-4)")
		return
	}
	if w.AnswerValueSet == "" && len(w.AnswerOption) == 0 {
		return
	}
	switch it.Type {
	case TypeChoice, TypeOpenChoice:
	case TypeString, TypeInteger, TypeDate, TypeTime, TypeReference:
		if w.AnswerValueSet != "" {
			fail("answerValueSet is only supported on choice and open-choice items")
			return
		}
	default:
		fail("answerOption is not supported on %s items", it.Type)
		return
	}
	keys := make(map[string]bool)
	addOption := func(i int, o Option) {
		key := o.Key()
		// Answers are trimmed before matching, so an untrimmed key could
		// never be chosen.
		if key != strings.TrimSpace(key) || hasControl(key, false) {
			fail("answerOption[%d]: %q has surrounding spaces or control characters", i, clip(key))
			return
		}
		if keys[key] {
			fail("answerOption[%d]: %q is listed twice", i, clip(key))
			return
		}
		keys[key] = true
		for tag := range o.labelTr {
			p.langs[tag] = true // a ValueSet's designations
		}
		it.Options = append(it.Options, o)
	}
	if w.AnswerValueSet != "" {
		it.ValueSet = w.AnswerValueSet
		vs, err := p.valueSet(w.AnswerValueSet)
		if err != nil {
			fail("%v", err)
			return
		}
		if len(vs.Codes) == 0 {
			fail("answerValueSet %s has no codes", clip(w.AnswerValueSet))
		}
		for i, o := range vs.Codes {
			addOption(i, o)
		}
		return
	}
	var initial []Value
	for i, wo := range w.AnswerOption {
		n := 0
		var o Option
		if wo.ValueReference != nil {
			n++
			r := wo.ValueReference
			if strings.TrimSpace(r.Reference) == "" {
				fail("answerOption[%d]: valueReference without reference (the option must name the record)", i)
				continue
			}
			if strings.TrimSpace(r.Display) == "" {
				fail("answerOption[%d]: valueReference without display (the patient picks by the display; %q means nothing to them)", i, clip(r.Reference))
				continue
			}
			o = Option{Reference: r.Reference, Display: r.Display}
			o.labelTr = p.translations(r.DisplayExt, fmt.Sprintf("answerOption[%d].valueReference.display", i), fail)
		}
		if wo.ValueCoding != nil {
			n++
			if wo.ValueCoding.Code == "" && strings.TrimSpace(wo.ValueCoding.Display) == "" {
				fail("answerOption[%d]: valueCoding without code or display", i)
				continue
			}
			o = Option{System: wo.ValueCoding.System, Code: wo.ValueCoding.Code, Display: wo.ValueCoding.Display}
			o.labelTr = p.translations(wo.ValueCoding.DisplayExt, fmt.Sprintf("answerOption[%d].valueCoding.display", i), fail)
			o.Score = scoreFrom(wo.ValueCoding.Extension)
		}
		if wo.ValueString != nil {
			n++
			if *wo.ValueString == "" {
				fail("answerOption[%d]: empty valueString", i)
				continue
			}
			o = Option{String: *wo.ValueString}
			o.labelTr = p.translations(wo.ValueStringExt, fmt.Sprintf("answerOption[%d].valueString", i), fail)
		}
		if wo.ValueInteger != nil {
			n++
			v := *wo.ValueInteger
			o = Option{Integer: &v}
		}
		if wo.ValueDate != nil {
			n++
			if !validDate(*wo.ValueDate) {
				fail("answerOption[%d]: valueDate is not a date (YYYY-MM-DD)", i)
				continue
			}
			o = Option{Date: *wo.ValueDate}
		}
		if wo.ValueTime != nil {
			n++
			var s string
			t, ok := "", false
			if json.Unmarshal(wo.ValueTime, &s) == nil {
				t, ok = normalTime(s)
			}
			if !ok {
				fail("answerOption[%d]: valueTime is not a time (HH:MM:SS)", i)
				continue
			}
			o = Option{Time: t}
		}
		if n != 1 {
			fail("answerOption[%d]: needs exactly one value[x]", i)
			continue
		}
		if s := scoreFrom(wo.Extension); s != nil {
			o.Score = s
		}
		want := map[string]string{TypeString: "valueString", TypeInteger: "valueInteger", TypeDate: "valueDate", TypeTime: "valueTime", TypeReference: "valueReference"}[it.Type]
		switch {
		case want == "valueReference" && o.Reference == "":
			fail("answerOption[%d]: a reference item's options must be valueReference", i)
			continue
		case want != "valueReference" && o.Reference != "":
			fail("answerOption[%d]: valueReference options are only supported on reference items", i)
			continue
		case want == "valueString" && o.String == "",
			want == "valueInteger" && o.Integer == nil,
			want == "valueDate" && o.Date == "",
			want == "valueTime" && o.Time == "":
			fail("answerOption[%d]: a %s item's options must be %s", i, it.Type, want)
			continue
		case want == "" && o.Integer != nil, want == "" && o.Date != "", want == "" && o.Time != "":
			fail("answerOption[%d]: valueInteger, valueDate and valueTime options are only supported on integer, date and time items", i)
			continue
		}
		addOption(i, o)
		if wo.InitialSelected {
			initial = append(initial, o.value())
		}
	}
	if len(initial) > 1 && !it.Repeats {
		fail("several answerOptions are initialSelected on an item that does not repeat")
		return
	}
	it.Initial = initial
}
