package forms

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// HasCalculations reports whether the form has calculated items.
func (q *Questionnaire) HasCalculations() bool {
	return len(q.calculated) > 0
}

// Calculate computes the form's calculated items (SDC calculatedExpression,
// with its variables) from the patient's answers and returns the answers
// with those values set: transfer calls it after opening a submission, so the
// clinic's copy carries the score. A calculated item that is disabled, or
// whose expression yields nothing, has no answer; any value it had (which
// Validate never takes from a patient) is replaced. Items are computed in
// document order, each seeing the values computed before it, twice over so
// an item may use one computed after it. An evaluation error leaves that
// item unanswered and is returned, naming the item.
func (q *Questionnaire) Calculate(a Answers) (Answers, error) {
	return q.CalculateOn(a, time.Now())
}

// CalculateOn is Calculate with FHIRPath's today() giving the UTC date of
// day: transfer passes the time the patient sent the form, so an age
// worked out from a date of birth is the age on that day, however long the
// submission waited in intake.
func (q *Questionnaire) CalculateOn(a Answers, day time.Time) (Answers, error) {
	out := make(Answers, len(a))
	for k, v := range a {
		out[k] = v
	}
	if len(q.calculated) == 0 {
		return out, nil
	}
	for _, it := range q.calculated {
		delete(out, it.LinkID)
	}
	var firstErr error
	for pass := 0; pass < 2; pass++ {
		firstErr = nil
		for _, it := range q.calculated {
			resource, err := q.responseJSON(out)
			if err != nil {
				return nil, err
			}
			vars := map[string][]fpItem{}
			env := &fpEnv{q: q, vars: vars, resource: []fpItem{{v: resource}}, today: day.UTC().Format(time.DateOnly)}
			for _, v := range q.variables {
				r, err := env.eval(v.Expr.root, env.resource, env.resource)
				if err != nil {
					r = nil
				}
				vars[v.Name] = r
			}
			r, err := env.eval(it.Calculated.root, env.resource, env.resource)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("item %q: calculatedExpression: %v", it.LinkID, err)
				}
				delete(out, it.LinkID)
				continue
			}
			values, err := calculatedValues(it, r)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("item %q: calculatedExpression: %v", it.LinkID, err)
				}
				delete(out, it.LinkID)
				continue
			}
			if len(values) == 0 {
				delete(out, it.LinkID)
			} else {
				out[it.LinkID] = values
			}
		}
	}
	// Drop values of calculated items that do not apply.
	// Calculated items sit at the top level (Parse refuses them inside a
	// repeating group); their conditions may look into instances.
	r := newValidation(q).runFromAnswers(out, nil, nil, "")
	for _, it := range q.calculated {
		if r.enabled(it) != stateYes {
			delete(out, it.LinkID)
		}
	}
	return out, firstErr
}

// responseJSON is the QuestionnaireResponse of the answers as a generic
// JSON tree, for FHIRPath.
func (q *Questionnaire) responseJSON(a Answers) (any, error) {
	b, err := json.Marshal(map[string]any{
		"resourceType":  "QuestionnaireResponse",
		"questionnaire": q.canonicalURL,
		"status":        "completed",
		"item":          q.ResponseItems(a),
	})
	if err != nil {
		return nil, err
	}
	var out any
	if err := decodeJSONNumbers(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// calculatedValues converts an expression's result to answers of the item's
// type.
func calculatedValues(it *Item, r []fpItem) ([]Value, error) {
	if len(r) > 1 && !it.Repeats {
		return nil, fmt.Errorf("gave %d values for an item that takes one", len(r))
	}
	var out []Value
	for _, x := range r {
		var v Value
		switch it.Type {
		case TypeInteger:
			switch n := x.v.(type) {
			case int64:
				v.ValueInteger = &n
			case float64:
				if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
					return nil, fmt.Errorf("gave %v for an integer item", n)
				}
				i := int64(n)
				v.ValueInteger = &i
			default:
				return nil, fmt.Errorf("gave a %s for an integer item", fpType(x.v))
			}
		case TypeDecimal, TypeQuantity:
			f, ok := asNumber(x.v)
			if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("gave a %s for a %s item", fpType(x.v), it.Type)
			}
			places := -1
			if it.MaxDecimalPlaces >= 0 {
				places = it.MaxDecimalPlaces
			}
			s := strconv.FormatFloat(f, 'f', places, 64)
			if i, isInt := x.v.(int64); isInt {
				s = strconv.FormatInt(i, 10)
			}
			num := json.Number(s)
			if it.Type == TypeDecimal {
				v.ValueDecimal = &num
			} else {
				qty := &Quantity{Value: num}
				if len(it.Units) > 0 {
					u := it.Units[0]
					qty.Code, qty.System, qty.Unit = u.Code, u.System, u.Display
					if qty.Unit == "" {
						qty.Unit = u.Code
					}
				}
				v.ValueQuantity = qty
			}
		case TypeString, TypeText:
			s, ok := asString(x.v)
			if !ok {
				return nil, fmt.Errorf("gave a %s for a %s item", fpType(x.v), it.Type)
			}
			v.ValueString = &s
		case TypeBoolean:
			b, ok := x.v.(bool)
			if !ok {
				return nil, fmt.Errorf("gave a %s for a boolean item", fpType(x.v))
			}
			v.ValueBoolean = &b
		case TypeDate, TypeDateTime:
			s, ok := x.v.(string)
			if !ok || (it.Type == TypeDate && !validDate(s)) || (it.Type == TypeDateTime && !validDateTime(s)) {
				return nil, fmt.Errorf("did not give a %s", it.Type)
			}
			if it.Type == TypeDate {
				v.ValueDate = &s
			} else {
				v.ValueDateTime = &s
			}
		case TypeChoice, TypeOpenChoice:
			switch c := x.v.(type) {
			case map[string]any:
				code, _ := c["code"].(string)
				o, ok := findOption(it, code)
				if !ok || o.Code == "" {
					return nil, fmt.Errorf("gave a coding that is not one of the options")
				}
				v = o.value()
			case string:
				if o, ok := findOption(it, c); ok {
					v = o.value()
				} else if it.Type == TypeOpenChoice || it.FreeText() {
					v.ValueString = &c
				} else {
					return nil, fmt.Errorf("gave a string that is not one of the options")
				}
			default:
				return nil, fmt.Errorf("gave a %s for a choice item", fpType(x.v))
			}
		default:
			return nil, fmt.Errorf("is not supported on %s items", it.Type)
		}
		out = append(out, v)
	}
	return out, nil
}
