package forms

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Carried returns only the answers of items carried to the clinic (an item
// not carried drops its descendants too). Transfer calls it before anything
// reaches stage 2, so what the clinic stores is minimised by the form itself.
// Answers to linkIds the form does not know are dropped as well.
func (q *Questionnaire) Carried(a Answers) Answers {
	return carried(q.members, a)
}

func carried(members []*Item, a Answers) Answers {
	out := make(Answers, len(a))
	for _, it := range members {
		values, ok := a[it.LinkID]
		if !ok || !it.Carried || len(values) == 0 {
			continue
		}
		if it.RepeatingGroup() {
			var insts []Value
			for _, v := range values {
				if inst := carried(it.members, v.Instance); len(inst) > 0 {
					insts = append(insts, Value{Instance: inst})
				}
			}
			if len(insts) > 0 {
				out[it.LinkID] = insts
			}
			continue
		}
		values = slices.Clone(values)
		for i := range values {
			if values[i].Instance != nil {
				values[i].Instance = carried(it.members, values[i].Instance)
				if len(values[i].Instance) == 0 {
					values[i].Instance = nil
				}
			}
		}
		out[it.LinkID] = values
	}
	return out
}

// Answered is one answered question of a submission, as WalkAnswers visits
// it: the item, its field name (the linkId, within an instance of a
// repeating group prefixed by the instance: "meds[2]/dose") and its answers.
type Answered struct {
	Item   *Item
	Field  string
	Values []Value
}

// WalkAnswers calls fn for every answered question in document order,
// going into each instance of a repeating group in turn.
func (q *Questionnaire) WalkAnswers(a Answers, fn func(Answered)) {
	walkAnswers(q.members, a, "", fn)
}

func walkAnswers(members []*Item, a Answers, prefix string, fn func(Answered)) {
	for _, it := range members {
		values := a[it.LinkID]
		if len(values) == 0 {
			continue
		}
		if it.RepeatingGroup() {
			for i, v := range values {
				walkAnswers(it.members, v.Instance, InstanceField(prefix, it.LinkID, i+1), fn)
			}
			continue
		}
		fn(Answered{Item: it, Field: prefix + it.LinkID, Values: values})
		for i, v := range values {
			if len(v.Instance) > 0 {
				// The questions under this answer of a repeating question.
				walkAnswers(it.members, v.Instance, InstanceField(prefix, it.LinkID, i+1), fn)
			}
		}
	}
}

// ValuesAt returns the answers of the question a field name (as WalkAnswers
// gives it) stands for, or nil.
func (q *Questionnaire) ValuesAt(a Answers, field string) []Value {
	var out []Value
	q.WalkAnswers(a, func(x Answered) {
		if x.Field == field {
			out = x.Values
		}
	})
	return out
}

// FirstField is the field name of an item in the first instance of every
// repeating group it sits in: "meds[1]/dose" (the linkId outside repeating
// groups; "q[1]/q" for the first answer of a repeating question with
// questions under it).
func (it *Item) FirstField() string {
	prefix := ""
	var groups []*Item
	for g := it.scope; g != nil; g = g.scope {
		groups = append([]*Item{g}, groups...)
	}
	for _, g := range groups {
		prefix = InstanceField(prefix, g.LinkID, 1)
	}
	if it.Answerable() && it.HasInstances() {
		// A repeating question with questions under it: its own answer in
		// its first instance, "q[1]/q".
		prefix = InstanceField(prefix, it.LinkID, 1)
	}
	return prefix + it.LinkID
}

// InstanceField is the prefix of the fields within instance n (from 1) of
// the repeating group linkID, inside the instance prefix (or "" at the top
// level): "meds[2]/".
func InstanceField(prefix, linkID string, n int) string {
	return prefix + linkID + "[" + strconv.Itoa(n) + "]/"
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
// A repeating group gives one item per instance, in order.
func (q *Questionnaire) ResponseItems(a Answers) []ResponseItem {
	return responseItems(q.Items, a)
}

func responseItems(items []*Item, a Answers) []ResponseItem {
	var out []ResponseItem
	for _, it := range items {
		switch it.Type {
		case TypeDisplay:
		case TypeGroup:
			if it.Repeats {
				for _, inst := range a[it.LinkID] {
					if children := responseItems(it.Items, inst.Instance); len(children) > 0 {
						out = append(out, ResponseItem{LinkID: it.LinkID, Text: it.Text, Item: children})
					}
				}
				continue
			}
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
			// answer.item): under a repeating question each answer holds
			// its own (Value.Instance); under one that does not repeat,
			// they are answered beside it and go under its one answer.
			if it.scopeOwner() {
				for i := range values {
					values[i].Item = responseItems(it.Items, values[i].Instance)
					values[i].Instance = nil
				}
			} else if children := responseItems(it.Items, a); len(children) > 0 {
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
// Each occurrence of a repeating group of the form becomes one instance
// (an object of its own answers, flattened the same way). Otherwise the
// tree's shape is not checked against the form: Validate checks the
// answers, and the form's own structure is used again on export.
func (q *Questionnaire) AnswersFromResponseItems(items []ResponseItem) (map[string]json.RawMessage, error) {
	f := flattener{q: q}
	top := newRawScope()
	if err := f.flatten(items, top, 1); err != nil {
		return nil, err
	}
	return top.encode()
}

// flattener turns response items into raw answers, counting group
// instances against maxInstances.
type flattener struct {
	q     *Questionnaire
	count int
}

// rawScope collects the raw answers of the top level or of one instance:
// answers by linkId, and the instances of each repeating group.
type rawScope struct {
	vals   map[string]json.RawMessage
	groups map[string][]*rawScope
	order  []string // group linkIds, first seen first
}

func newRawScope() *rawScope {
	return &rawScope{vals: map[string]json.RawMessage{}, groups: map[string][]*rawScope{}}
}

// encode is the scope as Validate takes it: each repeating group an array
// of instance objects.
func (sc *rawScope) encode() (map[string]json.RawMessage, error) {
	raw := sc.vals
	for _, id := range sc.order {
		list := make([]map[string]json.RawMessage, 0, len(sc.groups[id]))
		for _, inst := range sc.groups[id] {
			m, err := inst.encode()
			if err != nil {
				return nil, err
			}
			list = append(list, m)
		}
		b, err := json.Marshal(list)
		if err != nil {
			return nil, fmt.Errorf("response item %q: %w", id, err)
		}
		raw[id] = b
	}
	return raw, nil
}

func (f *flattener) flatten(items []ResponseItem, sc *rawScope, depth int) error {
	raw := sc.vals
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
		if it := f.q.Item(item.LinkID); it != nil && it.RepeatingGroup() {
			if len(item.Answer) > 0 {
				return fmt.Errorf("response item %s is a group and has no answers", name())
			}
			if f.count++; f.count > maxInstances {
				return fmt.Errorf("response has more than %d group instances", maxInstances)
			}
			inst := newRawScope()
			if err := f.flatten(item.Item, inst, depth+1); err != nil {
				return err
			}
			if _, seen := sc.groups[item.LinkID]; !seen {
				sc.order = append(sc.order, item.LinkID)
			}
			sc.groups[item.LinkID] = append(sc.groups[item.LinkID], inst)
			continue
		}
		if _, dup := raw[item.LinkID]; dup {
			return fmt.Errorf("response item %s appears more than once", name())
		}
		if len(item.Answer) > MaxAnswersPerItem {
			return fmt.Errorf("response item %s has more than %d answers", name(), MaxAnswersPerItem)
		}
		owner := f.q.Item(item.LinkID)
		if len(item.Answer) > 0 {
			values := make([]json.RawMessage, 0, len(item.Answer))
			for j, v := range item.Answer {
				b, err := inputAnswer(owner, v)
				if err != nil {
					return fmt.Errorf("response item %s, answer %d: %w", name(), j+1, err)
				}
				if owner != nil && owner.scopeOwner() {
					// A repeating question: this answer's items are its own.
					if f.count++; f.count > maxInstances {
						return fmt.Errorf("response has more than %d group instances", maxInstances)
					}
					inst := newRawScope()
					if err := f.flatten(v.Item, inst, depth+1); err != nil {
						return err
					}
					m, err := inst.encode()
					if err != nil {
						return err
					}
					if len(m) > 0 {
						if b, err = json.Marshal(map[string]any{"answer": json.RawMessage(b), "item": m}); err != nil {
							return fmt.Errorf("response item %s: %w", name(), err)
						}
					}
					values = append(values, b)
					continue
				}
				values = append(values, b)
				// Answers to questions nested under this answer.
				if err := f.flatten(v.Item, sc, depth+1); err != nil {
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
		if err := f.flatten(item.Item, sc, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// maxInstances bounds the group instances of one response.
const maxInstances = MaxInstances // (the FHIR way in, before Validate counts again)

// inputAnswer turns one answer to owner (nil: an unknown item) into the
// plain JSON value Validate expects of it.
func inputAnswer(owner *Item, v Value) (json.RawMessage, error) {
	switch {
	case owner != nil && owner.FreeReference() && v.setFields() == 1:
		// A reference item without options takes a valueReference
		// with a display only: a record id (reference, identifier,
		// type) is never taken from the public side, and one
		// without a display says nothing: both are refused.
		r := v.ValueReference
		if r != nil && r.Reference == "" && r.Identifier == nil && r.Type == "" && strings.TrimSpace(r.Display) != "" {
			b, _ := json.Marshal(r.Display) // a string always marshals
			return b, nil
		}
		return json.RawMessage(`{}`), nil
	case owner != nil && v.setFields() == 1 &&
		(owner.Type == TypeReference) != (v.ValueReference != nil && v.ValueReference.Reference != ""):
		// A reference item takes a valueReference with a reference,
		// and only it takes one: this value fits no item's type
		// or option key, so Validate refuses it naming the item.
		return json.RawMessage(`{}`), nil
	}
	return answerJSON(v)
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
	case v.ValueTime != nil:
		b, err = json.Marshal(*v.ValueTime)
	case v.ValueURI != nil:
		b, err = json.Marshal(*v.ValueURI)
	case v.ValueReference != nil:
		// The option's key; its display is the form's, whatever was sent.
		if v.ValueReference.Reference == "" {
			return nil, errors.New("valueReference has no reference")
		}
		b, err = json.Marshal(v.ValueReference.Reference)
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
