package forms

import (
	"bytes"
	"crypto/sha1" // FHIR R4 defines Attachment.hash as SHA-1; it is checked, not trusted
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"math"
	"mime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/airlockhq/airlock/shared/locale"
)

// Answers are validated, normalised answers keyed by linkId; every slice has
// at least one element and only answered items appear. They are what gets
// sealed at intake and stored at the clinic.
type Answers map[string][]Value

// FieldError is one problem with a submission, addressed to the field that
// has it so a form can show it next to that field. Message is a catalogue
// key with its parameters (shared/locale), rendered in the reader's
// language; it never carries the submitted value: errors are logged and
// echoed, answers must not be.
type FieldError struct {
	Field   string // the item's linkId (within an instance, e.g. "meds[2]/dose")
	Message locale.Message
}

// NotApplicable reports whether the error is an answer to a question that
// does not apply (MsgNotApplicable or MsgNotApplicableParent).
func (fe FieldError) NotApplicable() bool {
	return fe.Message.Key == MsgNotApplicable || fe.Message.Key == MsgNotApplicableParent
}

// Errorf returns the field error with the given catalogue key and parameters.
func Errorf(field, key string, args ...any) FieldError {
	return FieldError{Field: field, Message: locale.New(key, args...)}
}

// FieldErrors lists every problem with a submission, in document order, so
// a patient can fix them all in one round trip.
type FieldErrors []FieldError

// Error joins the field errors into one line, safe to log.
func (e FieldErrors) Error() string {
	var b strings.Builder
	b.WriteString("invalid answers: ")
	for i, fe := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Field)
		b.WriteString(": ")
		b.WriteString(fe.Message.String())
	}
	return b.String()
}

// ForField returns the key of the first message for a field, or "".
func (e FieldErrors) ForField(field string) string {
	return e.MessageFor(field).Key
}

// MessageFor returns the first message for a field (zero when none), so an
// HTML form can print it next to that field.
func (e FieldErrors) MessageFor(field string) locale.Message {
	for _, fe := range e {
		if fe.Field == field {
			return fe.Message
		}
	}
	return locale.Message{}
}

// Keys of the messages Validate returns that callers may compare against
// (texts in shared/locale/messages). None includes what was submitted.
const (
	MsgRequired = "forms.required"
	// MsgNotApplicable: an answer to a question that does not apply. Its
	// parameter says when the question applies (a Message).
	MsgNotApplicable = "forms.not_applicable"
	// MsgNotApplicableParent: an answer under a question left unanswered;
	// the parameter is that question's label (a Localizer).
	MsgNotApplicableParent = "forms.not_applicable_parent"
	MsgUnknownField        = "forms.unknown_field"
	MsgNotAnswerable       = "forms.not_answerable"
	// MsgMustBeTrue rejects false for an item marked MustBeTrueExtensionURL.
	MsgMustBeTrue = "forms.must_be_true"
	// MsgNotInThisGroup is for an answer given where its item is not: a
	// top-level question inside an instance of a repeating group.
	MsgNotInThisGroup = "forms.not_in_this_group"
	// MsgInRepeatingGroup (with the group's label, a Localizer) is for an
	// answer to an item of a repeating group given outside the group's
	// instances.
	MsgInRepeatingGroup = "forms.in_repeating_group"
)

// maxUnknownFields bounds the errors reported for unknown keys, so a body
// stuffed with junk keys does not produce an equally large error response.
const maxUnknownFields = 20

// maxNumberLength bounds the digits of a number answer; no real answer
// needs more, and it keeps stored decimals small.
const maxNumberLength = 64

// enabledState is the outcome of enableWhen: yes, no, or unknown when it
// depends on an answer that failed validation (then neither "is required"
// nor "is not applicable" can be said with confidence).
type enabledState int8

const (
	stateUnset enabledState = iota
	stateYes
	stateNo
	stateUnknown
)

// validation is one run of Validate: the form, and its items by scope.
type validation struct {
	q       *Questionnaire
	inScope map[*Item][]*Item // by scope (nil: top level): every item in it, document order
	// instances counts the instances of the whole submission, against
	// MaxInstances: each is checked on its own, so nested groups must not
	// multiply into millions of them from a few megabytes of JSON.
	instances int
}

// MaxInstances bounds the instances of repeating groups (and answers of
// repeating questions with questions under them) in one submission, nested
// ones included.
const MaxInstances = MaxAnswersPerItem

// spend counts n more instances and reports whether the submission is
// still within MaxInstances.
func (v *validation) spend(n int) bool {
	v.instances += n
	return v.instances <= MaxInstances
}

// scopeRun checks the answers of one scope: the top level of a submission,
// or one instance of a repeating group. Items are tracked by pointer, so
// each instance has its own state.
type scopeRun struct {
	v         *validation
	scope     *Item     // nil at the top level
	parent    *scopeRun // the run holding the instance; nil at the top level
	prefix    string    // field names: "" at the top, "meds[2]/" in an instance
	answers   map[string][]Value
	present   map[*Item]bool // something was answered
	failed    map[*Item]bool // the answer itself is invalid
	messages  map[*Item]locale.Message
	state     map[*Item]enabledState
	instances map[*Item][]*scopeRun // by repeating group: one run per instance given
	stray     []FieldError          // keys that are unknown or belong elsewhere
	source    Answers               // runFromAnswers: the answers the run was made from
}

func (v *validation) newRun(scope *Item, parent *scopeRun, prefix string) *scopeRun {
	// The maps that take an entry per answered (or checked) item are made
	// at the scope's size, so they are not regrown item by item; the hint
	// is capped so a form of thousands of items costs a short submission
	// no large empty maps.
	n := min(len(v.inScope[scope]), 64)
	return &scopeRun{
		v: v, scope: scope, parent: parent, prefix: prefix,
		answers:   make(map[string][]Value, n),
		present:   make(map[*Item]bool, n),
		failed:    make(map[*Item]bool),
		messages:  make(map[*Item]locale.Message),
		state:     make(map[*Item]enabledState, n),
		instances: make(map[*Item][]*scopeRun),
	}
}

func newValidation(q *Questionnaire) *validation {
	if q.inScope == nil {
		q.inScope = itemsByScope(q.all) // only for a Questionnaire not made by Parse
	}
	return &validation{q: q, inScope: q.inScope}
}

// itemsByScope groups items by their scope (nil: the top level), keeping
// their order.
func itemsByScope(all []*Item) map[*Item][]*Item {
	m := make(map[*Item][]*Item)
	for _, it := range all {
		m[it.scope] = append(m[it.scope], it)
	}
	return m
}

// Validate checks raw JSON answers (linkId -> JSON value) against the form
// and returns them normalised, or every problem found. Each value is a JSON
// string, number, boolean, a FHIR Attachment object for attachment items,
// or an array of these for a repeating item; null, an empty string and an
// empty array count as unanswered. A repeating group takes an array of
// objects, one per instance, each mapping the linkIds of the items within
// the instance to their answers in the same way (a single object is one
// instance; an empty object an instance left blank, which is dropped).
//
// Rules, by item type: string and text take a string, trimmed, at most
// EffectiveMaxLength characters, without control characters (text allows
// newlines and tabs, and CRLF becomes LF); integer a JSON integer in FHIR's
// 32-bit range; decimal a JSON number; both within minValue/maxValue; date
// a real calendar date as YYYY-MM-DD; dateTime RFC 3339 with a zone; time
// HH:MM or HH:MM:SS (stored as HH:MM:SS); url an absolute http or https URL
// with a host and no user information; boolean true or false; choice the Key of an option (stored as its Coding, or as
// valueString for string options); open-choice an option key or free text;
// attachment an object {contentType, data (base64), title} with optional
// size and hash that must match the data. Required items must be answered
// when enabled, within each instance of a repeating group; disabled items
// must not be answered. enableWhen inside an instance looks at the answers
// of the same instance first, as FHIR defines (ancestor axis, then the
// nearest preceding, then following, occurrence). An error's Field is the
// linkId, within an instance prefixed by the instance, e.g. "meds[2]/dose"
// (instances numbered from 1 in the order given). Answers is nil whenever
// FieldErrors is not empty.
func (q *Questionnaire) Validate(raw map[string]json.RawMessage) (Answers, FieldErrors) {
	return q.validate(func(top *scopeRun) { top.decode(raw) })
}

// validate runs one validation of the whole form, its answers read by
// decode into the top scope: Validate and ValidateSealed differ only there.
func (q *Questionnaire) validate(decode func(top *scopeRun)) (Answers, FieldErrors) {
	v := newValidation(q)
	top := v.newRun(nil, nil, "")
	decode(top)
	top.check()
	var errs FieldErrors
	top.collect(&errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return top.output(), nil
}

// decode reads the raw answers of the run's scope, and those of every
// instance of the repeating groups in it.
func (r *scopeRun) decode(raw map[string]json.RawMessage) {
	decodeScope(r, raw, r.decodeInstances, r.decodeAnswerInstances, decodeAnswers)
}

// decodeScope sends each member of r's scope to the decoder for its kind:
// a repeating group's instances, a question with questions under its
// answers, or plain answers; items the patient does not answer take the
// form's value. Validate (raw JSON) and ValidateSealed (Answers) share it.
func decodeScope[V any](r *scopeRun, in map[string]V, groups, answerInstances func(*Item, V),
	answers func(*Item, V) ([]Value, bool, locale.Message)) {
	r.strayKeys(maps.Keys(in))
	for _, it := range r.members() {
		v, ok := in[it.LinkID]
		if it.RepeatingGroup() {
			if ok {
				groups(it, v)
			}
			continue
		}
		if !it.PatientAnswers() {
			r.notTyped(it)
			continue
		}
		if !ok {
			continue
		}
		if it.HasInstances() {
			answerInstances(it, v)
			continue
		}
		values, present, msg := answers(it, v)
		r.setAnswers(it, values, present, msg)
	}
}

// setAnswers records what decoding one question's answers gave.
func (r *scopeRun) setAnswers(it *Item, values []Value, present bool, msg locale.Message) {
	r.present[it] = present
	switch {
	case !msg.IsZero():
		r.messages[it] = msg
		r.failed[it] = true
	case present:
		r.answers[it.LinkID] = values
	}
}

// notTyped sets the answer of an item the patient does not answer.
// Read-only, hidden and calculated items are never typed by the patient: a
// submitted value is ignored (FHIR clients send the values they displayed),
// the form's initial value stands, and transfer computes calculated ones.
// It is not counted as present: an instance or group holding only such
// values was left blank by the patient, so it is neither "given" nor an
// answer that must stay empty.
func (r *scopeRun) notTyped(it *Item) {
	if len(it.Initial) > 0 && it.Calculated == nil {
		r.answers[it.LinkID] = slices.Clone(it.Initial)
	}
}

// strayKeys notes the submitted keys that are not answers in the run's
// scope: unknown linkIds, items of another scope, and items that take no
// answer.
func (r *scopeRun) strayKeys(keys iter.Seq[string]) {
	q := r.v.q
	var unknown, elsewhere []string
	for key := range keys {
		it := q.byLinkID[key]
		switch {
		case it == nil:
			unknown = append(unknown, key)
		case it.scope != r.scope:
			elsewhere = append(elsewhere, key)
		case !it.Answerable() && !it.RepeatingGroup():
			r.messages[it] = locale.New(MsgNotAnswerable)
		}
	}
	slices.Sort(unknown)
	for i, key := range unknown {
		if i == maxUnknownFields {
			r.stray = append(r.stray, Errorf(strings.TrimSuffix(r.prefix, "/"), "forms.unknown_fields_more", maxUnknownFields))
			break
		}
		r.stray = append(r.stray, Errorf(r.prefix+displayKey(key), MsgUnknownField))
	}
	slices.Sort(elsewhere)
	for _, key := range elsewhere {
		msg := locale.New(MsgNotInThisGroup)
		if it := q.byLinkID[key]; it.scope != nil && it.scope != r.scope && isAncestorScope(r.scope, it.scope) {
			msg = locale.New(MsgInRepeatingGroup, ItemLabel{q.outermostBelow(r.scope, it)})
		}
		r.stray = append(r.stray, FieldError{Field: r.prefix + key, Message: msg})
	}
}

// members are the items answered in the run's scope.
func (r *scopeRun) members() []*Item {
	if r.scope == nil {
		return r.v.q.members
	}
	return r.scope.members
}

// isAncestorScope reports whether scope outer (nil: the top level) holds
// scope inner, or is it.
func isAncestorScope(outer, inner *Item) bool {
	for s := inner; s != nil; s = s.scope {
		if s == outer {
			return true
		}
	}
	return outer == nil
}

// outermostBelow is the repeating group directly within scope (nil: the
// top level) that holds it.
func (q *Questionnaire) outermostBelow(scope, it *Item) *Item {
	g := it.scope
	for g != nil && g.scope != scope {
		g = g.scope
	}
	if g == nil {
		return it
	}
	return g
}

// decodeInstances reads the instances of a repeating group: an array of
// objects (or one object), each checked as a scope of its own.
func (r *scopeRun) decodeInstances(g *Item, raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	bad := locale.New("forms.group.instances")
	fail := func(msg locale.Message) {
		r.messages[g] = msg
		r.failed[g] = true
		r.present[g] = true
	}
	var elems []json.RawMessage
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return
	case raw[0] == '{':
		elems = []json.RawMessage{raw}
	case raw[0] == '[':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			fail(bad)
			return
		}
		for n := 0; dec.More(); n++ {
			if n == MaxAnswersPerItem {
				fail(locale.New("forms.group.max_instances", MaxAnswersPerItem))
				return
			}
			var elem json.RawMessage
			if err := dec.Decode(&elem); err != nil {
				fail(bad)
				return
			}
			elems = append(elems, bytes.TrimSpace(elem))
		}
		if _, err := dec.Token(); err != nil || dec.InputOffset() != int64(len(raw)) {
			fail(bad)
			return
		}
	default:
		fail(bad)
		return
	}
	if !r.v.spend(len(elems)) {
		fail(locale.New("forms.group.max_instances", MaxInstances))
		return
	}
	for i, elem := range elems {
		child := r.v.newRun(g, r, fmt.Sprintf("%s%s[%d]/", r.prefix, g.LinkID, i+1))
		r.instances[g] = append(r.instances[g], child)
		if string(elem) == "null" {
			continue // a blank instance, kept so the numbering holds
		}
		var m map[string]json.RawMessage
		if len(elem) == 0 || elem[0] != '{' || json.Unmarshal(elem, &m) != nil {
			fail(bad)
			return
		}
		child.decode(m)
		if child.anyPresent() {
			r.present[g] = true
		}
	}
}

// anyPresent reports whether anything was answered (or attempted) in the
// run, its instances included.
func (r *scopeRun) anyPresent() bool {
	for _, p := range r.present {
		if p {
			return true
		}
	}
	return len(r.stray) > 0
}

// given is how many instances of a repeating group hold an answer.
func (r *scopeRun) given(g *Item) int {
	n := 0
	for _, c := range r.instances[g] {
		if c.anyPresent() {
			n++
		}
	}
	return n
}

// check works out each item's message in the run and its instances.
func (r *scopeRun) check() {
	for _, it := range r.v.inScope[r.scope] {
		if r.messages[it].Key == MsgNotAnswerable {
			continue
		}
		st := r.enabled(it)
		if !it.PatientAnswers() && it.Answerable() {
			if st != stateYes {
				delete(r.answers, it.LinkID)
			}
			continue
		}
		switch {
		case it.Type == TypeDisplay:
		case it.RepeatingGroup():
			n := r.given(it)
			switch {
			case r.failed[it]:
			case st == stateNo && n > 0:
				r.messages[it] = r.notApplicable(it)
			case st == stateYes && (it.Required || it.MinOccurs > 0) && n == 0:
				r.messages[it] = locale.New(MsgRequired)
			case st == stateYes && it.MinOccurs > 1 && n < it.MinOccurs:
				r.messages[it] = locale.New("forms.group.min_instances", it.MinOccurs)
			case it.MaxOccurs > 0 && n > it.MaxOccurs:
				r.messages[it] = locale.New("forms.group.max_instances", it.MaxOccurs)
			}
			if st != stateNo {
				for _, c := range r.instances[it] {
					if c.anyPresent() {
						c.check()
					}
				}
			}
		case it.Type == TypeGroup:
			if it.Required && st == stateYes && !r.anyAnswered(it) {
				r.messages[it] = locale.New(MsgRequired)
			}
		case st == stateNo && r.present[it]:
			// Say this rather than any type error: the answer should not
			// be there at all.
			r.messages[it] = r.notApplicable(it)
		case st == stateYes && (it.Required || it.MinOccurs > 0) && !r.present[it]:
			r.messages[it] = locale.New(MsgRequired)
		case st == stateYes && r.messages[it].IsZero() && it.MinOccurs > 1 && len(r.answers[it.LinkID]) < it.MinOccurs:
			r.messages[it] = locale.New("forms.min_answers", it.MinOccurs)
		case r.messages[it].IsZero() && it.MaxOccurs > 0 && len(r.answers[it.LinkID]) > it.MaxOccurs:
			r.messages[it] = locale.New("forms.max_answers", it.MaxOccurs)
		}
		if it.Answerable() && it.HasInstances() && st != stateNo {
			// The questions under each answer of a repeating question:
			// every answer given is an instance, answered under or not.
			for _, c := range r.instances[it] {
				c.check()
			}
		}
	}
}

// decodeAnswerInstances reads the answers of a repeating question with
// questions under it: an array whose elements are an answer, or
// {"answer": answer, "item": {linkId: answer, ...}} for an answer with the
// answers to the questions under it (one instance per answer).
func (r *scopeRun) decodeAnswerInstances(q *Item, raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	fail := func(msg locale.Message) {
		r.messages[q] = msg
		r.failed[q] = true
		r.present[q] = true
		r.instances[q] = nil
		delete(r.answers, q.LinkID)
	}
	var elems []json.RawMessage
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return
	case raw[0] == '[':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			fail(typeMessage(q))
			return
		}
		for n := 0; dec.More(); n++ {
			if n == MaxAnswersPerItem {
				fail(locale.New("forms.max_answers", MaxAnswersPerItem))
				return
			}
			var elem json.RawMessage
			if err := dec.Decode(&elem); err != nil {
				fail(typeMessage(q))
				return
			}
			elems = append(elems, bytes.TrimSpace(elem))
		}
		if _, err := dec.Token(); err != nil || dec.InputOffset() != int64(len(raw)) {
			fail(typeMessage(q))
			return
		}
	default:
		elems = []json.RawMessage{raw}
	}
	if !r.v.spend(len(elems)) {
		fail(locale.New("forms.group.max_instances", MaxInstances))
		return
	}
	var values []Value
	for i, elem := range elems {
		ans, items := elem, json.RawMessage(nil)
		if len(elem) > 0 && elem[0] == '{' {
			var w map[string]json.RawMessage
			if json.Unmarshal(elem, &w) == nil {
				a, hasAnswer := w["answer"]
				_, hasItem := w["item"]
				switch {
				case hasAnswer:
					ans, items = bytes.TrimSpace(a), bytes.TrimSpace(w["item"])
					if len(w) > 2 || len(w) == 2 && !hasItem {
						fail(locale.New("forms.answer_with_items"))
						return
					}
				case hasItem:
					fail(locale.New("forms.answer_items_need_answer", i+1))
					return
				}
			}
		}
		child := r.v.newRun(q, r, InstanceField(r.prefix, q.LinkID, i+1))
		if len(items) > 0 && string(items) != "null" {
			var m map[string]json.RawMessage
			if items[0] != '{' || json.Unmarshal(items, &m) != nil {
				fail(locale.New("forms.answer_with_items"))
				return
			}
			child.decode(m)
		}
		var val Value
		var msg locale.Message
		empty := len(ans) == 0 || string(ans) == "null"
		if !empty {
			val, empty, msg = decodeAnswer(q, ans)
		}
		var ok bool
		if values, ok = r.keepInstanceAnswer(q, i, len(elems), val, empty, msg, child, values, fail); !ok {
			return
		}
	}
	r.storeInstanceAnswers(q, values, fail)
}

// keepInstanceAnswer takes answer i (of n) of a repeating question with
// questions under it, decoded as val (or empty, or refused with msg), and
// its instance child: it appends the answer to out, skips an empty one
// whose instance is empty too, or fails. Both ways in (raw JSON here, sealed
// Values in ValidateSealed) end each answer with it.
func (r *scopeRun) keepInstanceAnswer(q *Item, i, n int, val Value, empty bool, msg locale.Message, child *scopeRun,
	out []Value, fail func(locale.Message)) ([]Value, bool) {
	if !msg.IsZero() {
		if n > 1 {
			msg = locale.New("forms.answer_n", i+1, msg)
		}
		fail(msg)
		return out, false
	}
	if empty {
		if child.anyPresent() {
			fail(locale.New("forms.answer_items_need_answer", i+1))
			return out, false
		}
		return out, true
	}
	r.instances[q] = append(r.instances[q], child)
	return append(out, val), true
}

// storeInstanceAnswers records the answers keepInstanceAnswer kept.
func (r *scopeRun) storeInstanceAnswers(q *Item, out []Value, fail func(locale.Message)) {
	if len(out) > 1 && !q.Repeats {
		fail(locale.New("forms.single_answer"))
		return
	}
	if len(out) > 0 {
		r.present[q] = true
		r.answers[q.LinkID] = out
	}
}

// collect appends the run's errors in document order, each instance's
// right after its group's own.
func (r *scopeRun) collect(errs *FieldErrors) {
	for _, it := range r.v.inScope[r.scope] {
		if msg := r.messages[it]; !msg.IsZero() {
			*errs = append(*errs, FieldError{Field: r.prefix + it.LinkID, Message: msg})
		}
		if it.HasInstances() && r.messages[it].Key != MsgNotApplicable && r.messages[it].Key != MsgNotApplicableParent {
			for _, c := range r.instances[it] {
				c.collect(errs)
			}
		}
	}
	*errs = append(*errs, r.stray...)
}

// output is the run's valid answers, each repeating group's answered
// instances as Values with Instance set.
func (r *scopeRun) output() Answers {
	out := make(Answers, len(r.answers))
	for _, it := range r.members() {
		if it.RepeatingGroup() {
			var insts []Value
			for _, c := range r.instances[it] {
				// An instance the patient left blank is dropped, even
				// when read-only items in it hold initial values.
				if !c.anyPresent() {
					continue
				}
				if a := c.output(); len(a) > 0 {
					insts = append(insts, Value{Instance: a})
				}
			}
			if len(insts) > 0 {
				out[it.LinkID] = insts
			}
			continue
		}
		if values, ok := r.answers[it.LinkID]; ok && len(values) > 0 {
			if it.HasInstances() {
				// Each answer keeps the answers under it.
				values = slices.Clone(values)
				for i, c := range r.instances[it] {
					if a := c.output(); len(a) > 0 && i < len(values) {
						values[i].Instance = a
					}
				}
			}
			out[it.LinkID] = values
		}
	}
	return out
}

// runFromAnswers is a run over answers already validated (Calculate works
// out enableWhen on them).
func (v *validation) runFromAnswers(a Answers, scope *Item, parent *scopeRun, prefix string) *scopeRun {
	r := v.newRun(scope, parent, prefix)
	r.source = a
	for _, it := range r.members() {
		values := a[it.LinkID]
		if it.RepeatingGroup() {
			for i, inst := range values {
				c := v.runFromAnswers(inst.Instance, it, r, fmt.Sprintf("%s%s[%d]/", prefix, it.LinkID, i+1))
				r.instances[it] = append(r.instances[it], c)
				r.present[it] = true
			}
			continue
		}
		if len(values) > 0 {
			r.answers[it.LinkID] = values
			r.present[it] = true
			if it.HasInstances() {
				for i, val := range values {
					c := v.runFromAnswers(val.Instance, it, r, InstanceField(prefix, it.LinkID, i+1))
					r.instances[it] = append(r.instances[it], c)
				}
			}
		}
	}
	return r
}

// displayKey returns an unknown key fit to appear in an error, or a
// placeholder when the key is long or odd enough that it might be a value
// pasted in the wrong place.
func displayKey(key string) string {
	if len(key) > 64 {
		return "(unknown field)"
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.:/", c) >= 0) {
			return "(unknown field)"
		}
	}
	return key
}

// enabled works out whether an item applies in this run, given the
// submitted answers. Parse has ruled out cycles, so the recursion ends.
func (r *scopeRun) enabled(it *Item) enabledState {
	if st, ok := r.state[it]; ok {
		return st
	}
	if it.scope != r.scope {
		// The repeating group of an instance lives in the run above.
		if r.parent != nil {
			return r.parent.enabled(it)
		}
		return stateNo
	}
	st := stateYes
	if p := it.parent; p != nil {
		pr := r
		if p == r.scope {
			pr = r.parent
		}
		st = pr.enabled(p)
		if st == stateYes && p.Answerable() {
			// An item under a question belongs to the question's answer:
			// it applies only once the question is answered.
			switch {
			case pr.failed[p]:
				st = stateUnknown
			case len(pr.answers[p.LinkID]) == 0:
				st = stateNo
			}
		}
	}
	if st != stateNo && len(it.EnableWhen) > 0 {
		switch own := r.conditions(it); {
		case own == stateNo:
			st = stateNo
		case own == stateUnknown:
			st = stateUnknown
		}
	}
	r.state[it] = st
	return st
}

func (r *scopeRun) conditions(it *Item) enabledState {
	anyOf := it.EnableBehavior == "any"
	unknown := false
	for _, ew := range it.EnableWhen {
		switch r.condition(it, ew) {
		case stateYes:
			if anyOf {
				return stateYes
			}
		case stateNo:
			if !anyOf {
				return stateNo
			}
		default:
			unknown = true
		}
	}
	switch {
	case unknown:
		return stateUnknown
	case anyOf:
		return stateNo
	}
	return stateYes
}

func (r *scopeRun) condition(it *Item, ew EnableWhen) enabledState {
	target := r.v.q.byLinkID[ew.Question]
	if target == nil {
		return stateNo // Parse guarantees this does not happen
	}
	var answers []Value
	if tr := r.runFor(it, target); tr != nil {
		switch tr.enabled(target) {
		case stateUnknown:
			return stateUnknown
		case stateYes:
			if tr.failed[target] {
				return stateUnknown
			}
			answers = tr.answers[target.LinkID]
		}
	}
	// A disabled (or absent) question counts as unanswered.
	if conditionHolds(ew, answers) {
		return stateYes
	}
	return stateNo
}

// runFor finds the occurrence of target that a condition of item it (in
// run r) refers to, as FHIR defines it: the nearest one on the ancestor
// axis (the same instance, or one that holds it), else, for a question in
// a repeating group that does not hold the item, the nearest preceding
// instance, else the first following one. nil: no instance holds one.
func (r *scopeRun) runFor(it, target *Item) *scopeRun {
	a := r
	for a != nil && !isAncestorScope(a.scope, target.scope) {
		a = a.parent
	}
	if a == nil {
		return nil
	}
	var chain []*Item // repeating groups between a's scope and target's, outermost first
	for g := target.scope; g != a.scope; g = g.scope {
		chain = append([]*Item{g}, chain...)
	}
	for _, g := range chain {
		var given []*scopeRun
		for _, c := range a.instances[g] {
			if c.anyPresent() {
				given = append(given, c)
			}
		}
		if len(given) == 0 {
			return nil
		}
		if g.index < it.index {
			a = given[len(given)-1]
		} else {
			a = given[0]
		}
	}
	return a
}

// anyAnswered reports whether a question below the group was answered (or
// attempted: a failed answer has its own error already).
func (r *scopeRun) anyAnswered(group *Item) bool {
	for _, child := range group.Items {
		if (child.Answerable() || child.RepeatingGroup()) && r.present[child] {
			return true
		}
		if len(child.Items) > 0 && !child.RepeatingGroup() && r.anyAnswered(child) {
			return true
		}
	}
	return false
}

// decodeAnswers turns one raw value into answers. present reports whether
// anything was answered; msg is the first problem, if any.
func decodeAnswers(it *Item, raw json.RawMessage) (values []Value, present bool, msg locale.Message) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, locale.Message{}
	}
	if raw[0] != '[' {
		val, empty, msg := decodeAnswer(it, raw)
		if !msg.IsZero() {
			return nil, true, msg
		}
		if empty {
			return nil, false, locale.Message{}
		}
		return []Value{val}, true, locale.Message{}
	}
	if !it.Repeats {
		return nil, true, locale.New("forms.single_answer")
	}
	// Walk the array with a decoder so an oversized one is refused after
	// MaxAnswersPerItem elements rather than decoded in full.
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, true, typeMessage(it)
	}
	for n := 0; dec.More(); n++ {
		if n == MaxAnswersPerItem {
			return nil, true, locale.New("forms.max_answers", MaxAnswersPerItem)
		}
		var elem json.RawMessage
		if err := dec.Decode(&elem); err != nil {
			return nil, true, typeMessage(it)
		}
		elem = bytes.TrimSpace(elem)
		if len(elem) > 0 && elem[0] == '[' {
			return nil, true, typeMessage(it)
		}
		if string(elem) == "null" {
			continue
		}
		val, empty, msg := decodeAnswer(it, elem)
		if !msg.IsZero() {
			if n > 0 {
				msg = locale.New("forms.answer_n", n+1, msg)
			}
			return nil, true, msg
		}
		if !empty {
			values = append(values, val)
		}
	}
	if _, err := dec.Token(); err != nil || dec.InputOffset() != int64(len(raw)) {
		return nil, true, typeMessage(it)
	}
	if len(values) == 0 {
		return nil, false, locale.Message{}
	}
	return values, true, locale.Message{}
}

// typeMessage says what kind of answer the item takes.
func typeMessage(it *Item) locale.Message {
	switch it.Type {
	case TypeString, TypeText:
		return locale.New("forms.type.text")
	case TypeInteger:
		return locale.New("forms.type.integer")
	case TypeDecimal, TypeQuantity:
		return locale.New("forms.type.decimal")
	case TypeDate:
		return locale.New("forms.type.date")
	case TypeDateTime:
		return locale.New("forms.type.datetime")
	case TypeTime:
		return locale.New("forms.type.time")
	case TypeURL:
		return locale.New("forms.type.url")
	case TypeBoolean:
		return locale.New("forms.type.boolean")
	case TypeReference:
		if it.FreeReference() {
			return locale.New("forms.type.reference")
		}
		return locale.New("forms.type.choice")
	case TypeChoice:
		return locale.New("forms.type.choice")
	case TypeOpenChoice:
		return locale.New("forms.type.open_choice")
	case TypeAttachment:
		return locale.New("forms.type.attachment")
	}
	return locale.New("forms.type.other")
}

// plainJSONString returns the text of a JSON string that has no escapes,
// no control characters and only valid UTF-8, which is what json.Unmarshal
// would return for it, without its reflection and its second scan; false for
// anything else (json.Unmarshal then decides).
func plainJSONString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c < ' ' || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// escapedJSONString is plainJSONString for a string with escapes: those
// json.Marshal and browsers write (\" \\ \/ \b \f \n \r \t, and \uXXXX
// outside the UTF-16 surrogates, as in \u0026 for "&"), in valid UTF-8 with
// no control characters. It returns what json.Unmarshal would, without its
// reflection and its second scan; false for anything else (a surrogate
// pair, a bad escape, a stray quote...), which json.Unmarshal then decides.
func escapedJSONString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if !utf8.Valid(inner) {
		return "", false
	}
	out := make([]byte, 0, len(inner))
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c < ' ' || c == '"' {
			return "", false
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i == len(inner) {
			return "", false // the closing quote was escaped
		}
		switch inner[i] {
		case '"', '\\', '/':
			out = append(out, inner[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+5 > len(inner) {
				return "", false
			}
			r, ok := hex4(inner[i+1 : i+5])
			if !ok || utf16.IsSurrogate(r) {
				return "", false
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return "", false
		}
	}
	return string(out), true
}

// hex4 reads the four hexadecimal digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// decodeAnswer checks one JSON value. An empty (or blank) string is "no
// answer" for every type, which is what an HTML form sends for an untouched
// field.
func decodeAnswer(it *Item, raw []byte) (val Value, empty bool, msg locale.Message) {
	bad := typeMessage(it)
	if len(raw) == 0 {
		return val, false, bad
	}
	var s string
	isString := raw[0] == '"'
	if isString {
		var plain bool
		if s, plain = plainJSONString(raw); !plain {
			if s, plain = escapedJSONString(raw); !plain {
				if err := json.Unmarshal(raw, &s); err != nil {
					return val, false, bad
				}
			}
		}
		if it.Type == TypeText {
			// Browsers submit textarea line breaks as CRLF.
			s = strings.ReplaceAll(s, "\r\n", "\n")
			s = strings.ReplaceAll(s, "\r", "\n")
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return val, true, locale.Message{}
		}
	}

	if len(it.Options) > 0 && it.Type != TypeChoice && it.Type != TypeOpenChoice {
		// answerOption on a string, integer or date item: only the options.
		key := s
		if !isString {
			key = string(raw)
		}
		if t, ok := normalTime(key); ok && it.Type == TypeTime {
			key = t // "14:30" picks the option 14:30:00
		}
		o, ok := findOption(it, key)
		if !ok {
			return val, false, locale.New("forms.type.choice")
		}
		return o.value(), false, locale.Message{}
	}

	switch it.Type {
	case TypeString, TypeText:
		if !isString {
			return val, false, bad
		}
		if msg := checkText(it, s); !msg.IsZero() {
			return val, false, msg
		}
		val.ValueString = &s

	case TypeInteger:
		tok := string(raw)
		if isString || !isJSONNumber(tok) || strings.ContainsAny(tok, ".eE") {
			return val, false, bad
		}
		n, err := strconv.ParseInt(tok, 10, 64)
		// FHIR integers are 32-bit; a larger one would make invalid FHIR.
		if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
			return val, false, locale.New("forms.out_of_range")
		}
		if msg := checkRange(it, float64(n)); !msg.IsZero() {
			return val, false, msg
		}
		val.ValueInteger = &n

	case TypeDecimal:
		tok := string(raw)
		if isString || !isJSONNumber(tok) {
			return val, false, bad
		}
		if len(tok) > maxNumberLength {
			return val, false, locale.New("forms.max_digits", maxNumberLength)
		}
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return val, false, locale.New("forms.out_of_range")
		}
		if msg := checkRange(it, f); !msg.IsZero() {
			return val, false, msg
		}
		if msg := checkDecimalPlaces(it, tok); !msg.IsZero() {
			return val, false, msg
		}
		// Keep the submitted digits: FHIR decimals preserve precision.
		num := json.Number(tok)
		val.ValueDecimal = &num

	case TypeQuantity:
		q, msg := decodeQuantity(it, raw, isString)
		if !msg.IsZero() {
			return val, false, msg
		}
		if q == nil {
			return val, true, locale.Message{}
		}
		val.ValueQuantity = q

	case TypeDate:
		if !isString || !validDate(s) {
			return val, false, bad
		}
		if it.MinDate != "" && s < it.MinDate {
			return val, false, locale.New("forms.min_date", it.MinDate)
		}
		if it.MaxDate != "" && s > it.MaxDate {
			return val, false, locale.New("forms.max_date", it.MaxDate)
		}
		val.ValueDate = &s

	case TypeDateTime:
		if !isString || !validDateTime(s) {
			return val, false, bad
		}
		val.ValueDateTime = &s

	case TypeTime:
		t, ok := normalTime(s)
		if !isString || !ok {
			return val, false, bad
		}
		val.ValueTime = &t

	case TypeURL:
		if !isString || !validWebURL(s) {
			return val, false, bad
		}
		if utf8.RuneCountInString(s) > it.EffectiveMaxLength() {
			return val, false, locale.New("forms.max_length", it.EffectiveMaxLength())
		}
		val.ValueURI = &s

	case TypeBoolean:
		switch string(raw) {
		case "true", "false":
			b := string(raw) == "true"
			if !b && it.MustBeTrue {
				return val, false, locale.New(MsgMustBeTrue)
			}
			val.ValueBoolean = &b
		default:
			return val, false, bad
		}

	case TypeChoice, TypeOpenChoice:
		if !isString {
			return val, false, bad
		}
		if o, ok := findOption(it, s); ok {
			val = o.value()
			break
		}
		if it.Type == TypeChoice && !it.FreeText() {
			return val, false, bad
		}
		if msg := checkText(it, s); !msg.IsZero() {
			return val, false, msg
		}
		val.ValueString = &s

	case TypeReference:
		// Only without options (those were taken above): the patient's
		// description of the record, kept as a display, never a record id.
		if !isString {
			return val, false, bad
		}
		if msg := checkText(it, s); !msg.IsZero() {
			return val, false, msg
		}
		val.ValueReference = &Reference{Display: s}

	case TypeAttachment:
		if raw[0] != '{' {
			return val, false, bad
		}
		att, msg := decodeAttachment(raw)
		if !msg.IsZero() {
			return val, false, msg
		}
		if it.MaxSize > 0 && att.Size > it.MaxSize {
			return val, false, locale.New("forms.attachment.max_size", it.MaxSize)
		}
		if len(it.MimeTypes) > 0 {
			mt, _, _ := mime.ParseMediaType(att.ContentType)
			if !slices.ContainsFunc(it.MimeTypes, func(want string) bool {
				prefix, wild := strings.CutSuffix(want, "/*")
				return want == strings.ToLower(mt) || wild && strings.HasPrefix(strings.ToLower(mt), prefix+"/")
			}) {
				return val, false, locale.New("forms.attachment.types", strings.Join(it.MimeTypes, ", "))
			}
		}
		val.ValueAttachment = att

	default:
		return val, false, bad
	}
	if it.Regex != nil {
		text := val.String()
		if val.ValueDecimal != nil || val.ValueInteger != nil {
			text = string(raw)
		}
		if val.ValueCoding == nil && !it.Regex.MatchString(text) {
			if it.EntryFormat != "" {
				return val, false, locale.New("forms.format_entry", it.entryFormatText())
			}
			return val, false, locale.New("forms.format")
		}
	}
	return val, false, locale.Message{}
}

// checkDecimalPlaces applies maxDecimalPlaces to a JSON number token.
func checkDecimalPlaces(it *Item, tok string) locale.Message {
	if it.MaxDecimalPlaces < 0 {
		return locale.Message{}
	}
	if strings.ContainsAny(tok, "eE") {
		return locale.New("forms.no_exponent")
	}
	_, frac, _ := strings.Cut(tok, ".")
	if len(frac) > it.MaxDecimalPlaces {
		if it.MaxDecimalPlaces == 0 {
			return locale.New("forms.type.integer")
		}
		return locale.New("forms.max_decimals", it.MaxDecimalPlaces)
	}
	return locale.Message{}
}

// decodeQuantity takes a number (when the item offers at most one unit) or
// an object {"value": n, "code": unit code} (code or unit picks one of the
// units), and returns the Quantity with the unit the form defines.
func decodeQuantity(it *Item, raw []byte, isString bool) (*Quantity, locale.Message) {
	bad := locale.New("forms.quantity.shape")
	var num, key string
	switch {
	case isString:
		return nil, bad
	case raw[0] == '{':
		var w struct {
			Value  json.Number `json:"value"`
			Code   *string     `json:"code"`
			Unit   *string     `json:"unit"`
			System *string     `json:"system"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		if err := dec.Decode(&w); err != nil {
			return nil, bad
		}
		if w.Value == "" {
			if (w.Code == nil || *w.Code == "") && (w.Unit == nil || *w.Unit == "") {
				return nil, locale.Message{} // an empty quantity: unanswered
			}
			return nil, locale.New("forms.quantity.value")
		}
		num = string(w.Value)
		switch {
		case w.Code != nil && *w.Code != "":
			key = *w.Code
		case w.Unit != nil:
			key = *w.Unit
		}
	default:
		num = string(raw)
	}
	if !isJSONNumber(num) {
		return nil, bad
	}
	if len(num) > maxNumberLength {
		return nil, locale.New("forms.max_digits", maxNumberLength)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, locale.New("forms.out_of_range")
	}
	if msg := checkRange(it, f); !msg.IsZero() {
		return nil, msg
	}
	if msg := checkDecimalPlaces(it, num); !msg.IsZero() {
		return nil, msg
	}
	q := &Quantity{Value: json.Number(num)}
	switch {
	case len(it.Units) == 0:
		if key != "" {
			return nil, locale.New("forms.quantity.no_unit")
		}
	case key == "" && len(it.Units) == 1:
		key = unitKey(it.Units[0])
		fallthrough
	default:
		found := false
		for _, u := range it.Units {
			if unitKey(u) == key || (u.Display != "" && u.Display == key) {
				q.Code, q.System, q.Unit = u.Code, u.System, u.Display
				if q.Unit == "" {
					q.Unit = u.Code
				}
				found = true
				break
			}
		}
		if !found {
			return nil, locale.New("forms.quantity.unit")
		}
	}
	return q, locale.Message{}
}

func findOption(it *Item, key string) (Option, bool) {
	for _, o := range it.Options {
		if o.Key() == key {
			return o, true
		}
	}
	return Option{}, false
}

// checkText applies the length and character rules of free text.
func checkText(it *Item, s string) locale.Message {
	if msg := checkFormatChars(s); !msg.IsZero() {
		return msg
	}
	n := utf8.RuneCountInString(s)
	if limit := it.EffectiveMaxLength(); n > limit {
		return locale.New("forms.max_length", limit)
	}
	if n < it.MinLength {
		return locale.New("forms.min_length", it.MinLength)
	}
	if hasControl(s, it.Type == TypeText) {
		if it.Type == TypeText {
			return locale.New("forms.control_chars_text")
		}
		return locale.New("forms.control_chars_line")
	}
	return locale.Message{}
}

func checkRange(it *Item, f float64) locale.Message {
	if it.MinValue != nil && f < *it.MinValue {
		return locale.New("forms.min_value", formatLimit(*it.MinValue))
	}
	if it.MaxValue != nil && f > *it.MaxValue {
		return locale.New("forms.max_value", formatLimit(*it.MaxValue))
	}
	return locale.Message{}
}

// wireAttachment is the Attachment a client may submit: content inline, no
// url (the server fetches nothing on a patient's behalf).
type wireAttachment struct {
	ContentType *string `json:"contentType"`
	Data        *string `json:"data"`
	Title       *string `json:"title"`
	Size        *int64  `json:"size"`
	Hash        *string `json:"hash"`
}

func decodeAttachment(raw []byte) (*Attachment, locale.Message) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var w wireAttachment
	if err := dec.Decode(&w); err != nil {
		return nil, locale.New("forms.attachment.shape")
	}
	if w.Data == nil || *w.Data == "" {
		return nil, locale.New("forms.attachment.no_data")
	}
	data, err := base64.StdEncoding.DecodeString(*w.Data)
	if err != nil {
		return nil, locale.New("forms.attachment.base64")
	}
	if len(data) == 0 {
		return nil, locale.New("forms.attachment.empty")
	}
	att := &Attachment{Data: data, Size: int64(len(data))}
	if w.ContentType != nil {
		ct := strings.TrimSpace(*w.ContentType)
		if ct != "" {
			if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > 255 {
				return nil, locale.New("forms.attachment.content_type")
			}
		}
		att.ContentType = ct
	}
	if w.Title != nil {
		title := strings.TrimSpace(*w.Title)
		if utf8.RuneCountInString(title) > 255 || hasControl(title, false) {
			return nil, locale.New("forms.attachment.title")
		}
		if msg := checkFormatChars(title); !msg.IsZero() {
			return nil, locale.New("forms.attachment.title_format")
		}
		att.Title = title
	}
	if w.Size != nil && *w.Size != att.Size {
		return nil, locale.New("forms.attachment.size")
	}
	if w.Hash != nil && *w.Hash != "" {
		hash, err := base64.StdEncoding.DecodeString(*w.Hash)
		sum := sha1.Sum(data)
		if err != nil || !bytes.Equal(hash, sum[:]) {
			return nil, locale.New("forms.attachment.hash")
		}
		att.Hash = hash
	}
	return att, locale.Message{}
}

// isJSONNumber reports whether s is a number as JSON spells it. strconv
// alone would also take "Inf", "0x1p3" or "+1", which are not JSON and
// would not marshal back.
func isJSONNumber(s string) bool {
	digits := func(s string) (rest string, n int) {
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			n++
		}
		return s[n:], n
	}
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	if s[0] == '0' {
		s = s[1:]
	} else {
		var n int
		if s, n = digits(s); n == 0 {
			return false
		}
	}
	if strings.HasPrefix(s, ".") {
		var n int
		if s, n = digits(s[1:]); n == 0 {
			return false
		}
	}
	if strings.HasPrefix(s, "e") || strings.HasPrefix(s, "E") {
		s = s[1:]
		if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
			s = s[1:]
		}
		var n int
		if s, n = digits(s); n == 0 {
			return false
		}
	}
	return s == ""
}
