package forms

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
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
//
// A calculated item inside a repeating group gets a value in each instance,
// computed with that instance as %context: its QuestionnaireResponse group
// item, which is also where an expression without %resource or %context
// starts. The variables declared on the repeating group and inside it are
// worked out per instance the same way; those declared on the Questionnaire
// and at the top level see the whole response. %resource is always the
// whole response.
func (q *Questionnaire) Calculate(a Answers) (Answers, error) {
	return q.CalculateOn(a, time.Now())
}

// CalculateOn is Calculate with FHIRPath's today() giving the UTC date of
// day: transfer passes the time the patient sent the form, so an age
// worked out from a date of birth is the age on that day, however long the
// submission waited in intake.
func (q *Questionnaire) CalculateOn(a Answers, day time.Time) (Answers, error) {
	out := cloneAnswers(a)
	if len(q.calculated) == 0 {
		return out, nil
	}
	for _, it := range q.calculated {
		for _, in := range instancesOf(it.scope, out) {
			delete(in, it.LinkID)
		}
	}
	today := day.UTC().Format(time.DateOnly)
	// spent counts the FHIRPath steps of the whole call, against
	// maxCalculateSteps: instances multiply the evaluations, and an
	// expression over the whole response in each of many instances would
	// otherwise hold transfer for seconds.
	spent := 0
	var firstErr error
	fail := func(it *Item, in Answers, err error) {
		if firstErr == nil {
			firstErr = fmt.Errorf("item %q: calculatedExpression: %v", it.LinkID, err)
		}
		delete(in, it.LinkID)
	}
	for pass := 0; pass < 2; pass++ {
		firstErr = nil
		for _, it := range q.calculated {
			resource, err := q.responseJSON(out)
			if err != nil {
				return nil, err
			}
			insts, err := calcInstances(it.scope, out)
			if err != nil {
				return nil, err
			}
			for _, in := range insts {
				env := &fpEnv{q: q, vars: map[string][]fpItem{}, resource: []fpItem{{v: resource}}, today: today}
				start := maxFHIRPathSteps - min(maxFHIRPathSteps, max(0, maxCalculateSteps-spent))
				env.steps = start
				env.evalVariables(q.variables, env.resource)
				var chain []*Item
				for x := it; x != nil; x = x.parent {
					chain = append(chain, x)
				}
				for i := len(chain) - 1; i >= 0; i-- {
					x := chain[i]
					g := x
					if !g.RepeatingGroup() {
						g = x.scope
					}
					env.context = in.ctx[g]
					focus := env.context
					if focus == nil {
						focus = env.resource
					}
					env.evalVariables(x.variables, focus)
				}
				env.context = in.ctx[it.scope]
				focus := env.context
				if focus == nil {
					focus = env.resource
				}
				r, err := env.eval(it.Calculated.root, focus, focus)
				spent += env.steps - start
				if err != nil {
					fail(it, in.answers, err)
					continue
				}
				values, err := calculatedValues(it, r)
				if err != nil {
					fail(it, in.answers, err)
					continue
				}
				if len(values) == 0 {
					delete(in.answers, it.LinkID)
				} else {
					in.answers[it.LinkID] = values
				}
			}
		}
	}
	// Drop values of calculated items that do not apply, in each instance
	// by that instance's answers.
	top := newValidation(q).runFromAnswers(out, nil, nil, "")
	for _, it := range q.calculated {
		for _, rr := range runsOf(it.scope, top) {
			if rr.enabled(it) != stateYes {
				delete(rr.source, it.LinkID)
			}
		}
	}
	return out, firstErr
}

// maxCalculateSteps bounds the FHIRPath steps of one Calculate call, all
// items, instances and both passes together (one expression alone is
// bounded by maxFHIRPathSteps).
const maxCalculateSteps = 4_000_000

// evalVariables works out variables in order, each seeing those before it;
// one whose expression fails is empty.
func (e *fpEnv) evalVariables(vars []Variable, focus []fpItem) {
	for _, v := range vars {
		r, err := e.eval(v.Expr.root, focus, focus)
		if err != nil {
			r = nil
		}
		e.vars[v.Name] = r
	}
}

// cloneAnswers copies answers deeply enough that instances can be changed
// without touching the original.
func cloneAnswers(a Answers) Answers {
	out := make(Answers, len(a))
	for k, v := range a {
		v = slices.Clone(v)
		for i := range v {
			if v[i].Instance != nil {
				v[i].Instance = cloneAnswers(v[i].Instance)
			}
		}
		out[k] = v
	}
	return out
}

// instancesOf returns the answers of every instance of the repeating group
// scope (nested ones under every instance of the groups above), or the top
// level answers when scope is nil. An instance without answers is given an
// empty map, so a computed value can go into it.
func instancesOf(scope *Item, a Answers) []Answers {
	if scope == nil {
		return []Answers{a}
	}
	var out []Answers
	for _, parent := range instancesOf(scope.scope, a) {
		vals := parent[scope.LinkID]
		for i := range vals {
			if vals[i].Instance == nil {
				vals[i].Instance = Answers{}
			}
			out = append(out, vals[i].Instance)
		}
	}
	return out
}

// calcInstance is one instance a calculated item is computed in: its
// answers, and the %context of it and of each repeating group around it.
type calcInstance struct {
	answers Answers
	ctx     map[*Item][]fpItem
}

func calcInstances(scope *Item, a Answers) ([]calcInstance, error) {
	if scope == nil {
		return []calcInstance{{answers: a, ctx: map[*Item][]fpItem{}}}, nil
	}
	parents, err := calcInstances(scope.scope, a)
	if err != nil {
		return nil, err
	}
	var out []calcInstance
	for _, parent := range parents {
		vals := parent.answers[scope.LinkID]
		for i := range vals {
			if vals[i].Instance == nil {
				vals[i].Instance = Answers{}
			}
			b, err := json.Marshal(ResponseItem{LinkID: scope.LinkID, Text: scope.Text, Item: responseItems(scope.Items, vals[i].Instance)})
			if err != nil {
				return nil, err
			}
			var v any
			if err := decodeJSONNumbers(b, &v); err != nil {
				return nil, err
			}
			ctx := maps.Clone(parent.ctx)
			ctx[scope] = []fpItem{{v: v}}
			out = append(out, calcInstance{answers: vals[i].Instance, ctx: ctx})
		}
	}
	return out, nil
}

// runsOf returns the runs of every instance of the repeating group scope
// under top (top itself when scope is nil), in the order of instancesOf.
func runsOf(scope *Item, top *scopeRun) []*scopeRun {
	if scope == nil {
		return []*scopeRun{top}
	}
	var out []*scopeRun
	for _, parent := range runsOf(scope.scope, top) {
		out = append(out, parent.instances[scope]...)
	}
	return out
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
