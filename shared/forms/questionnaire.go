package forms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/text/language"
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
	TypeQuantity   = "quantity"
	TypeTime       = "time" // HH:MM:SS, stored as valueTime
	TypeURL        = "url"  // an absolute http(s) URL, stored as valueUri
	// TypeReference with answerOption (valueReference) lists the records a
	// patient may pick; without options the patient describes the record in
	// free text, stored as a valueReference with a display only (see
	// Item.FreeReference).
	TypeReference = "reference"
)

// Limits that bound the work Parse and Validate do, whatever they are fed.
const (
	// DefaultMaxLength caps string, text and open-choice answers whose item
	// sets no maxLength, so no free-text field is unbounded.
	DefaultMaxLength = 10000
	// MaxURLLength caps url answers whose item sets no maxLength.
	MaxURLLength = 2048
	// MaxAnswersPerItem caps the answers to one repeating item.
	MaxAnswersPerItem = 1000
	// maxItems and maxDepth bound a form file; real forms are far smaller.
	maxItems = 5000
	maxDepth = 16
	// maxMaxLength bounds the maxLength a form may ask for.
	maxMaxLength = 1 << 20
)

// fhirIDPattern is FHIR's id grammar.
var fhirIDPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// slugPattern is what a form's URL slug (Questionnaire.ID) looks like.
var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Questionnaire is a parsed, checked form. It is shared by every request that
// uses the form, so treat it (and its items) as read-only.
type Questionnaire struct {
	// ID is the form's URL slug and the form id stored with submissions:
	// the FHIR id lower-cased with "." as "-" (^[a-z0-9][a-z0-9-]{0,63}$).
	ID string
	// ResourceID is the Questionnaire's FHIR id as written (or, when the
	// file has none, the slug).
	ResourceID  string
	URL         string // canonical url as written (may be empty)
	Version     string // as given; see FormVersion
	Title       string // title, else name, else the id: never empty
	Description string // from "description", may be empty
	Status      string // FHIR publication status (draft, active, retired, unknown), as given
	Items       []*Item
	// Raw is the original file, served as-is by GET /api/v1/forms/{id} so
	// API clients see exactly the Questionnaire the server validates against.
	Raw json.RawMessage

	canonicalURL string            // URL, or one under the configured base URL
	all          []*Item           // every item, document order, depth-first
	questions    []*Item           // answerable items, document order
	byLinkID     map[string]*Item  // every item by linkId
	variables    []Variable        // Questionnaire-level variable extensions
	varNames     map[string]bool   // every variable name declared anywhere in the form
	calculated   []*Item           // items with a calculatedExpression, document order
	members      []*Item           // items answered at the top level (see Item.Scope)
	inScope      map[*Item][]*Item // every item by its scope (nil: top level), document order

	language      language.Tag   // the form's own language (see Language)
	languages     []language.Tag // its own, then those of its translations
	titleTr       Translations
	descriptionTr Translations
}

// Item is one question, group or display text of a form.
type Item struct {
	LinkID, Type string // Type: one of the Type* constants
	// Text is item.text as written (may be empty); Label is what is shown:
	// Text, else the first code's display, else the linkId (never empty).
	Text, Label string
	Prefix      string // item.prefix, shown before the label
	// Definition is item.definition (SDC definition-based extraction), e.g.
	// "http://hl7.org/fhir/StructureDefinition/Patient#Patient.name.family".
	Definition         string
	Required, Repeats  bool
	ReadOnly, Hidden   bool
	MaxLength          int // the form's limit in characters; 0: DefaultMaxLength applies
	MinLength          int // minLength extension; 0 when not given
	MaxDecimalPlaces   int // maxDecimalPlaces extension; -1 when not given
	MinOccurs          int // questionnaire-minOccurs: answers needed when enabled (0: none)
	MaxOccurs          int // questionnaire-maxOccurs: most answers taken (0: no limit)
	Regex              *regexp.Regexp
	RegexSource        string // the regex extension's value as written
	EntryFormat        string // entryFormat extension: a hint, not enforced
	Control            string // itemControl code (radio-button, check-box, drop-down...) or ""
	Hints              []string
	MimeTypes          []string // attachment mimeType extension values
	MaxSize            int64    // attachment maxSize extension, bytes; 0 when not given
	Units              []Coding // quantity: questionnaire-unit or unitOption codings
	Initial            []Value  // item.initial, or answerOption.initialSelected
	Calculated         *Expression
	Carried            bool
	Options            []Option     // answerOption or the expanded answerValueSet
	ValueSet           string       // answerValueSet as written, "" when none
	EnableWhen         []EnableWhen // conditions under which the item applies
	EnableBehavior     string       // "all" or "any"; "all" when the form gives none
	MinValue, MaxValue *float64
	MinDate, MaxDate   string // minValue/maxValue valueDate on date items
	MustBeTrue         bool
	Items              []*Item // children (under groups and, in FHIR, under questions)

	parent  *Item
	scope   *Item   // the nearest repeating group above the item, nil at the top level
	members []*Item // of a repeating group: the items answered within each instance
	// variables declared on the item (the variable extension): in scope
	// for its own expressions and those of the items under it.
	variables []Variable
	index     int    // position in Questionnaire.all
	path      string // linkIds from the root, joined by "/"

	textTr, prefixTr, entryFormatTr Translations
	hintItems                       []*Item // the display children Hints come from
}

// Option is one permitted answer: a coding (System, Code, Display), a plain
// string (String), an integer (Integer), a date (Date) or a time of day
// (Time, HH:MM:SS).
type Option struct {
	System, Code, Display string
	String                string
	Integer               *int64
	Date                  string
	Time                  string
	Reference             string // a valueReference option; Display is its display
	// Score is the option's ordinalValue (or itemWeight), nil when none.
	Score *float64

	labelTr Translations // translations of Display or String
}

// Key is what a client submits to pick the option: the code of a coding
// option, the string of a string option, an integer or date as text. HTML
// forms use it as the value of a radio button or select option.
func (o Option) Key() string {
	switch {
	case o.Reference != "":
		return o.Reference
	case o.Code != "":
		return o.Code
	case o.Display != "":
		return o.Display // a coding with only a display
	case o.Integer != nil:
		return fmt.Sprint(*o.Integer)
	case o.Date != "":
		return o.Date
	case o.Time != "":
		return o.Time
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
	case o.Code == "":
		return o.Key()
	}
	return o.Code
}

// value is the answer the option stands for.
func (o Option) value() Value {
	switch {
	case o.Reference != "":
		return Value{ValueReference: &Reference{Reference: o.Reference, Display: o.Display}}
	case o.Code != "" || o.Display != "":
		return Value{ValueCoding: &Coding{System: o.System, Code: o.Code, Display: o.Display}}
	case o.Integer != nil:
		n := *o.Integer
		return Value{ValueInteger: &n}
	case o.Date != "":
		d := o.Date
		return Value{ValueDate: &d}
	case o.Time != "":
		t := o.Time
		return Value{ValueTime: &t}
	}
	s := o.String
	return Value{ValueString: &s}
}

// EnableWhen is one condition of an item's enableWhen: the item applies
// only when the answers to Question satisfy Operator (exists, =, !=, >, <,
// >=, <=) against Answer. For "exists", Answer holds a boolean.
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

// CanonicalURL is the form's url, or, for a form without one, the url under
// the configured base URL (ParseOptions.BaseURL + "/" + ID).
func (q *Questionnaire) CanonicalURL() string {
	return q.canonicalURL
}

// Canonical names the form in a QuestionnaireResponse for a submission
// recorded with storedVersion (FormVersion at the time): url|version when
// the form has a version, the url alone when it has none.
func (q *Questionnaire) Canonical(storedVersion string) string {
	if q.Version == "" && (storedVersion == "0" || storedVersion == "") {
		return q.canonicalURL
	}
	if storedVersion == "" {
		storedVersion = q.Version
	}
	return q.canonicalURL + "|" + storedVersion
}

// NamedBy reports whether a QuestionnaireResponse.questionnaire canonical
// names this form: its canonical url with or without "|version" (the
// current version), or "Questionnaire/<id>".
func (q *Questionnaire) NamedBy(canonical string) bool {
	if canonical == "Questionnaire/"+q.ResourceID || canonical == "Questionnaire/"+q.ID {
		return true
	}
	url, version, hasVersion := strings.Cut(canonical, "|")
	if url != q.canonicalURL && (q.URL == "" || url != q.URL) {
		return false
	}
	return !hasVersion || version == q.Version || (q.Version == "" && version == "0")
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

// PatientAnswers reports whether the patient answers the item: it takes
// answers and is neither read-only, hidden nor calculated.
func (it *Item) PatientAnswers() bool {
	return it.Answerable() && !it.ReadOnly && !it.Hidden && it.Calculated == nil
}

// RepeatingGroup reports whether the item is a group with repeats=true: each
// instance of it holds its own answers to the items inside (see Answers).
func (it *Item) RepeatingGroup() bool {
	return it.Type == TypeGroup && it.Repeats
}

// HasInstances reports whether the item holds answers of its own per
// instance: a repeating group (one instance per repetition), or a repeating
// question with questions under it (one instance per answer, its
// answer.item in FHIR).
func (it *Item) HasInstances() bool {
	return it.RepeatingGroup() || it.Answerable() && it.Repeats && len(it.members) > 0
}

// scopeOwner reports whether the items under the item are answered per
// instance of it: it is a repeating group, or a repeating question.
func (it *Item) scopeOwner() bool {
	return it.RepeatingGroup() || it.Answerable() && it.Repeats
}

// Scope is the nearest repeating group (or repeating question, see
// HasInstances) the item sits in, or nil when the item is answered at the
// top level. An item's answers are keyed by its
// linkId in the answers of its scope: at the top level, or in each
// instance of its repeating group (Value.Instance).
func (it *Item) Scope() *Item {
	return it.scope
}

// Members are the items answered directly within each instance of a
// repeating group (its questions and the repeating groups nested in it, but
// not what those hold), in document order; nil for other items.
func (it *Item) Members() []*Item {
	return it.members
}

// Members are the items answered at the top level of a submission (see
// Item.Scope), in document order.
func (q *Questionnaire) Members() []*Item {
	return q.members
}

// Parent returns the item the item sits in, or nil for a top-level item.
func (it *Item) Parent() *Item {
	return it.parent
}

// Path is the item's position in the form as linkIds joined by "/", e.g.
// "history/allergies"; Parse errors use it to point at the item.
func (it *Item) Path() string {
	return it.path
}

// FreeText reports whether a choice item has no options at all, so it takes
// free text (stored as valueString).
func (it *Item) FreeText() bool {
	return (it.Type == TypeChoice || it.Type == TypeOpenChoice) && len(it.Options) == 0
}

// FreeReference reports whether a reference item has no options, so the
// patient describes the record in text ("Dr Ana Ruiz, North clinic"). Its
// answer is a valueReference with a display only: no record id is ever
// taken from the public side, the clinic resolves the description.
func (it *Item) FreeReference() bool {
	return it.Type == TypeReference && len(it.Options) == 0
}

// EffectiveMaxLength is the limit Validate enforces on a free-text answer,
// in characters, so that HTML forms can set the same maxlength attribute.
// It is 0 for types without a length limit.
func (it *Item) EffectiveMaxLength() int {
	switch it.Type {
	case TypeString, TypeText, TypeOpenChoice, TypeChoice, TypeReference:
		if (it.Type == TypeChoice || it.Type == TypeReference) && len(it.Options) > 0 {
			return 0
		}
		if it.MaxLength > 0 {
			return it.MaxLength
		}
		return DefaultMaxLength
	case TypeURL:
		if it.MaxLength > 0 {
			return min(it.MaxLength, MaxURLLength)
		}
		return MaxURLLength
	}
	return 0
}

// Problem is one thing wrong with a form file: where (the item's path, ""
// for the Questionnaire itself) and what.
type Problem struct {
	LinkID, Path string
	Message      string
}

func (p Problem) String() string {
	switch {
	case p.Path == "":
		return p.Message
	case p.LinkID == "":
		return fmt.Sprintf("item at %s: %s", p.Path, p.Message)
	}
	return fmt.Sprintf("item %q (%s): %s", p.LinkID, p.Path, p.Message)
}

// ParseError lists every problem Parse found in a form.
type ParseError struct {
	Problems []Problem
}

// Error is the first problem, and how many more there are.
func (e *ParseError) Error() string {
	if len(e.Problems) == 0 {
		return "invalid questionnaire"
	}
	msg := "questionnaire: " + e.Problems[0].String()
	if n := len(e.Problems) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more problem%s)", n, plural(n))
	}
	return msg
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ParseOptions are what a form needs from its surroundings.
type ParseOptions struct {
	// BaseURL gives a form without a url its canonical url, BaseURL + "/" +
	// the form's id. When empty, such a form is refused.
	BaseURL string
	// FallbackID names a form whose file has no id (LoadDir passes the file
	// name without ".json").
	FallbackID string
	// ValueSets resolves canonical answerValueSet urls (with or without
	// |version); LoadDir reads them from the valuesets subdirectory.
	ValueSets map[string]*ValueSet
}

// Parse reads a FHIR R4 Questionnaire in the supported subset (see the
// package documentation) with the default options: built-in forms carry
// their own url. See ParseWith.
func Parse(data []byte) (*Questionnaire, error) {
	return ParseWith(data, ParseOptions{BaseURL: DefaultBaseURL})
}

// DefaultBaseURL is the base under which Parse names a form without a url.
const DefaultBaseURL = "https://airlock.dev/fhir/Questionnaire"

// Wire shapes of the supported subset. Child items are kept raw so that each
// is decoded on its own and a decoding error can name the item it is in.
type wireQuestionnaire struct {
	ResourceType      string            `json:"resourceType"`
	ID                *string           `json:"id"`
	URL               string            `json:"url"`
	Version           string            `json:"version"`
	Name              string            `json:"name"`
	Language          string            `json:"language"`
	Title             string            `json:"title"`
	TitleExt          *wirePrimitive    `json:"_title"`
	DescriptionExt    *wirePrimitive    `json:"_description"`
	Status            string            `json:"status"`
	Description       string            `json:"description"`
	Item              []json.RawMessage `json:"item"`
	Contained         []json.RawMessage `json:"contained"`
	Extension         []wireExtension   `json:"extension"`
	ModifierExtension []json.RawMessage `json:"modifierExtension"`
}

type wireItem struct {
	LinkID            *string           `json:"linkId"`
	Text              string            `json:"text"`
	TextExt           *wirePrimitive    `json:"_text"`
	Prefix            string            `json:"prefix"`
	PrefixExt         *wirePrimitive    `json:"_prefix"`
	Definition        string            `json:"definition"`
	Code              []Coding          `json:"code"`
	Type              string            `json:"type"`
	Required          bool              `json:"required"`
	Repeats           bool              `json:"repeats"`
	ReadOnly          bool              `json:"readOnly"`
	MaxLength         *int              `json:"maxLength"`
	Extension         []wireExtension   `json:"extension"`
	ModifierExtension []json.RawMessage `json:"modifierExtension"`
	AnswerOption      []wireOption      `json:"answerOption"`
	AnswerValueSet    string            `json:"answerValueSet"`
	Initial           []json.RawMessage `json:"initial"`
	EnableWhen        []wireEnableWhen  `json:"enableWhen"`
	EnableBehavior    string            `json:"enableBehavior"`
	Item              []json.RawMessage `json:"item"`
}

// ParseWith reads a FHIR R4 Questionnaire and checks it, so that a broken
// form fails when the server starts rather than when a patient submits it.
// The error is a *ParseError listing every problem found, each naming the
// item and its path, e.g.
// `item "allergies" (history/allergies): unsupported type "time"`.
// A UTF-8 byte-order mark before the JSON is accepted.
func ParseWith(data []byte, opts ParseOptions) (*Questionnaire, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var w wireQuestionnaire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, &ParseError{Problems: []Problem{{Message: describeJSONError(err)}}}
	}
	p := &parser{opts: opts, langs: map[language.Tag]bool{}}
	if w.ResourceType != "Questionnaire" {
		p.formProblem("resourceType is %q, want \"Questionnaire\"", clip(w.ResourceType))
		return nil, p.err()
	}
	q := &Questionnaire{
		URL:         w.URL,
		Version:     w.Version,
		Title:       strings.TrimSpace(w.Title),
		Description: w.Description,
		Status:      w.Status,
		Raw:         json.RawMessage(bytes.Clone(data)),
		byLinkID:    make(map[string]*Item),
	}
	p.q = q
	q.language = p.languageOf(w.Language)
	q.titleTr = p.translations(w.TitleExt, "title", p.formProblem)
	q.descriptionTr = p.translations(w.DescriptionExt, "description", p.formProblem)
	switch {
	case w.ID != nil && fhirIDPattern.MatchString(*w.ID):
		q.ResourceID = *w.ID
		q.ID = Slug(*w.ID)
	case w.ID != nil:
		p.formProblem("id %q is not a FHIR id ([A-Za-z0-9-.]{1,64})", clip(*w.ID))
	case opts.FallbackID != "":
		q.ID = strings.Trim(strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, strings.ToLower(opts.FallbackID)), "-")
		if len(q.ID) > 64 {
			q.ID = strings.TrimRight(q.ID[:64], "-")
		}
		q.ResourceID = q.ID
	default:
		p.formProblem("missing id")
	}
	if q.ID != "" && !slugPattern.MatchString(q.ID) {
		p.formProblem("id %q gives no usable URL slug (need a letter or digit first)", clip(q.ResourceID))
	}
	if len(w.ModifierExtension) > 0 {
		p.formProblem("modifierExtension is not supported (FHIR requires refusing what is not understood)")
	}
	if q.Title == "" {
		q.Title = strings.TrimSpace(w.Name)
	}
	if q.Title == "" {
		q.Title = q.ResourceID
	}
	if len(w.Version) > 64 || hasControl(w.Version, false) {
		p.formProblem("version must be at most 64 characters without control characters")
	}
	if strings.ContainsAny(w.URL, "|# \t\n") {
		p.formProblem("url %q must not contain |, # or spaces", clip(w.URL))
	}
	q.canonicalURL = w.URL
	if q.canonicalURL == "" {
		if opts.BaseURL == "" {
			p.formProblem("has no url, and no base URL for forms is configured to give it one")
		} else {
			q.canonicalURL = strings.TrimRight(opts.BaseURL, "/") + "/" + q.ID
		}
	}
	if len(w.Item) == 0 {
		p.formProblem("has no items")
	}
	p.contained(w.Contained)
	p.questionnaireExtensions(w.Extension)
	q.Items = p.items(w.Item, nil, "", 1)
	p.finishLanguages()
	if len(p.problems) == 0 {
		p.resolveEnableWhen()
	}
	if len(p.problems) == 0 {
		p.resolveExpressions()
	}
	if len(p.problems) > 0 {
		return nil, p.err()
	}
	q.inScope = itemsByScope(q.all)
	return q, nil
}

// Slug turns a FHIR id into the form's URL slug: lower case, "." as "-".
func Slug(id string) string {
	return strings.ReplaceAll(strings.ToLower(id), ".", "-")
}

type parser struct {
	q        *Questionnaire
	opts     ParseOptions
	problems []Problem
	// contained ValueSets by "#id"
	containedVS map[string]*ValueSet
	tooMany     bool
	langs       map[language.Tag]bool // languages the translations are in
}

func (p *parser) err() error {
	return &ParseError{Problems: p.problems}
}

func (p *parser) formProblem(format string, args ...any) {
	p.problems = append(p.problems, Problem{Message: fmt.Sprintf(format, args...)})
}

func (p *parser) itemProblem(linkID, path, format string, args ...any) {
	p.problems = append(p.problems, Problem{LinkID: linkID, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) items(raws []json.RawMessage, parent *Item, parentPath string, depth int) []*Item {
	if depth > maxDepth {
		p.itemProblem("", parentPath, "items nested more than %d deep", maxDepth)
		return nil
	}
	out := make([]*Item, 0, len(raws))
	for i, raw := range raws {
		if it := p.item(raw, parent, parentPath, i, depth); it != nil {
			out = append(out, it)
		}
	}
	return out
}

func (p *parser) item(raw json.RawMessage, parent *Item, parentPath string, index, depth int) *Item {
	// Until the linkId is known, the item is named by its position.
	path := fmt.Sprintf("item[%d]", index)
	if parentPath != "" {
		path = parentPath + "/" + path
	}
	if len(p.q.all) >= maxItems {
		if !p.tooMany {
			p.itemProblem("", path, "a form may have at most %d items", maxItems)
			p.tooMany = true
		}
		return nil
	}
	var w wireItem
	if err := json.Unmarshal(raw, &w); err != nil {
		// Name the item by its linkId if that much can be read.
		var named struct {
			LinkID string `json:"linkId"`
		}
		if json.Unmarshal(raw, &named) == nil && validLinkID(named.LinkID) {
			p.itemProblem(named.LinkID, joinPath(parentPath, named.LinkID), "%s", describeJSONError(err))
		} else {
			p.itemProblem("", path, "%s", describeJSONError(err))
		}
		return nil
	}
	if w.LinkID == nil || *w.LinkID == "" {
		p.itemProblem("", path, "missing linkId")
		return nil
	}
	if !validLinkID(*w.LinkID) {
		p.itemProblem("", path, "linkId %q must be at most 255 characters without spaces or control characters", clip(*w.LinkID))
		return nil
	}
	it := &Item{
		LinkID:           *w.LinkID,
		Text:             w.Text,
		Prefix:           strings.TrimSpace(w.Prefix),
		Definition:       w.Definition,
		Type:             w.Type,
		Required:         w.Required,
		Repeats:          w.Repeats,
		ReadOnly:         w.ReadOnly,
		Carried:          true,
		MaxDecimalPlaces: -1,
		EnableBehavior:   w.EnableBehavior,
		parent:           parent,
		index:            len(p.q.all),
		path:             joinPath(parentPath, *w.LinkID),
	}
	fail := func(format string, args ...any) {
		p.itemProblem(it.LinkID, it.path, format, args...)
	}
	if _, dup := p.q.byLinkID[it.LinkID]; dup {
		fail("duplicate linkId")
		return nil
	}
	if parent != nil {
		it.scope = parent.scope
		if parent.RepeatingGroup() || parent.Answerable() && parent.Repeats {
			// Each instance of a repeating group, and each answer of a
			// repeating question, holds its own answers to what is inside.
			it.scope = parent
		}
	}
	p.q.byLinkID[it.LinkID] = it
	p.q.all = append(p.q.all, it)
	it.textTr = p.translations(w.TextExt, "text", fail)
	it.prefixTr = p.translations(w.PrefixExt, "prefix", fail)

	it.Label = strings.TrimSpace(it.Text)
	if it.Label == "" {
		for _, c := range w.Code {
			if d := strings.TrimSpace(c.Display); d != "" {
				it.Label = d
				break
			}
		}
	}
	if it.Label == "" && it.Type != TypeGroup {
		it.Label = it.LinkID
	}

	switch it.Type {
	case "":
		fail("missing type")
		return it
	case TypeGroup, TypeDisplay, TypeString, TypeText, TypeInteger, TypeDecimal, TypeDate,
		TypeDateTime, TypeBoolean, TypeChoice, TypeOpenChoice, TypeAttachment, TypeQuantity, TypeTime, TypeURL:
	case TypeReference:
		if w.AnswerValueSet != "" {
			fail("answerValueSet on a reference item: a ValueSet holds codes, not references; list the records the patient may pick as answerOption valueReference, or leave the item without options so the patient describes the record")
			return it
		}
	case "question":
		fail("unsupported type \"question\" (an STU3 type; R4 has no such type)")
		return it
	default:
		fail("unsupported type %q", clip(it.Type))
		return it
	}
	if it.Answerable() {
		p.q.questions = append(p.q.questions, it)
	}
	if it.Answerable() || it.RepeatingGroup() {
		if it.scope == nil {
			p.q.members = append(p.q.members, it)
		} else {
			it.scope.members = append(it.scope.members, it)
		}
	}
	if len(w.ModifierExtension) > 0 {
		fail("modifierExtension is not supported (FHIR requires refusing what is not understood)")
	}
	if parent != nil && !parent.Carried {
		it.Carried = false
	}
	switch it.Type {
	case TypeGroup:
		if len(w.Item) == 0 {
			fail("group has no items")
		}
		if it.ReadOnly {
			it.ReadOnly = false // a group holds no answer of its own
		}
	case TypeDisplay:
		if it.Required || it.Repeats {
			fail("a display item cannot be required or repeat")
		}
		it.ReadOnly = false
	}

	if w.MaxLength != nil {
		switch it.Type {
		case TypeString, TypeText, TypeOpenChoice, TypeChoice, TypeURL, TypeReference:
		default:
			fail("maxLength is only supported on string, text, url, choice, open-choice and reference items")
		}
		if *w.MaxLength < 1 || *w.MaxLength > maxMaxLength {
			fail("maxLength must be between 1 and %d", maxMaxLength)
		} else {
			it.MaxLength = *w.MaxLength
		}
	}

	p.extensions(it, w.Extension, fail)
	if it.Calculated != nil {
		// Inside repeating groups each instance gets its own value (see
		// Calculate); under the answers of a repeating question there is
		// no group item to be %context, so it is refused.
		for s := it.scope; s != nil; s = s.scope {
			if !s.RepeatingGroup() {
				fail("calculatedExpression under the answers of a repeating question is not supported")
				break
			}
		}
	}
	p.options(it, &w, fail)
	p.initial(it, w.Initial, fail)

	switch it.EnableBehavior {
	case "":
		it.EnableBehavior = "all"
		if len(w.EnableWhen) > 1 {
			// FHIR constraint que-12.
			fail("enableBehavior is required when there is more than one enableWhen (FHIR que-12)")
		}
	case "all", "any":
	default:
		fail("unsupported enableBehavior %q", clip(it.EnableBehavior))
	}
	for i, ew := range w.EnableWhen {
		cond, err := enableWhenFromWire(ew)
		if err != nil {
			fail("enableWhen[%d]: %v", i, err)
			continue
		}
		it.EnableWhen = append(it.EnableWhen, cond)
	}

	it.Items = p.items(w.Item, it, it.path, depth+1)
	for _, c := range it.Items {
		if c.Type == TypeDisplay && it.Type != TypeGroup && c.Label != "" && len(c.EnableWhen) == 0 {
			it.Hints = append(it.Hints, strings.TrimSpace(c.Text))
			it.hintItems = append(it.hintItems, c)
		}
	}
	return it
}

// Identity names the items that hold who the patient is, found by
// item.definition (SDC definition-based extraction) rather than by linkId:
// any form that marks its items so is listed by name in clinical.
type Identity struct {
	Family, Given, BirthDate string   // linkIds, "" when the form has none
	Telecom                  []string // linkIds of contact details (Patient.telecom...)
}

// Element paths of the Patient resource that item.definition may name, after
// "#" (for example
// "http://hl7.org/fhir/StructureDefinition/Patient#Patient.name.family").
const (
	DefinitionFamily    = "Patient.name.family"
	DefinitionGiven     = "Patient.name.given"
	DefinitionBirthDate = "Patient.birthDate"
	DefinitionTelecom   = "Patient.telecom"
)

// DefinitionPath is the element path an item's definition names ("" when
// it names none).
func (it *Item) DefinitionPath() string {
	_, frag, ok := strings.Cut(it.Definition, "#")
	if !ok {
		return ""
	}
	return frag
}

// Identity returns the form's identity items: the first question whose
// definition names each element, outside repeating groups.
func (q *Questionnaire) Identity() Identity {
	var id Identity
	for _, it := range q.questions {
		if it.scope != nil {
			continue // one of many instances: not the patient's own
		}
		switch p := it.DefinitionPath(); {
		case p == DefinitionFamily && id.Family == "":
			id.Family = it.LinkID
		case p == DefinitionGiven && id.Given == "":
			id.Given = it.LinkID
		case p == DefinitionBirthDate && id.BirthDate == "":
			id.BirthDate = it.LinkID
		case p == DefinitionTelecom || strings.HasPrefix(p, DefinitionTelecom+"."):
			id.Telecom = append(id.Telecom, it.LinkID)
		}
	}
	return id
}
