package forms

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Value is one answer, shaped exactly like a FHIR R4
// QuestionnaireResponse.item.answer element, so it marshals straight into
// FHIR JSON and the sealed submission and the FHIR export share one format.
// Exactly one field is set.
type Value struct {
	ValueString     *string      `json:"valueString,omitempty"`
	ValueInteger    *int64       `json:"valueInteger,omitempty"`
	ValueDecimal    *json.Number `json:"valueDecimal,omitempty"`
	ValueBoolean    *bool        `json:"valueBoolean,omitempty"`
	ValueDate       *string      `json:"valueDate,omitempty"`     // YYYY-MM-DD, a real calendar date
	ValueDateTime   *string      `json:"valueDateTime,omitempty"` // RFC 3339 with zone
	ValueCoding     *Coding      `json:"valueCoding,omitempty"`
	ValueAttachment *Attachment  `json:"valueAttachment,omitempty"`
	ValueQuantity   *Quantity    `json:"valueQuantity,omitempty"`
	ValueTime       *string      `json:"valueTime,omitempty"`      // HH:MM:SS
	ValueURI        *string      `json:"valueUri,omitempty"`       // the answer to a url item
	ValueReference  *Reference   `json:"valueReference,omitempty"` // one of a reference item's options
	// Item holds the answers to questions nested under this answer
	// (QuestionnaireResponse.item.answer.item). Answers keyed by linkId
	// never set it; ResponseItems does, and the FHIR decoder reads it.
	Item []ResponseItem `json:"item,omitempty"`
	// Instance is set instead of a value[x] on the answers to a repeating
	// group, one Value per instance: the answers given within that instance,
	// keyed by linkId like Answers. It is how a submission keeps each
	// instance's answers together when sealed and stored; ResponseItems turns
	// each instance into its own group item, so it never appears in FHIR.
	Instance Answers `json:"instance,omitempty"`
}

// Quantity is a FHIR Quantity: the answer to a quantity item, with its unit
// as the form offers it (UCUM code and system kept).
type Quantity struct {
	Value  json.Number `json:"value"`
	Unit   string      `json:"unit,omitempty"`
	System string      `json:"system,omitempty"`
	Code   string      `json:"code,omitempty"`
}

// Coding is a FHIR Coding: the answer to a choice item, carrying the
// option's system and display so the clinic can read it without the form.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Reference is a FHIR Reference: the answer to a reference item, either
// one of the item's answerOptions (a patient cannot point at records of
// their own choosing), carrying the option's display, or on an item
// without options a display alone, the patient's description of the record.
type Reference struct {
	Reference string `json:"reference,omitempty"`
	Display   string `json:"display,omitempty"`
	// Identifier and Type are read only so that a QuestionnaireResponse
	// naming a record by them is refused, never silently stripped: Airlock
	// never stores them.
	Identifier *json.RawMessage `json:"identifier,omitempty"`
	Type       string           `json:"type,omitempty"`
}

// Attachment is a FHIR Attachment with its content inline, so that a file is
// sealed together with the rest of the submission.
type Attachment struct {
	ContentType string `json:"contentType,omitempty"`
	Data        []byte `json:"data,omitempty"` // base64 in JSON
	Title       string `json:"title,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Hash        []byte `json:"hash,omitempty"` // SHA-1 of Data, as FHIR R4 defines it
}

// String renders the answer as text for CSV export and HTML display:
// a coding shows its display (or code), an attachment its title and size,
// a boolean "yes" or "no".
func (v Value) String() string {
	switch {
	case v.ValueString != nil:
		return *v.ValueString
	case v.ValueInteger != nil:
		return strconv.FormatInt(*v.ValueInteger, 10)
	case v.ValueDecimal != nil:
		return v.ValueDecimal.String()
	case v.ValueBoolean != nil:
		if *v.ValueBoolean {
			return "yes"
		}
		return "no"
	case v.ValueDate != nil:
		return *v.ValueDate
	case v.ValueDateTime != nil:
		return *v.ValueDateTime
	case v.ValueTime != nil:
		return *v.ValueTime
	case v.ValueURI != nil:
		return *v.ValueURI
	case v.ValueCoding != nil:
		if v.ValueCoding.Display != "" {
			return v.ValueCoding.Display
		}
		return v.ValueCoding.Code
	case v.ValueReference != nil:
		if v.ValueReference.Display != "" {
			return v.ValueReference.Display
		}
		return v.ValueReference.Reference
	case v.ValueQuantity != nil:
		unit := v.ValueQuantity.Unit
		if unit == "" {
			unit = v.ValueQuantity.Code
		}
		if unit == "" {
			return v.ValueQuantity.Value.String()
		}
		return v.ValueQuantity.Value.String() + " " + unit
	case v.ValueAttachment != nil:
		title := v.ValueAttachment.Title
		if title == "" {
			title = "attachment"
		}
		size := v.ValueAttachment.Size
		if size == 0 {
			size = int64(len(v.ValueAttachment.Data))
		}
		return fmt.Sprintf("%s (%d bytes)", title, size)
	}
	return ""
}

// setFields counts the value[x] fields that are set; a well-formed Value has
// exactly one.
func (v Value) setFields() int {
	n := 0
	for _, set := range []bool{
		v.ValueString != nil, v.ValueInteger != nil, v.ValueDecimal != nil, v.ValueBoolean != nil,
		v.ValueDate != nil, v.ValueDateTime != nil, v.ValueCoding != nil, v.ValueAttachment != nil,
		v.ValueQuantity != nil, v.ValueTime != nil, v.ValueURI != nil, v.ValueReference != nil,
	} {
		if set {
			n++
		}
	}
	return n
}
