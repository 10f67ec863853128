package forms

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

type wireEnableWhen struct {
	Question        string          `json:"question"`
	Operator        string          `json:"operator"`
	AnswerBoolean   *bool           `json:"answerBoolean"`
	AnswerString    *string         `json:"answerString"`
	AnswerInteger   *int64          `json:"answerInteger"`
	AnswerDecimal   *json.Number    `json:"answerDecimal"`
	AnswerCoding    *Coding         `json:"answerCoding"`
	AnswerDate      *string         `json:"answerDate"`
	AnswerDateTime  *string         `json:"answerDateTime"`
	AnswerQuantity  *Quantity       `json:"answerQuantity"`
	AnswerTime      json.RawMessage `json:"answerTime"`
	AnswerReference *Reference      `json:"answerReference"`
}

func enableWhenFromWire(w wireEnableWhen) (EnableWhen, error) {
	cond := EnableWhen{Question: w.Question, Operator: w.Operator}
	if w.Question == "" {
		return cond, errors.New("missing question")
	}
	n := 0
	if w.AnswerReference != nil {
		n++
		if w.AnswerReference.Reference == "" {
			return cond, errors.New("answerReference without reference")
		}
		cond.Answer.ValueReference = &Reference{Reference: w.AnswerReference.Reference, Display: w.AnswerReference.Display}
	}
	if w.AnswerTime != nil {
		n++
		var s string
		t, ok := "", false
		if json.Unmarshal(w.AnswerTime, &s) == nil {
			t, ok = normalTime(s)
		}
		if !ok {
			return cond, errors.New("answerTime is not a time (HH:MM:SS)")
		}
		cond.Answer.ValueTime = &t
	}
	if w.AnswerBoolean != nil {
		n++
		cond.Answer.ValueBoolean = w.AnswerBoolean
	}
	if w.AnswerString != nil {
		n++
		cond.Answer.ValueString = w.AnswerString
	}
	if w.AnswerInteger != nil {
		n++
		cond.Answer.ValueInteger = w.AnswerInteger
	}
	if w.AnswerDecimal != nil {
		n++
		if !isJSONNumber(string(*w.AnswerDecimal)) {
			return cond, errors.New("answerDecimal is not a number")
		}
		cond.Answer.ValueDecimal = w.AnswerDecimal
	}
	if w.AnswerCoding != nil {
		n++
		if w.AnswerCoding.Code == "" {
			return cond, errors.New("answerCoding without code")
		}
		cond.Answer.ValueCoding = w.AnswerCoding
	}
	if w.AnswerDate != nil {
		n++
		if !validDate(*w.AnswerDate) {
			return cond, fmt.Errorf("answerDate %q is not a date (YYYY-MM-DD)", clip(*w.AnswerDate))
		}
		cond.Answer.ValueDate = w.AnswerDate
	}
	if w.AnswerDateTime != nil {
		n++
		if !validDateTime(*w.AnswerDateTime) {
			return cond, fmt.Errorf("answerDateTime %q is not a dateTime with seconds and zone", clip(*w.AnswerDateTime))
		}
		cond.Answer.ValueDateTime = w.AnswerDateTime
	}
	if w.AnswerQuantity != nil {
		n++
		if w.AnswerQuantity.Value == "" || !isJSONNumber(string(w.AnswerQuantity.Value)) {
			return cond, errors.New("answerQuantity needs a value")
		}
		cond.Answer.ValueQuantity = w.AnswerQuantity
	}
	if n != 1 {
		return cond, errors.New("needs exactly one answer[x]")
	}
	switch w.Operator {
	case "exists":
		if w.AnswerBoolean == nil {
			return cond, errors.New(`operator "exists" needs answerBoolean`)
		}
	case "=", "!=":
	case ">", "<", ">=", "<=":
		if w.AnswerBoolean != nil || w.AnswerCoding != nil || w.AnswerReference != nil {
			return cond, fmt.Errorf("operator %q cannot compare booleans, codings or references", w.Operator)
		}
	case "":
		return cond, errors.New("missing operator")
	default:
		return cond, fmt.Errorf("unsupported operator %q (FHIR has exists, =, !=, >, <, >=, <=)", clip(w.Operator))
	}
	return cond, nil
}

// resolveEnableWhen checks each condition against the question it names,
// once every linkId is known (a condition may point forward), and rejects
// cycles, which would leave an item's state undefined.
func (p *parser) resolveEnableWhen() {
	for _, it := range p.q.all {
		for i, ew := range it.EnableWhen {
			fail := func(format string, args ...any) {
				p.itemProblem(it.LinkID, it.path, "enableWhen[%d]: %s", i, fmt.Sprintf(format, args...))
			}
			target := p.q.byLinkID[ew.Question]
			if target == nil {
				fail("question %q is not in the form", clip(ew.Question))
				continue
			}
			if !target.Answerable() {
				fail("question %q is a %s item, which has no answers", ew.Question, target.Type)
				continue
			}
			if ew.Operator == "exists" {
				continue
			}
			if target.FreeReference() {
				fail("operator %q on the reference item %q without options: only exists is supported (its answer is a description, there is no reference to compare)", ew.Operator, ew.Question)
				continue
			}
			if err := answerSuits(target, ew.Answer); err != nil {
				fail("%v", err)
			}
		}
	}
	if len(p.problems) > 0 {
		return
	}
	// Depth-first search over "depends on" edges (the parent, and each
	// enableWhen question); a back edge is a cycle.
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int8, len(p.q.all))
	var visit func(it *Item) bool
	visit = func(it *Item) bool {
		switch state[it.index] {
		case visiting:
			p.itemProblem(it.LinkID, it.path, "enableWhen conditions form a cycle")
			return false
		case done:
			return true
		}
		state[it.index] = visiting
		if it.parent != nil && !visit(it.parent) {
			return false
		}
		for _, ew := range it.EnableWhen {
			if !visit(p.q.byLinkID[ew.Question]) {
				return false
			}
		}
		state[it.index] = done
		return true
	}
	for _, it := range p.q.all {
		if !visit(it) {
			return
		}
	}
}

// answerKind names the answer[x] of a condition.
func answerKind(v Value) string {
	switch {
	case v.ValueBoolean != nil:
		return "answerBoolean"
	case v.ValueString != nil:
		return "answerString"
	case v.ValueInteger != nil:
		return "answerInteger"
	case v.ValueDecimal != nil:
		return "answerDecimal"
	case v.ValueCoding != nil:
		return "answerCoding"
	case v.ValueDate != nil:
		return "answerDate"
	case v.ValueDateTime != nil:
		return "answerDateTime"
	case v.ValueQuantity != nil:
		return "answerQuantity"
	case v.ValueTime != nil:
		return "answerTime"
	case v.ValueURI != nil:
		return "answerUri"
	case v.ValueReference != nil:
		return "answerReference"
	}
	return "answer"
}

// answerSuits rejects an enableWhen answer whose type can never be compared
// with an answer to the question, which would silently disable (or enable)
// an item for ever. Whether the value is one the patient can give is not
// checked: FHIR allows such a condition, and it simply never holds.
func answerSuits(target *Item, want Value) error {
	kind := answerKind(want)
	ok := false
	switch target.Type {
	case TypeBoolean:
		ok = kind == "answerBoolean"
	case TypeInteger, TypeDecimal:
		ok = kind == "answerInteger" || kind == "answerDecimal"
	case TypeDate:
		ok = kind == "answerDate" || kind == "answerDateTime"
	case TypeDateTime:
		ok = kind == "answerDateTime" || kind == "answerDate"
	case TypeString, TypeText:
		ok = kind == "answerString"
	case TypeChoice, TypeOpenChoice:
		ok = kind == "answerCoding" || kind == "answerString"
	case TypeQuantity:
		ok = kind == "answerQuantity" || kind == "answerDecimal" || kind == "answerInteger"
	case TypeTime:
		ok = kind == "answerTime"
	case TypeReference:
		ok = kind == "answerReference"
	}
	if !ok {
		return fmt.Errorf("%s cannot match the %s question %q", kind, target.Type, target.LinkID)
	}
	return nil
}

// compareAnswer compares an answer with a condition's value: -1, 0 or 1, and
// ok false when the two cannot be ordered (then only != holds).
func compareAnswer(got, want Value) (int, bool) {
	switch {
	case want.ValueBoolean != nil:
		if got.ValueBoolean == nil {
			return 0, false
		}
		if *got.ValueBoolean == *want.ValueBoolean {
			return 0, true
		}
		return 1, false
	case want.ValueString != nil:
		if got.ValueString != nil {
			return strings.Compare(*got.ValueString, *want.ValueString), true
		}
		if got.ValueCoding != nil && got.ValueCoding.Code == *want.ValueString {
			return 0, true
		}
		return 0, false
	case want.ValueCoding != nil:
		if got.ValueCoding == nil || got.ValueCoding.Code != want.ValueCoding.Code ||
			(want.ValueCoding.System != "" && got.ValueCoding.System != want.ValueCoding.System) {
			return 1, false
		}
		return 0, true
	case want.ValueInteger != nil, want.ValueDecimal != nil:
		a, okA := numberOf(got)
		b, okB := numberOf(want)
		if !okA || !okB {
			return 0, false
		}
		return a.Cmp(b), true
	case want.ValueQuantity != nil:
		if got.ValueQuantity != nil && want.ValueQuantity.Code != "" &&
			(got.ValueQuantity.Code != want.ValueQuantity.Code ||
				(want.ValueQuantity.System != "" && got.ValueQuantity.System != want.ValueQuantity.System)) {
			return 0, false // different units: not comparable without conversion
		}
		a, okA := numberOf(got)
		b, okB := numberOf(want)
		if !okA || !okB {
			return 0, false
		}
		return a.Cmp(b), true
	case want.ValueReference != nil:
		// FHIR compares references by their reference; display is a label.
		if got.ValueReference == nil || got.ValueReference.Reference != want.ValueReference.Reference {
			return 1, false
		}
		return 0, true
	case want.ValueTime != nil:
		// Both are HH:MM:SS (normalTime), so they order as text.
		if got.ValueTime == nil {
			return 0, false
		}
		return strings.Compare(*got.ValueTime, *want.ValueTime), true
	case want.ValueDate != nil, want.ValueDateTime != nil:
		a, okA := instantOf(got)
		b, okB := instantOf(want)
		if !okA || !okB {
			return 0, false
		}
		return a.Compare(b), true
	}
	return 0, false
}

// numberOf reads an integer, decimal or quantity answer exactly.
func numberOf(v Value) (*big.Rat, bool) {
	var s string
	switch {
	case v.ValueInteger != nil:
		return new(big.Rat).SetInt64(*v.ValueInteger), true
	case v.ValueDecimal != nil:
		s = string(*v.ValueDecimal)
	case v.ValueQuantity != nil:
		s = string(v.ValueQuantity.Value)
	default:
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// instantOf reads a date (as its start, UTC) or dateTime answer.
func instantOf(v Value) (time.Time, bool) {
	switch {
	case v.ValueDate != nil:
		t, err := time.Parse(time.DateOnly, *v.ValueDate)
		return t, err == nil
	case v.ValueDateTime != nil:
		t, err := time.Parse(time.RFC3339, *v.ValueDateTime)
		return t, err == nil
	}
	return time.Time{}, false
}

// conditionHolds applies an operator to the answers of the question (none
// when the question is unanswered or disabled), as FHIR defines them: "="
// and the orderings hold when at least one answer satisfies them, "!=" when
// no answer equals the value, "exists" when answered-ness equals the value.
func conditionHolds(ew EnableWhen, answers []Value) bool {
	switch ew.Operator {
	case "exists":
		return (len(answers) > 0) == (ew.Answer.ValueBoolean != nil && *ew.Answer.ValueBoolean)
	case "!=":
		for _, a := range answers {
			if c, ok := compareAnswer(a, ew.Answer); ok && c == 0 {
				return false
			}
		}
		return true
	}
	for _, a := range answers {
		c, ok := compareAnswer(a, ew.Answer)
		if !ok {
			continue
		}
		switch ew.Operator {
		case "=":
			if c == 0 {
				return true
			}
		case ">":
			if c > 0 {
				return true
			}
		case "<":
			if c < 0 {
				return true
			}
		case ">=":
			if c >= 0 {
				return true
			}
		case "<=":
			if c <= 0 {
				return true
			}
		}
	}
	return false
}
