package forms

import (
	"fmt"
	"slices"
	"strings"
)

// CheckResponse checks a QuestionnaireResponse item tree strictly against the
// form it answers: every item exists in the form and sits where the form puts
// it (group children in the group, question children in the answer), in the
// form's order and at most once (a repeating group once per instance, each
// holding that instance's items); groups hold items and no answers, display
// items never appear, questions have at least one answer and more only if
// they repeat; each answer has exactly one value[x] of the type the item
// takes (a coding or string that is one of the options, a quantity in one of
// the units). It returns every problem found. Exports are checked with it in
// tests, more strictly than a generic FHIR validator would.
func (q *Questionnaire) CheckResponse(items []ResponseItem) []string {
	var problems []string
	q.checkItems(items, q.Items, "", &problems)
	return problems
}

func (q *Questionnaire) checkItems(items []ResponseItem, allowed []*Item, where string, problems *[]string) {
	add := func(format string, args ...any) {
		*problems = append(*problems, fmt.Sprintf(format, args...))
	}
	last := -1
	for _, ri := range items {
		at := where + "/" + ri.LinkID
		idx := slices.IndexFunc(allowed, func(it *Item) bool { return it.LinkID == ri.LinkID })
		if idx < 0 {
			if q.Item(ri.LinkID) == nil {
				add("%s: not in the form", at)
			} else {
				add("%s: not nested as the form nests it", at)
			}
			continue
		}
		if idx < last || idx == last && !allowed[idx].RepeatingGroup() {
			// Only a repeating group appears again: once per instance.
			add("%s: out of the form's order or repeated", at)
		}
		last = idx
		it := allowed[idx]
		switch it.Type {
		case TypeDisplay:
			add("%s: a display item has no place in a response", at)
		case TypeGroup:
			if len(ri.Answer) > 0 {
				add("%s: a group has no answers", at)
			}
			if len(ri.Item) == 0 {
				add("%s: an empty group", at)
			}
			q.checkItems(ri.Item, it.Items, at, problems)
		default:
			if len(ri.Item) > 0 {
				add("%s: a question's children belong in answer.item", at)
			}
			switch {
			case len(ri.Answer) == 0:
				add("%s: a question without answers", at)
			case len(ri.Answer) > 1 && !it.Repeats:
				add("%s: %d answers to a question that does not repeat", at, len(ri.Answer))
			}
			for i, a := range ri.Answer {
				if msg := answerFits(it, a); msg != "" {
					add("%s: answer %d: %s", at, i+1, msg)
				}
				if len(a.Item) > 0 {
					q.checkItems(a.Item, it.Items, fmt.Sprintf("%s/answer[%d]", at, i), problems)
				}
			}
		}
	}
}

// answerFits says what is wrong with an answer for an item, or "".
func answerFits(it *Item, a Value) string {
	if n := a.setFields(); n != 1 {
		return fmt.Sprintf("%d value[x] elements, want 1", n)
	}
	kind := strings.TrimPrefix(answerKind(a), "answer")
	switch {
	case a.ValueAttachment != nil:
		kind = "Attachment"
	}
	want := map[string][]string{
		TypeString: {"String"}, TypeText: {"String"}, TypeInteger: {"Integer"}, TypeDecimal: {"Decimal"},
		TypeDate: {"Date"}, TypeDateTime: {"DateTime"}, TypeBoolean: {"Boolean"}, TypeAttachment: {"Attachment"},
		TypeQuantity: {"Quantity"}, TypeChoice: {"Coding"}, TypeOpenChoice: {"Coding", "String"},
		TypeTime: {"Time"}, TypeURL: {"Uri"}, TypeReference: {"Reference"},
	}[it.Type]
	if it.FreeText() {
		want = []string{"String"}
	}
	if !slices.Contains(want, kind) {
		return fmt.Sprintf("value%s on a %s item (want value%s)", kind, it.Type, strings.Join(want, " or value"))
	}
	if it.FreeReference() {
		r := a.ValueReference
		switch {
		case r.Reference != "" || r.Identifier != nil || r.Type != "":
			return "valueReference names a record (reference, identifier or type) on a reference item without options (want a display only)"
		case strings.TrimSpace(r.Display) == "":
			return "valueReference without display on a reference item without options"
		}
		return ""
	}
	if len(it.Options) > 0 && (a.ValueCoding != nil || it.Type != TypeOpenChoice) {
		found := false
		for _, o := range it.Options {
			if equalValue(o.value(), a) {
				found = true
				break
			}
		}
		if !found {
			return "not one of the item's options"
		}
	}
	if a.ValueQuantity != nil && len(it.Units) > 0 {
		ok := false
		for _, u := range it.Units {
			if u.Code == a.ValueQuantity.Code && u.System == a.ValueQuantity.System {
				ok = true
			}
		}
		if !ok {
			return "quantity not in one of the item's units"
		}
	}
	return ""
}

func equalValue(a, b Value) bool {
	switch {
	case a.ValueCoding != nil:
		return b.ValueCoding != nil && a.ValueCoding.Code == b.ValueCoding.Code && a.ValueCoding.System == b.ValueCoding.System
	case a.ValueString != nil:
		return b.ValueString != nil && *a.ValueString == *b.ValueString
	case a.ValueInteger != nil:
		return b.ValueInteger != nil && *a.ValueInteger == *b.ValueInteger
	case a.ValueDate != nil:
		return b.ValueDate != nil && *a.ValueDate == *b.ValueDate
	case a.ValueTime != nil:
		return b.ValueTime != nil && *a.ValueTime == *b.ValueTime
	case a.ValueReference != nil:
		return b.ValueReference != nil && a.ValueReference.Reference == b.ValueReference.Reference
	}
	return false
}
