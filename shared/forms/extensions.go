package forms

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
)

// Standard (FHIR core and SDC) extension urls Airlock honours.
const (
	extRegex            = "http://hl7.org/fhir/StructureDefinition/regex"
	extEntryFormat      = "http://hl7.org/fhir/StructureDefinition/entryFormat"
	extMinLength        = "http://hl7.org/fhir/StructureDefinition/minLength"
	extMaxDecimalPlaces = "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces"
	extMimeType         = "http://hl7.org/fhir/StructureDefinition/mimeType"
	extMaxSize          = "http://hl7.org/fhir/StructureDefinition/maxSize"
	extItemControl      = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
	extHidden           = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
	extUnit             = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
	extUnitOption       = "http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption"
	extOrdinalValue     = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
	extItemWeight       = "http://hl7.org/fhir/StructureDefinition/itemWeight"
	extVariable         = "http://hl7.org/fhir/StructureDefinition/variable"
	extCalculated       = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
	extMinOccurs        = "http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs"
	extMaxOccurs        = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"
)

// Extensions that change what an answer may be or whether an item applies:
// ignoring them would accept data the form forbids, so a form using one is
// refused with the reason.
var refusedExtensions = map[string]string{
	"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression":          "enableWhenExpression is not supported (conditions must be enableWhen)",
	"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-answerExpression":              "answerExpression is not supported (options must be listed or in a ValueSet file)",
	"http://hl7.org/fhir/StructureDefinition/questionnaire-constraint":                               "questionnaire-constraint is not supported (its rule would not be checked)",
	"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-minQuantity":                   "minQuantity is not supported (the bound would not be checked)",
	"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-maxQuantity":                   "maxQuantity is not supported (the bound would not be checked)",
	"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-answerOptionsToggleExpression": "answerOptionsToggleExpression is not supported",
	"http://hl7.org/fhir/StructureDefinition/questionnaire-unitValueSet":                             "unitValueSet is not supported; list the units with unitOption",
	"http://hl7.org/fhir/StructureDefinition/cqf-calculatedValue":                                    "cqf-calculatedValue is not supported; use the SDC calculatedExpression",
	"http://hl7.org/fhir/StructureDefinition/cqf-expression":                                         "cqf-expression is not supported",
}

// itemControl codes: the ones Airlock draws, and the ones it draws with its
// default control for the type (they change presentation, never the data).
var (
	honouredControls = map[string]bool{"radio-button": true, "check-box": true, "drop-down": true, "help": true, "flyover": true, "legal": true}
	defaultControls  = map[string]bool{"autocomplete": true, "lookup": true, "text-box": true, "spinner": true, "slider": true, "list": true,
		"inline": true, "upper": true, "lower": true, "unit": true, "page": true, "header": true, "footer": true, "table": true,
		"htable": true, "gtable": true, "grid": true, "atable": true, "prompt": true, "tab-container": true, "collapsible": true,
		"context-display": true, "tab": true, "push-button": true}
)

type wireExtension struct {
	URL                  string           `json:"url"`
	ValueBoolean         *bool            `json:"valueBoolean"`
	ValueInteger         *int64           `json:"valueInteger"`
	ValueDecimal         *float64         `json:"valueDecimal"`
	ValueString          *string          `json:"valueString"`
	ValueStringExt       *wirePrimitive   `json:"_valueString"`
	ValueCode            *string          `json:"valueCode"`
	ValueDate            *string          `json:"valueDate"`
	ValueCoding          *Coding          `json:"valueCoding"`
	ValueCodeableConcept *codeableConcept `json:"valueCodeableConcept"`
	ValueExpression      *wireExpression  `json:"valueExpression"`
}

type codeableConcept struct {
	Coding []Coding `json:"coding"`
	Text   string   `json:"text"`
}

type wireExpression struct {
	Name       string `json:"name"`
	Language   string `json:"language"`
	Expression string `json:"expression"`
}

func (e wireExtension) number() (float64, bool) {
	switch {
	case e.ValueInteger != nil && e.ValueDecimal == nil:
		return float64(*e.ValueInteger), true
	case e.ValueDecimal != nil && e.ValueInteger == nil:
		return *e.ValueDecimal, true
	}
	return 0, false
}

func (p *parser) questionnaireExtensions(exts []wireExtension) {
	for _, ext := range exts {
		if reason, refused := refusedExtensions[ext.URL]; refused {
			p.formProblem("%s", reason)
			continue
		}
		if ext.URL == extVariable {
			v, err := variableFromWire(ext)
			if err != nil {
				p.formProblem("variable: %v", err)
				continue
			}
			p.q.variables = append(p.q.variables, v)
		}
	}
}

func (p *parser) extensions(it *Item, exts []wireExtension, fail func(string, ...any)) {
	seen := make(map[string]bool)
	for _, ext := range exts {
		if reason, refused := refusedExtensions[ext.URL]; refused {
			fail("%s", reason)
			continue
		}
		switch ext.URL {
		case CarriedExtensionURL, MinValueExtensionURL, MaxValueExtensionURL, MustBeTrueExtensionURL,
			extRegex, extEntryFormat, extMinLength, extMaxDecimalPlaces, extMaxSize, extItemControl,
			extHidden, extUnit, extCalculated, extMinOccurs, extMaxOccurs:
			if seen[ext.URL] {
				fail("extension %s is given twice", ext.URL)
				continue
			}
			seen[ext.URL] = true
		}
		switch ext.URL {
		case CarriedExtensionURL:
			if ext.ValueBoolean == nil {
				fail("extension %s needs valueBoolean", ext.URL)
				continue
			}
			if *ext.ValueBoolean && it.parent != nil && !it.parent.Carried {
				fail("marked carried to the clinic inside an item that is not")
			}
			it.Carried = *ext.ValueBoolean
		case MustBeTrueExtensionURL:
			if it.Type != TypeBoolean {
				fail("extension %s is only supported on boolean items", ext.URL)
			} else if ext.ValueBoolean == nil || !*ext.ValueBoolean || ext.ValueInteger != nil || ext.ValueDecimal != nil {
				fail("extension %s needs valueBoolean true", ext.URL)
			} else {
				it.MustBeTrue = true
			}
		case MinValueExtensionURL, MaxValueExtensionURL:
			isMin := ext.URL == MinValueExtensionURL
			switch it.Type {
			case TypeInteger, TypeDecimal, TypeQuantity:
				v, ok := ext.number()
				if !ok || ext.ValueBoolean != nil {
					fail("extension %s needs valueInteger or valueDecimal", ext.URL)
					continue
				}
				if isMin {
					it.MinValue = &v
				} else {
					it.MaxValue = &v
				}
			case TypeDate:
				if ext.ValueDate == nil || !validDate(*ext.ValueDate) {
					fail("extension %s needs valueDate (YYYY-MM-DD) on a date item", ext.URL)
					continue
				}
				if isMin {
					it.MinDate = *ext.ValueDate
				} else {
					it.MaxDate = *ext.ValueDate
				}
			default:
				fail("extension %s is only supported on integer, decimal, quantity and date items", ext.URL)
			}
		case extRegex:
			if ext.ValueString == nil {
				fail("regex needs valueString")
				continue
			}
			re, err := regexp.Compile(`^(?:` + *ext.ValueString + `)$`)
			if err != nil {
				fail("regex %q is not a regular expression Airlock can check (RE2 syntax): %v", clip(*ext.ValueString), err)
				continue
			}
			switch it.Type {
			case TypeString, TypeText, TypeInteger, TypeDecimal, TypeDate, TypeDateTime, TypeOpenChoice, TypeChoice, TypeTime, TypeURL, TypeReference:
			default:
				fail("regex is not supported on %s items", it.Type)
				continue
			}
			it.Regex, it.RegexSource = re, *ext.ValueString
		case extEntryFormat:
			if ext.ValueString == nil {
				fail("entryFormat needs valueString")
				continue
			}
			it.EntryFormat = strings.TrimSpace(*ext.ValueString)
			it.entryFormatTr = p.translations(ext.ValueStringExt, "entryFormat", fail)
		case extMinLength:
			if ext.ValueInteger == nil || *ext.ValueInteger < 0 || *ext.ValueInteger > maxMaxLength {
				fail("minLength needs a valueInteger from 0 to %d", maxMaxLength)
				continue
			}
			switch it.Type {
			case TypeString, TypeText, TypeOpenChoice, TypeChoice, TypeReference:
			default:
				fail("minLength is only supported on string, text, open-choice and reference items")
				continue
			}
			it.MinLength = int(*ext.ValueInteger)
		case extMaxDecimalPlaces:
			if ext.ValueInteger == nil || *ext.ValueInteger < 0 || *ext.ValueInteger > 20 {
				fail("maxDecimalPlaces needs a valueInteger from 0 to 20")
				continue
			}
			if it.Type != TypeDecimal && it.Type != TypeQuantity {
				fail("maxDecimalPlaces is only supported on decimal and quantity items")
				continue
			}
			it.MaxDecimalPlaces = int(*ext.ValueInteger)
		case extMimeType:
			if it.Type != TypeAttachment {
				fail("mimeType is only supported on attachment items")
				continue
			}
			if ext.ValueCode == nil || strings.TrimSpace(*ext.ValueCode) == "" {
				fail("mimeType needs valueCode")
				continue
			}
			it.MimeTypes = append(it.MimeTypes, strings.ToLower(strings.TrimSpace(*ext.ValueCode)))
		case extMaxSize:
			if it.Type != TypeAttachment {
				fail("maxSize is only supported on attachment items")
				continue
			}
			v, ok := ext.number()
			if !ok || v < 1 || v > math.MaxInt32 {
				fail("maxSize needs a positive valueDecimal (bytes)")
				continue
			}
			it.MaxSize = int64(v)
		case extItemControl:
			code := ""
			if ext.ValueCodeableConcept != nil {
				for _, c := range ext.ValueCodeableConcept.Coding {
					if c.Code != "" {
						code = c.Code
						break
					}
				}
			}
			switch {
			case code == "":
				fail("itemControl needs valueCodeableConcept with a code")
			case honouredControls[code]:
				it.Control = code
			case defaultControls[code]:
				// Drawn with the default control for the item's type.
			default:
				fail("itemControl %q is not supported", clip(code))
			}
		case extMinOccurs, extMaxOccurs:
			if !it.Answerable() && it.Type != TypeGroup {
				fail("%s is only supported on questions and repeating groups", ext.URL)
				continue
			}
			if ext.ValueInteger == nil || *ext.ValueInteger < 0 || *ext.ValueInteger > MaxAnswersPerItem {
				fail("%s needs a valueInteger from 0 to %d", ext.URL, MaxAnswersPerItem)
				continue
			}
			if ext.URL == extMinOccurs {
				it.MinOccurs = int(*ext.ValueInteger)
			} else {
				it.MaxOccurs = int(*ext.ValueInteger)
			}
		case extHidden:
			if ext.ValueBoolean == nil {
				fail("questionnaire-hidden needs valueBoolean")
				continue
			}
			it.Hidden = *ext.ValueBoolean
		case extUnit, extUnitOption:
			// questionnaire-unit names the unit of an integer or decimal
			// answer (shown beside the box); on a quantity item it and
			// unitOption list the units the patient picks from.
			if it.Type != TypeQuantity && !(ext.URL == extUnit && (it.Type == TypeDecimal || it.Type == TypeInteger)) {
				fail("%s is only supported on quantity items (questionnaire-unit also on integer and decimal items)", ext.URL)
				continue
			}
			if ext.ValueCoding == nil || (ext.ValueCoding.Code == "" && ext.ValueCoding.Display == "") {
				fail("%s needs valueCoding with a code or display", ext.URL)
				continue
			}
			u := *ext.ValueCoding
			for _, have := range it.Units {
				if unitKey(have) == unitKey(u) {
					fail("unit %q is listed twice", clip(unitKey(u)))
				}
			}
			it.Units = append(it.Units, u)
		case extCalculated:
			if ext.ValueExpression == nil {
				fail("calculatedExpression needs valueExpression")
				continue
			}
			if !it.Answerable() {
				fail("calculatedExpression is only supported on questions")
				continue
			}
			e, err := compileExpression(*ext.ValueExpression)
			if err != nil {
				fail("calculatedExpression: %v", err)
				continue
			}
			it.Calculated = e
			p.q.calculated = append(p.q.calculated, it)
		case extVariable:
			v, err := variableFromWire(ext)
			if err != nil {
				fail("variable: %v", err)
				continue
			}
			// In scope for the item's own expressions and those under it
			// (SDC); inside a repeating group, worked out per instance.
			it.variables = append(it.variables, v)
		}
	}
	if it.parent != nil && it.parent.Hidden {
		it.Hidden = true // what is inside a hidden item is hidden too
	}
	if it.MaxOccurs > 0 && it.MinOccurs > it.MaxOccurs {
		fail("minOccurs is greater than maxOccurs")
	}
	if !it.Repeats && (it.MinOccurs > 1 || it.MaxOccurs > 1) {
		fail("minOccurs or maxOccurs above 1 on an item that does not repeat")
	}
	if it.MinValue != nil && it.MaxValue != nil && *it.MinValue > *it.MaxValue {
		fail("minValue is greater than maxValue")
	}
	if it.MinDate != "" && it.MaxDate != "" && it.MinDate > it.MaxDate {
		fail("minValue is after maxValue")
	}
	if it.MinLength > 0 && it.MinLength > it.EffectiveMaxLength() && it.EffectiveMaxLength() > 0 {
		fail("minLength is greater than maxLength")
	}
	if it.Control == "check-box" && !it.Repeats && it.Type != TypeBoolean {
		// A single answer drawn as checkboxes would let the patient tick
		// several: draw it as radio buttons.
		it.Control = "radio-button"
	}
}

// unitKey is what a client submits to pick a unit: its code, else its
// display.
func unitKey(u Coding) string {
	if u.Code != "" {
		return u.Code
	}
	return u.Display
}

func variableFromWire(ext wireExtension) (Variable, error) {
	if ext.ValueExpression == nil || ext.ValueExpression.Name == "" {
		return Variable{}, fmt.Errorf("needs valueExpression with a name")
	}
	e, err := compileExpression(*ext.ValueExpression)
	if err != nil {
		return Variable{}, fmt.Errorf("%s: %v", ext.ValueExpression.Name, err)
	}
	return Variable{Name: ext.ValueExpression.Name, Expr: e}, nil
}

// initial reads item.initial into answers, with the same rules as a patient's
// answer would have.
func (p *parser) initial(it *Item, raws []json.RawMessage, fail func(string, ...any)) {
	if len(raws) == 0 {
		return
	}
	if !it.Answerable() {
		fail("initial on a %s item", it.Type)
		return
	}
	if len(it.Options) > 0 {
		fail("initial together with answerOption (FHIR que-11); use answerOption.initialSelected")
		return
	}
	if len(raws) > 1 && !it.Repeats {
		fail("several initial values on an item that does not repeat")
		return
	}
	it.Initial = nil
	for i, raw := range raws {
		var v Value
		if err := json.Unmarshal(raw, &v); err != nil || v.setFields() != 1 {
			fail("initial[%d]: needs exactly one supported value[x]", i)
			return
		}
		if it.FreeReference() {
			// The answer is a description: the initial value must be one.
			r := v.ValueReference
			if r == nil || r.Reference != "" || r.Identifier != nil || r.Type != "" {
				fail("initial[%d]: a reference item without answerOption takes initialReference with a display only (its answer is a description, not a record id)", i)
				return
			}
			v = Value{ValueString: &r.Display}
		}
		b, err := answerJSON(v)
		if err != nil {
			fail("initial[%d]: %v", i, err)
			return
		}
		if v.ValueQuantity != nil {
			b, _ = json.Marshal(v.ValueQuantity)
			if len(it.Units) == 0 && (v.ValueQuantity.Code != "" || v.ValueQuantity.Unit != "") {
				// The initial value names the item's unit.
				it.Units = []Coding{{System: v.ValueQuantity.System, Code: v.ValueQuantity.Code, Display: v.ValueQuantity.Unit}}
			}
		}
		got, empty, msg := decodeAnswer(it, b)
		if !msg.IsZero() || empty {
			fail("initial[%d]: %s", i, strings.TrimSpace("does not suit the item: "+msg.String()))
			return
		}
		it.Initial = append(it.Initial, got)
	}
}
