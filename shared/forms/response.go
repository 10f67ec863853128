package forms

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Carried returns only the answers of items carried to the clinic (an item
// not carried drops its descendants too). Transfer calls it before anything
// reaches stage 2, so what the clinic stores is minimised by the form itself.
// Answers to linkIds the form does not know are dropped as well.
func (q *Questionnaire) Carried(a Answers) Answers {
	out := make(Answers, len(a))
	for _, it := range q.questions {
		if values, ok := a[it.LinkID]; ok && it.Carried && len(values) > 0 {
			out[it.LinkID] = slices.Clone(values)
		}
	}
	return out
}

// ResponseItem is a FHIR QuestionnaireResponse.item, so a submission can be
// exported as a QuestionnaireResponse without another mapping.
type ResponseItem struct {
	LinkID string         `json:"linkId"`
	Text   string         `json:"text,omitempty"`
	Answer []Value        `json:"answer,omitempty"`
	Item   []ResponseItem `json:"item,omitempty"`
}

// ResponseItems builds the nested QuestionnaireResponse item tree in the
// form's order: groups contain their children, and only answered items (and
// groups with at least one answered descendant) appear, as FHIR expects of a
// completed response.
func (q *Questionnaire) ResponseItems(a Answers) []ResponseItem {
	return responseItems(q.Items, a)
}

func responseItems(items []*Item, a Answers) []ResponseItem {
	var out []ResponseItem
	for _, it := range items {
		switch it.Type {
		case TypeDisplay:
		case TypeGroup:
			if children := responseItems(it.Items, a); len(children) > 0 {
				out = append(out, ResponseItem{LinkID: it.LinkID, Text: it.Text, Item: children})
			}
		default:
			values := a[it.LinkID]
			if len(values) == 0 {
				continue
			}
			values = slices.Clone(values)
			// Items under a question belong to its answer (FHIR
			// answer.item); Parse allows them only under questions that
			// do not repeat, so there is one answer to hold them.
			if children := responseItems(it.Items, a); len(children) > 0 {
				values[0].Item = children
			}
			out = append(out, ResponseItem{LinkID: it.LinkID, Text: it.Text, Answer: values})
		}
	}
	return out
}

// maxResponseDepth bounds the recursion over a client-supplied item tree.
const maxResponseDepth = 64

// AnswersFromResponseItems flattens a QuestionnaireResponse item tree back
// into raw answers (linkId -> JSON value, or an array for several answers)
// suitable for Validate, so intake can accept a FHIR QuestionnaireResponse
// body and check it by the same rules as any other submission. valueCoding
// becomes its code string; valueAttachment becomes the attachment object.
// The tree's shape is not checked against a form: Validate checks the
// answers, and the form's own structure is used again on export.
func AnswersFromResponseItems(items []ResponseItem) (map[string]json.RawMessage, error) {
	raw := make(map[string]json.RawMessage)
	if err := flattenResponseItems(items, raw, 1); err != nil {
		return nil, err
	}
	return raw, nil
}

func flattenResponseItems(items []ResponseItem, raw map[string]json.RawMessage, depth int) error {
	if depth > maxResponseDepth {
		return fmt.Errorf("response items nested more than %d deep", maxResponseDepth)
	}
	for i, item := range items {
		name := func() string {
			if key := displayKey(item.LinkID); key == item.LinkID && key != "" {
				return strconv.Quote(key)
			}
			return "#" + strconv.Itoa(i+1)
		}
		if item.LinkID == "" {
			return fmt.Errorf("response item %s has no linkId", name())
		}
		if _, dup := raw[item.LinkID]; dup {
			return fmt.Errorf("response item %s appears more than once", name())
		}
		if len(item.Answer) > MaxAnswersPerItem {
			return fmt.Errorf("response item %s has more than %d answers", name(), MaxAnswersPerItem)
		}
		if len(item.Answer) > 0 {
			values := make([]json.RawMessage, 0, len(item.Answer))
			for j, v := range item.Answer {
				b, err := answerJSON(v)
				if err != nil {
					return fmt.Errorf("response item %s, answer %d: %w", name(), j+1, err)
				}
				values = append(values, b)
				// Answers to questions nested under this answer.
				if err := flattenResponseItems(v.Item, raw, depth+1); err != nil {
					return err
				}
			}
			if len(values) == 1 {
				raw[item.LinkID] = values[0]
			} else {
				b, err := json.Marshal(values)
				if err != nil {
					return fmt.Errorf("response item %s: %w", name(), err)
				}
				raw[item.LinkID] = b
			}
		}
		if err := flattenResponseItems(item.Item, raw, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// answerJSON turns one answer into the plain JSON value Validate expects.
// Its errors describe the shape, never the content.
func answerJSON(v Value) (json.RawMessage, error) {
	if n := v.setFields(); n != 1 {
		return nil, fmt.Errorf("has %d value[x] elements, want exactly one", n)
	}
	var (
		b   []byte
		err error
	)
	switch {
	case v.ValueString != nil:
		b, err = json.Marshal(*v.ValueString)
	case v.ValueInteger != nil:
		b = strconv.AppendInt(nil, *v.ValueInteger, 10)
	case v.ValueDecimal != nil:
		if !isJSONNumber(string(*v.ValueDecimal)) {
			return nil, errors.New("valueDecimal is not a number")
		}
		b = []byte(*v.ValueDecimal)
	case v.ValueBoolean != nil:
		b = strconv.AppendBool(nil, *v.ValueBoolean)
	case v.ValueDate != nil:
		b, err = json.Marshal(*v.ValueDate)
	case v.ValueDateTime != nil:
		b, err = json.Marshal(*v.ValueDateTime)
	case v.ValueCoding != nil:
		key := v.ValueCoding.Code
		if key == "" {
			key = v.ValueCoding.Display // an option that is only a display
		}
		if key == "" {
			return nil, errors.New("valueCoding has no code")
		}
		b, err = json.Marshal(key)
	case v.ValueAttachment != nil:
		b, err = json.Marshal(v.ValueAttachment)
	case v.ValueQuantity != nil:
		if !isJSONNumber(string(v.ValueQuantity.Value)) {
			return nil, errors.New("valueQuantity has no numeric value")
		}
		q := map[string]any{"value": v.ValueQuantity.Value}
		switch {
		case v.ValueQuantity.Code != "":
			q["code"] = v.ValueQuantity.Code
		case v.ValueQuantity.Unit != "":
			q["unit"] = v.ValueQuantity.Unit
		}
		b, err = json.Marshal(q)
	}
	if err != nil {
		return nil, errors.New("answer cannot be encoded as JSON")
	}
	return b, nil
}
