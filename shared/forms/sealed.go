package forms

import (
	"github.com/airlockhq/airlock/shared/locale"
)

// ValidateSealed checks answers shaped as Validate returns them (as intake
// seals them) against the form again, by Validate's own rules and code:
// each answer goes through the same type, option, length, pattern, range,
// unit and attachment checks, and required, enableWhen, repeats, instances
// and min/maxOccurs are worked out on the same runs. It returns the answers
// normalised exactly as Validate returns them when the same answers are
// posted as a QuestionnaireResponse (ResponseItems, AnswersFromResponseItems,
// Validate), without building that response: transfer checks every
// submission it moves this way.
//
// It is stricter than that round trip, which drops what it has no place for:
// a key that is not a question of the scope it sits in (an unknown linkId, a
// group or display item, an item of another repeating group), an answer
// carrying FHIR nested items (Value.Item), instances on an item that has
// none, and a value[x] on a repeating group's instance are each an error
// here, never silently dropped. Validate never returns any of them.
func (q *Questionnaire) ValidateSealed(a Answers) (Answers, FieldErrors) {
	return q.validate(func(top *scopeRun) { top.decodeSealed(a) })
}

// decodeSealed is decode for answers already shaped as Answers.
func (r *scopeRun) decodeSealed(a Answers) {
	decodeScope(r, a, r.sealedInstances, r.sealedAnswerInstances, sealedAnswers)
}

// sealedAnswers is decodeAnswers for one question's Values.
func sealedAnswers(it *Item, values []Value) (out []Value, present bool, msg locale.Message) {
	switch {
	case len(values) == 0:
		return nil, false, locale.Message{}
	case len(values) > 1 && !it.Repeats:
		return nil, true, locale.New("forms.single_answer")
	case len(values) > MaxAnswersPerItem:
		return nil, true, locale.New("forms.max_answers", MaxAnswersPerItem)
	}
	for n, v := range values {
		val, empty, msg := sealedAnswer(it, v)
		if !msg.IsZero() {
			if n > 0 {
				msg = locale.New("forms.answer_n", n+1, msg)
			}
			return nil, true, msg
		}
		if !empty {
			out = append(out, val)
		}
	}
	if len(out) == 0 {
		return nil, false, locale.Message{}
	}
	return out, true, locale.Message{}
}

// sealedAnswer checks one answer as decodeAnswer checks it when posted:
// turned into the plain JSON value a client sends for the item
// (inputAnswer, as AnswersFromResponseItems does) and decoded from that.
func sealedAnswer(it *Item, v Value) (val Value, empty bool, msg locale.Message) {
	if v.Item != nil || v.Instance != nil {
		return Value{}, false, typeMessage(it)
	}
	raw, err := inputAnswer(it, v)
	if err != nil {
		return Value{}, false, typeMessage(it)
	}
	return decodeAnswer(it, raw)
}

// sealedInstances is decodeInstances for a repeating group's Values, one
// instance each.
func (r *scopeRun) sealedInstances(g *Item, values []Value) {
	fail := func(msg locale.Message) {
		r.messages[g] = msg
		r.failed[g] = true
		r.present[g] = true
	}
	if len(values) > MaxAnswersPerItem {
		fail(locale.New("forms.group.max_instances", MaxAnswersPerItem))
		return
	}
	if !r.v.spend(len(values)) {
		fail(locale.New("forms.group.max_instances", MaxInstances))
		return
	}
	for i, v := range values {
		if v.setFields() != 0 || v.Item != nil {
			fail(locale.New("forms.group.instances"))
			return
		}
		child := r.v.newRun(g, r, InstanceField(r.prefix, g.LinkID, i+1))
		r.instances[g] = append(r.instances[g], child)
		child.decodeSealed(v.Instance)
		if child.anyPresent() {
			r.present[g] = true
		}
	}
}

// sealedAnswerInstances is decodeAnswerInstances for the Values of a
// repeating question with questions under it: each answer is an instance,
// its Instance the answers under it.
func (r *scopeRun) sealedAnswerInstances(q *Item, values []Value) {
	fail := func(msg locale.Message) {
		r.messages[q] = msg
		r.failed[q] = true
		r.present[q] = true
		r.instances[q] = nil
		delete(r.answers, q.LinkID)
	}
	if len(values) > MaxAnswersPerItem {
		fail(locale.New("forms.max_answers", MaxAnswersPerItem))
		return
	}
	if !r.v.spend(len(values)) {
		fail(locale.New("forms.group.max_instances", MaxInstances))
		return
	}
	var out []Value
	for i, v := range values {
		if v.Item != nil {
			fail(typeMessage(q))
			return
		}
		child := r.v.newRun(q, r, InstanceField(r.prefix, q.LinkID, i+1))
		child.decodeSealed(v.Instance)
		answer := v
		answer.Instance = nil
		val, empty, msg := sealedAnswer(q, answer)
		var ok bool
		if out, ok = r.keepInstanceAnswer(q, i, len(values), val, empty, msg, child, out, fail); !ok {
			return
		}
	}
	r.storeInstanceAnswers(q, out, fail)
}
