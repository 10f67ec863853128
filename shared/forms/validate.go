package forms

import (
	"bytes"
	"crypto/sha1" // FHIR R4 defines Attachment.hash as SHA-1; it is checked, not trusted
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Answers are validated, normalised answers keyed by linkId; every slice has
// at least one element and only answered items appear. They are what gets
// sealed at intake and stored at the clinic.
type Answers map[string][]Value

// FieldError is one problem with a submission, addressed to the field that
// has it so a form can show it next to that field. Message never contains
// the submitted value: errors are logged and echoed, answers must not be.
type FieldError struct {
	Field   string `json:"field"` // the item's linkId
	Message string `json:"message"`
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
		b.WriteString(fe.Message)
	}
	return b.String()
}

// ForField returns the first message for a field, or "", so an HTML form
// can print it next to that field.
func (e FieldErrors) ForField(field string) string {
	for _, fe := range e {
		if fe.Field == field {
			return fe.Message
		}
	}
	return ""
}

// Messages used by Validate. Callers may compare against them; they never
// include what was submitted.
const (
	MsgRequired      = "is required"
	MsgNotApplicable = "is not applicable"
	MsgUnknownField  = "unknown field"
	MsgNotAnswerable = "is not a question and takes no answer"
	// MsgMustBeTrue rejects false for an item marked MustBeTrueExtensionURL.
	MsgMustBeTrue = "must be accepted to continue"
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

type validation struct {
	q        *Questionnaire
	answers  map[string][]Value // valid answers, before enableWhen
	present  []bool             // by item index: something was answered
	failed   []bool             // by item index: the answer itself is invalid
	messages []string           // by item index: the first problem
	state    []enabledState     // by item index: memoised enabled state
}

// Validate checks raw JSON answers (linkId -> JSON value) against the form
// and returns them normalised, or every problem found. Each value is a JSON
// string, number, boolean, a FHIR Attachment object for attachment items,
// or an array of these for a repeating item; null, an empty string and an
// empty array count as unanswered.
//
// Rules, by item type: string and text take a string, trimmed, at most
// EffectiveMaxLength characters, without control characters (text allows
// newlines and tabs, and CRLF becomes LF); integer a JSON integer in FHIR's
// 32-bit range; decimal a JSON number; both within minValue/maxValue; date
// a real calendar date as YYYY-MM-DD; dateTime RFC 3339 with a zone; boolean
// true or false; choice the Key of an option (stored as its Coding, or as
// valueString for string options); open-choice an option key or free text;
// attachment an object {contentType, data (base64), title} with optional
// size and hash that must match the data. Required items must be answered
// when enabled; disabled items must not be answered. Answers is nil whenever
// FieldErrors is not empty.
func (q *Questionnaire) Validate(raw map[string]json.RawMessage) (Answers, FieldErrors) {
	v := &validation{
		q:        q,
		answers:  make(map[string][]Value),
		present:  make([]bool, len(q.all)),
		failed:   make([]bool, len(q.all)),
		messages: make([]string, len(q.all)),
		state:    make([]enabledState, len(q.all)),
	}

	var unknown []string
	for key := range raw {
		it := q.byLinkID[key]
		switch {
		case it == nil:
			unknown = append(unknown, key)
		case !it.Answerable():
			v.messages[it.index] = MsgNotAnswerable
		}
	}

	for _, it := range q.questions {
		r, ok := raw[it.LinkID]
		if !it.PatientAnswers() {
			// Read-only, hidden and calculated items are never typed by the
			// patient: a submitted value is ignored (FHIR clients send the
			// values they displayed), the form's initial value stands, and
			// transfer computes calculated ones.
			if len(it.Initial) > 0 && it.Calculated == nil {
				v.answers[it.LinkID] = slices.Clone(it.Initial)
				v.present[it.index] = true
			}
			continue
		}
		if !ok {
			continue
		}
		values, present, msg := decodeAnswers(it, r)
		v.present[it.index] = present
		switch {
		case msg != "":
			v.messages[it.index] = msg
			v.failed[it.index] = true
		case present:
			v.answers[it.LinkID] = values
		}
	}

	for _, it := range q.all {
		if v.messages[it.index] == MsgNotAnswerable {
			continue
		}
		st := v.enabled(it)
		if !it.PatientAnswers() && it.Answerable() {
			if st != stateYes {
				delete(v.answers, it.LinkID)
			}
			continue
		}
		switch {
		case it.Type == TypeDisplay:
		case it.Type == TypeGroup:
			if it.Required && st == stateYes && !v.anyAnswered(it) {
				v.messages[it.index] = MsgRequired
			}
		case st == stateNo && v.present[it.index]:
			// Say this rather than any type error: the answer should not
			// be there at all.
			v.messages[it.index] = MsgNotApplicable
		case st == stateYes && (it.Required || it.MinOccurs > 0) && !v.present[it.index]:
			v.messages[it.index] = MsgRequired
		case st == stateYes && v.messages[it.index] == "" && it.MinOccurs > 1 && len(v.answers[it.LinkID]) < it.MinOccurs:
			v.messages[it.index] = fmt.Sprintf("needs at least %d answers", it.MinOccurs)
		case v.messages[it.index] == "" && it.MaxOccurs > 0 && len(v.answers[it.LinkID]) > it.MaxOccurs:
			v.messages[it.index] = fmt.Sprintf("takes at most %d answers", it.MaxOccurs)
		}
	}

	var errs FieldErrors
	for _, it := range q.all {
		if msg := v.messages[it.index]; msg != "" {
			errs = append(errs, FieldError{Field: it.LinkID, Message: msg})
		}
	}
	slices.Sort(unknown)
	for i, key := range unknown {
		if i == maxUnknownFields {
			errs = append(errs, FieldError{Field: "", Message: fmt.Sprintf("more than %d unknown fields", maxUnknownFields)})
			break
		}
		errs = append(errs, FieldError{Field: displayKey(key), Message: MsgUnknownField})
	}
	if len(errs) > 0 {
		return nil, errs
	}

	out := make(Answers, len(v.answers))
	for _, it := range q.questions {
		if values, ok := v.answers[it.LinkID]; ok {
			out[it.LinkID] = values
		}
	}
	return out, nil
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

// enabled works out whether an item applies, given the submitted answers.
// Parse has ruled out cycles, so the recursion ends.
func (v *validation) enabled(it *Item) enabledState {
	if st := v.state[it.index]; st != stateUnset {
		return st
	}
	st := stateYes
	if p := it.parent; p != nil {
		st = v.enabled(p)
		if st == stateYes && p.Answerable() {
			// An item under a question belongs to the question's answer:
			// it applies only once the question is answered.
			switch {
			case v.failed[p.index]:
				st = stateUnknown
			case len(v.answers[p.LinkID]) == 0:
				st = stateNo
			}
		}
	}
	if st != stateNo && len(it.EnableWhen) > 0 {
		switch own := v.conditions(it); {
		case own == stateNo:
			st = stateNo
		case own == stateUnknown:
			st = stateUnknown
		}
	}
	v.state[it.index] = st
	return st
}

func (v *validation) conditions(it *Item) enabledState {
	anyOf := it.EnableBehavior == "any"
	unknown := false
	for _, ew := range it.EnableWhen {
		switch v.condition(ew) {
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

func (v *validation) condition(ew EnableWhen) enabledState {
	target := v.q.byLinkID[ew.Question]
	if target == nil {
		return stateNo // Parse guarantees this does not happen
	}
	var answers []Value
	switch v.enabled(target) {
	case stateUnknown:
		return stateUnknown
	case stateYes:
		if v.failed[target.index] {
			return stateUnknown
		}
		answers = v.answers[target.LinkID]
	}
	// A disabled question counts as unanswered.
	if conditionHolds(ew, answers) {
		return stateYes
	}
	return stateNo
}

// anyAnswered reports whether a question below the group was answered (or
// attempted: a failed answer has its own error already).
func (v *validation) anyAnswered(group *Item) bool {
	for _, child := range group.Items {
		if child.Answerable() && v.present[child.index] {
			return true
		}
		if len(child.Items) > 0 && v.anyAnswered(child) {
			return true
		}
	}
	return false
}

// decodeAnswers turns one raw value into answers. present reports whether
// anything was answered; msg is the first problem, if any.
func decodeAnswers(it *Item, raw json.RawMessage) (values []Value, present bool, msg string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, ""
	}
	if raw[0] != '[' {
		val, empty, msg := decodeAnswer(it, raw)
		if msg != "" {
			return nil, true, msg
		}
		if empty {
			return nil, false, ""
		}
		return []Value{val}, true, ""
	}
	if !it.Repeats {
		return nil, true, "takes a single answer"
	}
	// Walk the array with a decoder so an oversized one is refused after
	// MaxAnswersPerItem elements rather than decoded in full.
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, true, typeMessage(it)
	}
	for n := 0; dec.More(); n++ {
		if n == MaxAnswersPerItem {
			return nil, true, fmt.Sprintf("takes at most %d answers", MaxAnswersPerItem)
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
		if msg != "" {
			if n > 0 {
				msg = fmt.Sprintf("answer %d: %s", n+1, msg)
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
		return nil, false, ""
	}
	return values, true, ""
}

// typeMessage says what kind of answer the item takes.
func typeMessage(it *Item) string {
	switch it.Type {
	case TypeString, TypeText:
		return "must be text"
	case TypeInteger:
		return "must be a whole number"
	case TypeDecimal:
		return "must be a number"
	case TypeDate:
		return "must be a date (YYYY-MM-DD)"
	case TypeDateTime:
		return "must be a date and time with time zone (RFC 3339)"
	case TypeBoolean:
		return "must be true or false"
	case TypeChoice:
		return "must be one of the options"
	case TypeOpenChoice:
		return "must be one of the options or text"
	case TypeAttachment:
		return "must be an attachment"
	case TypeQuantity:
		return "must be a number"
	}
	return "is not a valid answer"
}

// decodeAnswer checks one JSON value. An empty (or blank) string is "no
// answer" for every type, which is what an HTML form sends for an untouched
// field.
func decodeAnswer(it *Item, raw []byte) (val Value, empty bool, msg string) {
	bad := typeMessage(it)
	if len(raw) == 0 {
		return val, false, bad
	}
	var s string
	isString := raw[0] == '"'
	if isString {
		if err := json.Unmarshal(raw, &s); err != nil {
			return val, false, bad
		}
		if it.Type == TypeText {
			// Browsers submit textarea line breaks as CRLF.
			s = strings.ReplaceAll(s, "\r\n", "\n")
			s = strings.ReplaceAll(s, "\r", "\n")
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return val, true, ""
		}
	}

	if len(it.Options) > 0 && it.Type != TypeChoice && it.Type != TypeOpenChoice {
		// answerOption on a string, integer or date item: only the options.
		key := s
		if !isString {
			key = string(raw)
		}
		o, ok := findOption(it, key)
		if !ok {
			return val, false, "must be one of the options"
		}
		return o.value(), false, ""
	}

	switch it.Type {
	case TypeString, TypeText:
		if !isString {
			return val, false, bad
		}
		if msg := checkText(it, s); msg != "" {
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
			return val, false, "is out of range"
		}
		if msg := checkRange(it, float64(n)); msg != "" {
			return val, false, msg
		}
		val.ValueInteger = &n

	case TypeDecimal:
		tok := string(raw)
		if isString || !isJSONNumber(tok) {
			return val, false, bad
		}
		if len(tok) > maxNumberLength {
			return val, false, fmt.Sprintf("must have at most %d digits", maxNumberLength)
		}
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return val, false, "is out of range"
		}
		if msg := checkRange(it, f); msg != "" {
			return val, false, msg
		}
		if msg := checkDecimalPlaces(it, tok); msg != "" {
			return val, false, msg
		}
		// Keep the submitted digits: FHIR decimals preserve precision.
		num := json.Number(tok)
		val.ValueDecimal = &num

	case TypeQuantity:
		q, msg := decodeQuantity(it, raw, isString)
		if msg != "" {
			return val, false, msg
		}
		if q == nil {
			return val, true, ""
		}
		val.ValueQuantity = q

	case TypeDate:
		if !isString || !validDate(s) {
			return val, false, bad
		}
		if it.MinDate != "" && s < it.MinDate {
			return val, false, "must be on or after " + it.MinDate
		}
		if it.MaxDate != "" && s > it.MaxDate {
			return val, false, "must be on or before " + it.MaxDate
		}
		val.ValueDate = &s

	case TypeDateTime:
		if !isString || !validDateTime(s) {
			return val, false, bad
		}
		val.ValueDateTime = &s

	case TypeBoolean:
		switch string(raw) {
		case "true", "false":
			b := string(raw) == "true"
			if !b && it.MustBeTrue {
				return val, false, MsgMustBeTrue
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
		if msg := checkText(it, s); msg != "" {
			return val, false, msg
		}
		val.ValueString = &s

	case TypeAttachment:
		if raw[0] != '{' {
			return val, false, bad
		}
		att, msg := decodeAttachment(raw)
		if msg != "" {
			return val, false, msg
		}
		if it.MaxSize > 0 && att.Size > it.MaxSize {
			return val, false, fmt.Sprintf("attachment must be at most %d bytes", it.MaxSize)
		}
		if len(it.MimeTypes) > 0 {
			mt, _, _ := mime.ParseMediaType(att.ContentType)
			if !slices.ContainsFunc(it.MimeTypes, func(want string) bool {
				prefix, wild := strings.CutSuffix(want, "/*")
				return want == strings.ToLower(mt) || wild && strings.HasPrefix(strings.ToLower(mt), prefix+"/")
			}) {
				return val, false, "attachment must be of type " + strings.Join(it.MimeTypes, ", ")
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
				return val, false, "must be in the format " + it.EntryFormat
			}
			return val, false, "is not in the required format"
		}
	}
	return val, false, ""
}

// checkDecimalPlaces applies maxDecimalPlaces to a JSON number token.
func checkDecimalPlaces(it *Item, tok string) string {
	if it.MaxDecimalPlaces < 0 {
		return ""
	}
	if strings.ContainsAny(tok, "eE") {
		return "must be written without an exponent"
	}
	_, frac, _ := strings.Cut(tok, ".")
	if len(frac) > it.MaxDecimalPlaces {
		if it.MaxDecimalPlaces == 0 {
			return "must be a whole number"
		}
		return fmt.Sprintf("must have at most %d decimal places", it.MaxDecimalPlaces)
	}
	return ""
}

// decodeQuantity takes a number (when the item offers at most one unit) or
// an object {"value": n, "code": unit code} (code or unit picks one of the
// units), and returns the Quantity with the unit the form defines.
func decodeQuantity(it *Item, raw []byte, isString bool) (*Quantity, string) {
	const bad = "must be a number, or an object with value and unit code"
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
				return nil, "" // an empty quantity: unanswered
			}
			return nil, "needs a value"
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
		return nil, fmt.Sprintf("must have at most %d digits", maxNumberLength)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, "is out of range"
	}
	if msg := checkRange(it, f); msg != "" {
		return nil, msg
	}
	if msg := checkDecimalPlaces(it, num); msg != "" {
		return nil, msg
	}
	q := &Quantity{Value: json.Number(num)}
	switch {
	case len(it.Units) == 0:
		if key != "" {
			return nil, "takes no unit"
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
			return nil, "must have one of the units offered"
		}
	}
	return q, ""
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
func checkText(it *Item, s string) string {
	if msg := checkFormatChars(s); msg != "" {
		return msg
	}
	n := utf8.RuneCountInString(s)
	if limit := it.EffectiveMaxLength(); n > limit {
		return fmt.Sprintf("must be at most %d characters", limit)
	}
	if n < it.MinLength {
		return fmt.Sprintf("must be at least %d characters", it.MinLength)
	}
	if hasControl(s, it.Type == TypeText) {
		if it.Type == TypeText {
			return "must not contain control characters other than line breaks and tabs"
		}
		return "must not contain line breaks or control characters"
	}
	return ""
}

func checkRange(it *Item, f float64) string {
	if it.MinValue != nil && f < *it.MinValue {
		return "must be at least " + formatLimit(*it.MinValue)
	}
	if it.MaxValue != nil && f > *it.MaxValue {
		return "must be at most " + formatLimit(*it.MaxValue)
	}
	return ""
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

func decodeAttachment(raw []byte) (*Attachment, string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var w wireAttachment
	if err := dec.Decode(&w); err != nil {
		return nil, "must be an attachment with only contentType, data, title, size and hash"
	}
	if w.Data == nil || *w.Data == "" {
		return nil, "attachment has no data"
	}
	data, err := base64.StdEncoding.DecodeString(*w.Data)
	if err != nil {
		return nil, "attachment data is not valid base64"
	}
	if len(data) == 0 {
		return nil, "attachment is empty"
	}
	att := &Attachment{Data: data, Size: int64(len(data))}
	if w.ContentType != nil {
		ct := strings.TrimSpace(*w.ContentType)
		if ct != "" {
			if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > 255 {
				return nil, "attachment content type is not valid"
			}
		}
		att.ContentType = ct
	}
	if w.Title != nil {
		title := strings.TrimSpace(*w.Title)
		if utf8.RuneCountInString(title) > 255 || hasControl(title, false) {
			return nil, "attachment title must be at most 255 characters without control characters"
		}
		if msg := checkFormatChars(title); msg != "" {
			return nil, "attachment title " + msg
		}
		att.Title = title
	}
	if w.Size != nil && *w.Size != att.Size {
		return nil, "attachment size does not match its data"
	}
	if w.Hash != nil && *w.Hash != "" {
		hash, err := base64.StdEncoding.DecodeString(*w.Hash)
		sum := sha1.Sum(data)
		if err != nil || !bytes.Equal(hash, sum[:]) {
			return nil, "attachment hash does not match its data"
		}
		att.Hash = hash
	}
	return att, ""
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
