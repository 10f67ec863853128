package forms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CarriedExtensionURL marks an item not carried to the clinic:
// {"url": CarriedExtensionURL, "valueBoolean": false}. Default: carried.
// Transfer drops such items (and everything below them) so that stage 2 only
// ever holds the data the clinic needs.
const CarriedExtensionURL = "https://airlock.dev/fhir/StructureDefinition/carried-to-clinic"

// MustBeTrueExtensionURL marks a boolean item whose only acceptable answer
// is true, such as a consent checkbox: {"url": MustBeTrueExtensionURL,
// "valueBoolean": true}. Validate rejects false with MsgMustBeTrue. HTML
// forms render such an item as a single checkbox.
const MustBeTrueExtensionURL = "https://airlock.dev/fhir/StructureDefinition/must-be-true"

// The standard FHIR extensions that bound integer and decimal answers.
const (
	MinValueExtensionURL = "http://hl7.org/fhir/StructureDefinition/minValue"
	MaxValueExtensionURL = "http://hl7.org/fhir/StructureDefinition/maxValue"
)

// Item types of the supported subset, as spelt in FHIR.
const (
	TypeGroup      = "group"
	TypeDisplay    = "display"
	TypeString     = "string"
	TypeText       = "text"
	TypeInteger    = "integer"
	TypeDecimal    = "decimal"
	TypeDate       = "date"
	TypeDateTime   = "dateTime"
	TypeBoolean    = "boolean"
	TypeChoice     = "choice"
	TypeOpenChoice = "open-choice"
	TypeAttachment = "attachment"
)

// Limits that bound the work Parse and Validate do, whatever they are fed.
const (
	// DefaultMaxLength caps string, text and open-choice answers whose item
	// sets no maxLength, so no free-text field is unbounded.
	DefaultMaxLength = 10000
	// MaxAnswersPerItem caps the answers to one repeating item.
	MaxAnswersPerItem = 1000
	// maxItems and maxDepth bound a form file; real forms are far smaller.
	maxItems = 5000
	maxDepth = 16
	// maxMaxLength bounds the maxLength a form may ask for.
	maxMaxLength = 1 << 20
)

var formIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Questionnaire is a parsed, checked form. It is shared by every request that
// uses the form, so treat it (and its items) as read-only.
type Questionnaire struct {
	ID          string // the form's id, its URL slug: ^[a-z0-9][a-z0-9-]{0,63}$
	URL         string // canonical url (may be empty)
	Version     string // as given; see FormVersion
	Title       string
	Description string // from "description", may be empty
	Status      string // FHIR publication status (draft, active, retired, unknown), as given
	Items       []*Item
	// Raw is the original file, served as-is by GET /api/v1/forms/{id} so
	// API clients see exactly the Questionnaire the server validates against.
	Raw json.RawMessage

	all       []*Item          // every item, document order, depth-first
	questions []*Item          // answerable items, document order
	byLinkID  map[string]*Item // every item by linkId
}

// Item is one question, group or display text of a form.
type Item struct {
	LinkID, Text, Type string // Type: one of the Type* constants
	Required, Repeats  bool
	// MaxLength is the form's limit in characters; 0 means none was given,
	// and DefaultMaxLength applies (see EffectiveMaxLength).
	MaxLength int
	// Carried is false when the CarriedExtensionURL extension on this item
	// or on any group above it says valueBoolean false: such answers never
	// leave intake.
	Carried        bool
	Options        []Option     // answerOption, for choice and open-choice
	EnableWhen     []EnableWhen // conditions under which the item applies
	EnableBehavior string       // "all" or "any"; "all" when the form gives none
	// MinValue and MaxValue come from the standard minValue/maxValue
	// extensions on integer and decimal items; nil when not given.
	MinValue, MaxValue *float64
	// MustBeTrue is set by MustBeTrueExtensionURL on a boolean item: false
	// is not an acceptable answer.
	MustBeTrue bool
	Items      []*Item // children (groups only)

	parent *Item
	index  int    // position in Questionnaire.all
	path   string // linkIds from the root, joined by "/"
}

// Option is one permitted answer of a choice or open-choice item, either a
// coding (System, Code, Display) or a plain string (String, Code empty).
type Option struct {
	System, Code, Display string
	String                string
}

// Key is what a client submits to pick the option: the code of a coding
// option, or the string of a string option. HTML forms use it as the value
// of a radio button or select option.
func (o Option) Key() string {
	if o.Code != "" {
		return o.Code
	}
	return o.String
}

// Label is the text to show a person for the option.
func (o Option) Label() string {
	switch {
	case o.Display != "":
		return o.Display
	case o.String != "":
		return o.String
	}
	return o.Code
}

// EnableWhen is one condition of an item's enableWhen: the item applies
// only when the answers to Question satisfy Operator ("exists", "=" or "!=")
// against Answer. For "exists", Answer holds a boolean.
type EnableWhen struct {
	Question, Operator string
	Answer             Value
}

// FormVersion is the version recorded with each submission. Forms without a
// version are recorded as "0" so that the stored metadata is never empty.
func (q *Questionnaire) FormVersion() string {
	if q.Version == "" {
		return "0"
	}
	return q.Version
}

// Item returns the item (of any type) with the given linkId, or nil if the
// form has none. Renderers and exporters use it to find labels.
func (q *Questionnaire) Item(linkID string) *Item {
	return q.byLinkID[linkID]
}

// Questions returns every answerable item (not group or display) in document
// order, depth-first: the order of CSV columns and of error messages.
func (q *Questionnaire) Questions() []*Item {
	return append([]*Item(nil), q.questions...)
}

// Answerable reports whether the item takes answers (it is not a group or a
// display item).
func (it *Item) Answerable() bool {
	return it.Type != TypeGroup && it.Type != TypeDisplay
}

// Parent returns the group the item sits in, or nil for a top-level item.
func (it *Item) Parent() *Item {
	return it.parent
}

// Path is the item's position in the form as linkIds joined by "/", e.g.
// "history/allergies"; Parse errors use it to point at the item.
func (it *Item) Path() string {
	return it.path
}

// EffectiveMaxLength is the limit Validate enforces on a free-text answer,
// in characters, so that HTML forms can set the same maxlength attribute.
// It is 0 for types without a length limit.
func (it *Item) EffectiveMaxLength() int {
	switch it.Type {
	case TypeString, TypeText, TypeOpenChoice:
		if it.MaxLength > 0 {
			return it.MaxLength
		}
		return DefaultMaxLength
	}
	return 0
}

// Wire shapes of the supported subset. Child items are kept raw so that each
// is decoded on its own and a decoding error can name the item it is in.
type wireQuestionnaire struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id"`
	URL               string            `json:"url"`
	Version           string            `json:"version"`
	Title             string            `json:"title"`
	Status            string            `json:"status"`
	Description       string            `json:"description"`
	Item              []json.RawMessage `json:"item"`
	ModifierExtension []json.RawMessage `json:"modifierExtension"`
}

type wireItem struct {
	LinkID            *string           `json:"linkId"`
	Text              string            `json:"text"`
	Type              string            `json:"type"`
	Required          bool              `json:"required"`
	Repeats           bool              `json:"repeats"`
	ReadOnly          bool              `json:"readOnly"`
	MaxLength         *int              `json:"maxLength"`
	Extension         []wireExtension   `json:"extension"`
	ModifierExtension []json.RawMessage `json:"modifierExtension"`
	AnswerOption      []wireOption      `json:"answerOption"`
	AnswerValueSet    string            `json:"answerValueSet"`
	EnableWhen        []wireEnableWhen  `json:"enableWhen"`
	EnableBehavior    string            `json:"enableBehavior"`
	Item              []json.RawMessage `json:"item"`
}

type wireExtension struct {
	URL          string   `json:"url"`
	ValueBoolean *bool    `json:"valueBoolean"`
	ValueInteger *int64   `json:"valueInteger"`
	ValueDecimal *float64 `json:"valueDecimal"`
}

type wireOption struct {
	ValueCoding    *Coding         `json:"valueCoding"`
	ValueString    *string         `json:"valueString"`
	ValueInteger   json.RawMessage `json:"valueInteger"`
	ValueDate      json.RawMessage `json:"valueDate"`
	ValueTime      json.RawMessage `json:"valueTime"`
	ValueReference json.RawMessage `json:"valueReference"`
}

type wireEnableWhen struct {
	Question        string          `json:"question"`
	Operator        string          `json:"operator"`
	AnswerBoolean   *bool           `json:"answerBoolean"`
	AnswerString    *string         `json:"answerString"`
	AnswerInteger   *int64          `json:"answerInteger"`
	AnswerCoding    *Coding         `json:"answerCoding"`
	AnswerDate      *string         `json:"answerDate"`
	AnswerDecimal   json.RawMessage `json:"answerDecimal"`
	AnswerDateTime  json.RawMessage `json:"answerDateTime"`
	AnswerTime      json.RawMessage `json:"answerTime"`
	AnswerQuantity  json.RawMessage `json:"answerQuantity"`
	AnswerReference json.RawMessage `json:"answerReference"`
}

// Parse reads a FHIR R4 Questionnaire in the supported subset (see the
// package documentation) and checks it, so that a broken form fails when the
// server starts rather than when a patient submits it. Errors about an item
// name it and its path, e.g.
// `item "allergies" (history/allergies): unsupported type "quantity"`.
func Parse(data []byte) (*Questionnaire, error) {
	var w wireQuestionnaire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("questionnaire: %s", describeJSONError(err))
	}
	if w.ResourceType != "Questionnaire" {
		return nil, fmt.Errorf("questionnaire: resourceType is %q, want \"Questionnaire\"", clip(w.ResourceType))
	}
	if !formIDPattern.MatchString(w.ID) {
		return nil, fmt.Errorf("questionnaire: id %q is not a valid form id (lowercase letters, digits and hyphens, at most 64)", clip(w.ID))
	}
	if len(w.ModifierExtension) > 0 {
		return nil, fmt.Errorf("questionnaire %q: modifierExtension is not supported", w.ID)
	}
	if strings.TrimSpace(w.Title) == "" {
		return nil, fmt.Errorf("questionnaire %q: missing title", w.ID)
	}
	if len(w.Version) > 64 || hasControl(w.Version, false) {
		return nil, fmt.Errorf("questionnaire %q: version must be at most 64 characters without control characters", w.ID)
	}
	if len(w.Item) == 0 {
		return nil, fmt.Errorf("questionnaire %q: has no items", w.ID)
	}

	q := &Questionnaire{
		ID:          w.ID,
		URL:         w.URL,
		Version:     w.Version,
		Title:       w.Title,
		Description: w.Description,
		Status:      w.Status,
		Raw:         json.RawMessage(bytes.Clone(data)),
		byLinkID:    make(map[string]*Item),
	}
	p := parser{q: q}
	items, err := p.items(w.Item, nil, "", 1)
	if err != nil {
		return nil, err
	}
	q.Items = items
	if err := p.resolveEnableWhen(); err != nil {
		return nil, err
	}
	return q, nil
}

type parser struct {
	q *Questionnaire
}

// itemError names the item an error is about: its linkId when it has one,
// and always its path.
func itemError(linkID, path, format string, args ...any) error {
	if linkID == "" {
		return fmt.Errorf("item at %s: %s", path, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("item %q (%s): %s", linkID, path, fmt.Sprintf(format, args...))
}

func (p *parser) items(raws []json.RawMessage, parent *Item, parentPath string, depth int) ([]*Item, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("item at %s: items nested more than %d deep", parentPath, maxDepth)
	}
	out := make([]*Item, 0, len(raws))
	for i, raw := range raws {
		it, err := p.item(raw, parent, parentPath, i, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func (p *parser) item(raw json.RawMessage, parent *Item, parentPath string, index, depth int) (*Item, error) {
	// Until the linkId is known, the item is named by its position.
	path := fmt.Sprintf("item[%d]", index)
	if parentPath != "" {
		path = parentPath + "/" + path
	}
	if len(p.q.all) >= maxItems {
		return nil, fmt.Errorf("item at %s: a form may have at most %d items", path, maxItems)
	}
	var w wireItem
	if err := json.Unmarshal(raw, &w); err != nil {
		// Name the item by its linkId if that much can be read.
		var named struct {
			LinkID string `json:"linkId"`
		}
		if json.Unmarshal(raw, &named) == nil && validLinkID(named.LinkID) {
			return nil, itemError(named.LinkID, joinPath(parentPath, named.LinkID), "%s", describeJSONError(err))
		}
		return nil, itemError("", path, "%s", describeJSONError(err))
	}
	if w.LinkID == nil || *w.LinkID == "" {
		return nil, itemError("", path, "missing linkId")
	}
	if !validLinkID(*w.LinkID) {
		return nil, itemError("", path, "linkId %q must be at most 255 characters without spaces or control characters", clip(*w.LinkID))
	}
	it := &Item{
		LinkID:         *w.LinkID,
		Text:           w.Text,
		Type:           w.Type,
		Required:       w.Required,
		Repeats:        w.Repeats,
		Carried:        true,
		EnableBehavior: w.EnableBehavior,
		parent:         parent,
		index:          len(p.q.all),
		path:           joinPath(parentPath, *w.LinkID),
	}
	fail := func(format string, args ...any) error {
		return itemError(it.LinkID, it.path, format, args...)
	}
	if _, dup := p.q.byLinkID[it.LinkID]; dup {
		return nil, fail("duplicate linkId")
	}
	p.q.byLinkID[it.LinkID] = it
	p.q.all = append(p.q.all, it)

	switch it.Type {
	case "":
		return nil, fail("missing type")
	case TypeGroup, TypeDisplay, TypeString, TypeText, TypeInteger, TypeDecimal, TypeDate,
		TypeDateTime, TypeBoolean, TypeChoice, TypeOpenChoice, TypeAttachment:
	default:
		return nil, fail("unsupported type %q", clip(it.Type))
	}
	if it.Answerable() {
		p.q.questions = append(p.q.questions, it)
	}
	if len(w.ModifierExtension) > 0 {
		return nil, fail("modifierExtension is not supported")
	}
	if w.ReadOnly {
		return nil, fail("readOnly is not supported")
	}
	if it.Type != TypeGroup && strings.TrimSpace(it.Text) == "" {
		return nil, fail("missing text")
	}
	switch it.Type {
	case TypeGroup:
		if it.Repeats {
			return nil, fail("repeating groups are not supported")
		}
		if len(w.Item) == 0 {
			return nil, fail("group has no items")
		}
	case TypeDisplay:
		if it.Required || it.Repeats {
			return nil, fail("a display item cannot be required or repeat")
		}
	}
	if len(w.Item) > 0 && it.Type != TypeGroup {
		return nil, fail("child items are only supported under group items")
	}

	if w.MaxLength != nil {
		switch it.Type {
		case TypeString, TypeText, TypeOpenChoice:
		default:
			return nil, fail("maxLength is only supported on string, text and open-choice items")
		}
		if *w.MaxLength < 1 || *w.MaxLength > maxMaxLength {
			return nil, fail("maxLength must be between 1 and %d", maxMaxLength)
		}
		it.MaxLength = *w.MaxLength
	}

	if err := p.extensions(it, w.Extension); err != nil {
		return nil, fail("%v", err)
	}
	if err := p.options(it, &w); err != nil {
		return nil, fail("%v", err)
	}

	switch it.EnableBehavior {
	case "":
		it.EnableBehavior = "all"
	case "all", "any":
	default:
		return nil, fail("unsupported enableBehavior %q", clip(it.EnableBehavior))
	}
	for i, ew := range w.EnableWhen {
		cond, err := enableWhenFromWire(ew)
		if err != nil {
			return nil, fail("enableWhen[%d]: %v", i, err)
		}
		it.EnableWhen = append(it.EnableWhen, cond)
	}

	children, err := p.items(w.Item, it, it.path, depth+1)
	if err != nil {
		return nil, err
	}
	it.Items = children
	return it, nil
}

func (p *parser) extensions(it *Item, exts []wireExtension) error {
	seen := make(map[string]bool)
	for _, ext := range exts {
		switch ext.URL {
		case CarriedExtensionURL, MinValueExtensionURL, MaxValueExtensionURL, MustBeTrueExtensionURL:
		default:
			continue // rendering hints and the like do not change validation
		}
		if seen[ext.URL] {
			return fmt.Errorf("extension %s is given twice", ext.URL)
		}
		seen[ext.URL] = true
		switch ext.URL {
		case CarriedExtensionURL:
			if ext.ValueBoolean == nil || ext.ValueInteger != nil || ext.ValueDecimal != nil {
				return fmt.Errorf("extension %s needs valueBoolean", ext.URL)
			}
			it.Carried = *ext.ValueBoolean
			if it.parent != nil && !it.parent.Carried {
				if it.Carried {
					return errors.New("marked carried to the clinic inside a group that is not")
				}
			}
		case MustBeTrueExtensionURL:
			if it.Type != TypeBoolean {
				return fmt.Errorf("extension %s is only supported on boolean items", ext.URL)
			}
			if ext.ValueBoolean == nil || !*ext.ValueBoolean || ext.ValueInteger != nil || ext.ValueDecimal != nil {
				return fmt.Errorf("extension %s needs valueBoolean true", ext.URL)
			}
			it.MustBeTrue = true
		case MinValueExtensionURL, MaxValueExtensionURL:
			if it.Type != TypeInteger && it.Type != TypeDecimal {
				return fmt.Errorf("extension %s is only supported on integer and decimal items", ext.URL)
			}
			var v float64
			switch {
			case ext.ValueBoolean != nil:
				return fmt.Errorf("extension %s needs valueInteger or valueDecimal", ext.URL)
			case ext.ValueInteger != nil && ext.ValueDecimal == nil:
				v = float64(*ext.ValueInteger)
			case ext.ValueDecimal != nil && ext.ValueInteger == nil:
				v = *ext.ValueDecimal
			default:
				return fmt.Errorf("extension %s needs valueInteger or valueDecimal", ext.URL)
			}
			if ext.URL == MinValueExtensionURL {
				it.MinValue = &v
			} else {
				it.MaxValue = &v
			}
		}
	}
	if it.parent != nil && !it.parent.Carried {
		it.Carried = false
	}
	if it.MinValue != nil && it.MaxValue != nil && *it.MinValue > *it.MaxValue {
		return errors.New("minValue is greater than maxValue")
	}
	return nil
}

func (p *parser) options(it *Item, w *wireItem) error {
	isChoice := it.Type == TypeChoice || it.Type == TypeOpenChoice
	if w.AnswerValueSet != "" {
		return errors.New("answerValueSet is not supported; list the options in answerOption")
	}
	if !isChoice {
		if len(w.AnswerOption) > 0 {
			return errors.New("answerOption is only supported on choice and open-choice items")
		}
		return nil
	}
	if len(w.AnswerOption) == 0 {
		return fmt.Errorf("%s item without answerOption", it.Type)
	}
	// The patient submits only a key, so keys must pick exactly one option.
	keys := make(map[string]bool, len(w.AnswerOption))
	for i, wo := range w.AnswerOption {
		if wo.ValueInteger != nil || wo.ValueDate != nil || wo.ValueTime != nil || wo.ValueReference != nil {
			return fmt.Errorf("answerOption[%d]: only valueCoding and valueString are supported", i)
		}
		var o Option
		switch {
		case wo.ValueCoding != nil && wo.ValueString == nil:
			if wo.ValueCoding.Code == "" {
				return fmt.Errorf("answerOption[%d]: valueCoding without code", i)
			}
			o = Option{System: wo.ValueCoding.System, Code: wo.ValueCoding.Code, Display: wo.ValueCoding.Display}
		case wo.ValueString != nil && wo.ValueCoding == nil:
			if *wo.ValueString == "" {
				return fmt.Errorf("answerOption[%d]: empty valueString", i)
			}
			o = Option{String: *wo.ValueString}
		default:
			return fmt.Errorf("answerOption[%d]: needs exactly one of valueCoding and valueString", i)
		}
		key := o.Key()
		// Answers are trimmed before matching, so an untrimmed key could
		// never be chosen.
		if key != strings.TrimSpace(key) || hasControl(key, false) {
			return fmt.Errorf("answerOption[%d]: %q has surrounding spaces or control characters", i, clip(key))
		}
		if keys[key] {
			return fmt.Errorf("answerOption[%d]: %q is listed twice", i, clip(key))
		}
		keys[key] = true
		it.Options = append(it.Options, o)
	}
	return nil
}

func enableWhenFromWire(w wireEnableWhen) (EnableWhen, error) {
	cond := EnableWhen{Question: w.Question, Operator: w.Operator}
	if w.Question == "" {
		return cond, errors.New("missing question")
	}
	if w.AnswerDecimal != nil || w.AnswerDateTime != nil || w.AnswerTime != nil || w.AnswerQuantity != nil || w.AnswerReference != nil {
		return cond, errors.New("only answerBoolean, answerString, answerInteger, answerCoding and answerDate are supported")
	}
	n := 0
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
	if n != 1 {
		return cond, errors.New("needs exactly one answer[x]")
	}
	switch w.Operator {
	case "exists":
		if w.AnswerBoolean == nil {
			return cond, errors.New(`operator "exists" needs answerBoolean`)
		}
	case "=", "!=":
	case "":
		return cond, errors.New("missing operator")
	default:
		return cond, fmt.Errorf("unsupported operator %q (supported: exists, =, !=)", clip(w.Operator))
	}
	return cond, nil
}

// resolveEnableWhen checks each condition against the question it names,
// once every linkId is known (a condition may point forward), and rejects
// cycles, which would leave an item's state undefined.
func (p *parser) resolveEnableWhen() error {
	for _, it := range p.q.all {
		for i, ew := range it.EnableWhen {
			fail := func(format string, args ...any) error {
				return itemError(it.LinkID, it.path, "enableWhen[%d]: %s", i, fmt.Sprintf(format, args...))
			}
			target := p.q.byLinkID[ew.Question]
			if target == nil {
				return fail("question %q is not in the form", clip(ew.Question))
			}
			if !target.Answerable() {
				return fail("question %q is a %s item, which has no answers", ew.Question, target.Type)
			}
			if ew.Operator == "exists" {
				continue
			}
			if err := answerSuits(target, ew.Answer); err != nil {
				return fail("%v", err)
			}
		}
	}
	// Depth-first search over "depends on" edges (the parent, and each
	// enableWhen question); a back edge is a cycle.
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int8, len(p.q.all))
	var visit func(it *Item) error
	visit = func(it *Item) error {
		switch state[it.index] {
		case visiting:
			return itemError(it.LinkID, it.path, "enableWhen conditions form a cycle")
		case done:
			return nil
		}
		state[it.index] = visiting
		if it.parent != nil {
			if err := visit(it.parent); err != nil {
				return err
			}
		}
		for _, ew := range it.EnableWhen {
			if err := visit(p.q.byLinkID[ew.Question]); err != nil {
				return err
			}
		}
		state[it.index] = done
		return nil
	}
	for _, it := range p.q.all {
		if err := visit(it); err != nil {
			return err
		}
	}
	return nil
}

// answerSuits rejects an enableWhen answer that can never equal an answer to
// the question, which would silently disable (or enable) an item for ever.
func answerSuits(target *Item, want Value) error {
	kind := ""
	switch {
	case want.ValueBoolean != nil:
		kind = "answerBoolean"
	case want.ValueString != nil:
		kind = "answerString"
	case want.ValueInteger != nil:
		kind = "answerInteger"
	case want.ValueCoding != nil:
		kind = "answerCoding"
	case want.ValueDate != nil:
		kind = "answerDate"
	}
	ok := false
	switch target.Type {
	case TypeBoolean:
		ok = kind == "answerBoolean"
	case TypeInteger:
		ok = kind == "answerInteger"
	case TypeDate:
		ok = kind == "answerDate"
	case TypeString, TypeText:
		ok = kind == "answerString"
	case TypeChoice, TypeOpenChoice:
		ok = kind == "answerCoding" || kind == "answerString"
	}
	if !ok {
		return fmt.Errorf("%s cannot match the %s question %q", kind, target.Type, target.LinkID)
	}
	if target.Type != TypeChoice {
		return nil
	}
	for _, o := range target.Options {
		if want.ValueCoding != nil && o.Code == want.ValueCoding.Code &&
			(want.ValueCoding.System == "" || want.ValueCoding.System == o.System) {
			return nil
		}
		if want.ValueString != nil && o.String != "" && o.String == *want.ValueString {
			return nil
		}
	}
	return fmt.Errorf("%s is not one of the options of %q", kind, target.LinkID)
}

func joinPath(parent, linkID string) string {
	if parent == "" {
		return linkID
	}
	return parent + "/" + linkID
}

// validLinkID keeps linkIds usable as JSON keys, HTML field names and CSV
// headers.
func validLinkID(s string) bool {
	if s == "" || len(s) > 255 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// hasControl reports control characters and, unless allowNewlines, the
// Unicode line and paragraph separators; allowNewlines permits \n and \t.
func hasControl(s string, allowNewlines bool) bool {
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t' || r == '\u2028' || r == '\u2029':
			if !allowNewlines {
				return true
			}
		case unicode.IsControl(r):
			return true
		}
	}
	return false
}

// Shapes of FHIR date and dateTime (with a time, so with a zone); time.Parse
// then checks the calendar. time.Parse alone is too lenient for stored data:
// it takes one-digit hours, a comma before fractional seconds and year 0000.
var (
	datePattern     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	dateTimePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)$`)
)

// validDate accepts exactly YYYY-MM-DD naming a real calendar day.
func validDate(s string) bool {
	if !datePattern.MatchString(s) || strings.HasPrefix(s, "0000") {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// validDateTime accepts an RFC 3339 timestamp with seconds and a zone, as
// FHIR's dateTime allows it.
func validDateTime(s string) bool {
	if !dateTimePattern.MatchString(s) || strings.HasPrefix(s, "0000") {
		return false
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// clip shortens a string from a form file before it is quoted in an error.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// describeJSONError turns encoding/json errors into messages about JSON
// rather than about this package's Go types.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		want := "a value of another type"
		switch kind := typeErr.Type.Kind(); {
		case kind == reflect.Bool:
			want = "a boolean"
		case kind == reflect.String:
			want = "a string"
		case kind >= reflect.Int && kind <= reflect.Uint64:
			want = "an integer"
		case kind == reflect.Float32 || kind == reflect.Float64:
			want = "a number"
		case kind == reflect.Slice && typeErr.Type == reflect.TypeFor[json.RawMessage]():
			want = "a JSON value"
		case kind == reflect.Slice:
			want = "an array"
		case kind == reflect.Struct || kind == reflect.Map || kind == reflect.Pointer:
			want = "an object"
		}
		if typeErr.Field == "" {
			return fmt.Sprintf("want %s, got JSON %s", want, typeErr.Value)
		}
		return fmt.Sprintf("field %q: want %s, got JSON %s", typeErr.Field, want, typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	}
	return "invalid JSON: " + err.Error()
}

// formatLimit prints a min/max bound the way a person would write it.
func formatLimit(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
