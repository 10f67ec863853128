package forms

import (
	"encoding/json"
	"slices"
	"strings"

	"golang.org/x/text/language"

	"github.com/airlockhq/airlock/shared/locale"
)

// TranslationExtensionURL is FHIR's extension on a primitive element
// (_text, _prefix, _title, valueCoding._display, _valueString...) carrying
// the element's text in another language: nested extensions "lang"
// (valueCode, a BCP 47 tag) and "content" (valueString).
const TranslationExtensionURL = "http://hl7.org/fhir/StructureDefinition/translation"

// Translations is an element's text by language, from translation
// extensions. The base-language text is kept beside it, not in it.
type Translations map[language.Tag]string

// wirePrimitive is the "_element" companion of a primitive: its extensions.
type wirePrimitive struct {
	Extension []wireTranslation `json:"extension"`
}

type wireTranslation struct {
	URL       string `json:"url"`
	Extension []struct {
		URL         string  `json:"url"`
		ValueCode   *string `json:"valueCode"`
		ValueString *string `json:"valueString"`
	} `json:"extension"`
}

// translations reads the translation extensions of one element. Other
// extensions on a primitive (rendering-xhtml, rendering-style...) only
// change presentation and are left to the base text. A translation without
// a valid lang or with empty content is a problem: it would be shown blank.
func (p *parser) translations(w *wirePrimitive, element string, fail func(string, ...any)) Translations {
	if w == nil {
		return nil
	}
	var out Translations
	for _, ext := range w.Extension {
		if ext.URL != TranslationExtensionURL {
			continue
		}
		var lang, content string
		for _, sub := range ext.Extension {
			switch {
			case sub.URL == "lang" && sub.ValueCode != nil:
				lang = *sub.ValueCode
			case sub.URL == "content" && sub.ValueString != nil:
				content = strings.TrimSpace(*sub.ValueString)
			}
		}
		tag, err := language.Parse(lang)
		switch {
		case err != nil || lang == "":
			fail("%s: translation needs a lang (valueCode, a language tag such as \"es\")", element)
			continue
		case content == "":
			fail("%s: translation into %s has no content (valueString)", element, clip(lang))
			continue
		}
		if out == nil {
			out = Translations{}
		}
		if _, dup := out[tag]; dup {
			fail("%s: two translations into %s", element, tag)
			continue
		}
		out[tag] = content
		p.langs[tag] = true
	}
	return out
}

// in returns the text for lang: its own translation, else one into the
// same base language (es-MX reads es), else base.
func (t Translations) in(lang language.Tag, base string) string {
	if s, ok := t[lang]; ok {
		return s
	}
	b, _ := lang.Base()
	for tag, s := range t {
		if tb, _ := tag.Base(); tb == b {
			return s
		}
	}
	return base
}

// Language is the form's own language: its "language" element, or
// locale.Base when it has none. Item.Text and Option.Display are in it;
// the clinic reads answers under these texts whatever language the
// patient used.
func (q *Questionnaire) Language() language.Tag { return q.language }

// Languages lists the languages the form can be read in: its own first,
// then every language any of its translations is in, in tag order.
func (q *Questionnaire) Languages() []language.Tag {
	return slices.Clone(q.languages)
}

// TitleIn is the form's title in lang.
func (q *Questionnaire) TitleIn(lang language.Tag) string {
	return q.titleTr.in(lang, q.Title)
}

// DescriptionIn is the form's description in lang.
func (q *Questionnaire) DescriptionIn(lang language.Tag) string {
	return q.descriptionTr.in(lang, q.Description)
}

// LabelIn is the item's label in lang (Label when there is no translation).
func (it *Item) LabelIn(lang language.Tag) string {
	if it.Text == "" {
		return it.Label
	}
	return it.textTr.in(lang, it.Label)
}

// PrefixIn is the item's prefix in lang.
func (it *Item) PrefixIn(lang language.Tag) string {
	return it.prefixTr.in(lang, it.Prefix)
}

// HintsIn are the item's hints (its display children) in lang.
func (it *Item) HintsIn(lang language.Tag) []string {
	out := make([]string, 0, len(it.Hints))
	for _, c := range it.hintItems {
		out = append(out, c.textTr.in(lang, strings.TrimSpace(c.Text)))
	}
	return out
}

// EntryFormatIn is the entryFormat hint in lang.
func (it *Item) EntryFormatIn(lang language.Tag) string {
	return it.entryFormatTr.in(lang, it.EntryFormat)
}

// LabelIn is the option's label in lang.
func (o Option) LabelIn(lang language.Tag) string {
	return o.labelTr.in(lang, o.Label())
}

// ItemLabel is an item's label as a message parameter: rendered in the
// reader's language.
type ItemLabel struct{ Item *Item }

// Localize implements locale.Localizer.
func (l ItemLabel) Localize(lang language.Tag) string {
	return strings.TrimRight(l.Item.LabelIn(lang), " :")
}

// OptionLabel is an option's label as a message parameter.
type OptionLabel struct{ Option Option }

// Localize implements locale.Localizer.
func (l OptionLabel) Localize(lang language.Tag) string { return l.Option.LabelIn(lang) }

type entryFormatText struct{ it *Item }

func (e entryFormatText) Localize(lang language.Tag) string { return e.it.EntryFormatIn(lang) }

// entryFormatText is the entryFormat as a message parameter.
func (it *Item) entryFormatText() locale.Localizer { return entryFormatText{it} }

// EnableCondition says in words when an item applies, as a message ("your
// answer to “Allergies” is “Yes”", joined by "and"/"or"), and false when
// the item has no enableWhen.
func (q *Questionnaire) EnableCondition(it *Item) (locale.Message, bool) {
	var conds []locale.Message
	for _, ew := range it.EnableWhen {
		if c, ok := q.conditionMessage(ew); ok {
			conds = append(conds, c)
		}
	}
	if len(conds) == 0 {
		return locale.Message{}, false
	}
	join := "forms.when.and"
	if it.EnableBehavior == "any" {
		join = "forms.when.or"
	}
	out := conds[0]
	for _, c := range conds[1:] {
		out = locale.New(join, out, c)
	}
	return out, true
}

func (q *Questionnaire) conditionMessage(ew EnableWhen) (locale.Message, bool) {
	target := q.byLinkID[ew.Question]
	if target == nil {
		return locale.Message{}, false
	}
	name := ItemLabel{target}
	if ew.Operator == "exists" {
		if ew.Answer.ValueBoolean != nil && *ew.Answer.ValueBoolean {
			return locale.New("forms.when.answered", name), true
		}
		return locale.New("forms.when.not_answered", name), true
	}
	key := map[string]string{"=": "forms.when.eq", "!=": "forms.when.ne", ">": "forms.when.gt", "<": "forms.when.lt", ">=": "forms.when.ge", "<=": "forms.when.le"}[ew.Operator]
	if key == "" {
		return locale.Message{}, false
	}
	return locale.New(key, name, answerText(target, ew.Answer)), true
}

// answerText is an enableWhen answer (form content, never a patient's) as a
// message parameter.
func answerText(target *Item, v Value) any {
	switch {
	case v.ValueBoolean != nil:
		if *v.ValueBoolean {
			return locale.New("forms.yes")
		}
		return locale.New("forms.no")
	case v.ValueCoding != nil:
		for _, o := range target.Options {
			if o.Code == v.ValueCoding.Code && (v.ValueCoding.System == "" || o.System == "" || o.System == v.ValueCoding.System) {
				return OptionLabel{o}
			}
		}
		if v.ValueCoding.Display != "" {
			return v.ValueCoding.Display
		}
		return v.ValueCoding.Code
	case v.ValueReference != nil:
		for _, o := range target.Options {
			if o.Reference == v.ValueReference.Reference {
				return OptionLabel{o}
			}
		}
	case v.ValueString != nil:
		for _, o := range target.Options {
			if o.String == *v.ValueString {
				return OptionLabel{o}
			}
		}
	}
	return v.String()
}

// notApplicable explains why an answered item does not apply: the question
// above it is unanswered, or the condition (of it or of a group around it)
// that does not hold.
func (r *scopeRun) notApplicable(it *Item) locale.Message {
	run := r
	for cur := it; cur != nil && run != nil; cur = cur.parent {
		if len(cur.EnableWhen) > 0 && run.conditions(cur) == stateNo {
			if cond, ok := run.v.q.EnableCondition(cur); ok {
				return locale.New(MsgNotApplicable, cond)
			}
		}
		p := cur.parent
		if p == nil {
			break
		}
		if p == run.scope {
			run = run.parent // the group of an instance lives in the run above
			if run == nil {
				break
			}
		}
		if p.Answerable() && run.enabled(p) == stateYes && len(run.answers[p.LinkID]) == 0 {
			return locale.New(MsgNotApplicableParent, ItemLabel{p})
		}
	}
	return locale.New(MsgNotApplicableParent, ItemLabel{it}) // not reached: the item is disabled for a reason above
}

// languageOf parses the Questionnaire's language element.
func (p *parser) languageOf(lang string) language.Tag {
	if lang == "" {
		return locale.Base
	}
	tag, err := language.Parse(lang)
	if err != nil {
		p.formProblem("language %q is not a language tag", clip(lang))
		return locale.Base
	}
	return tag
}

// finishLanguages lists the form's languages: its own, then the others.
func (p *parser) finishLanguages() {
	q := p.q
	q.languages = []language.Tag{q.language}
	var others []language.Tag
	for tag := range p.langs {
		if tag != q.language {
			others = append(others, tag)
		}
	}
	slices.SortFunc(others, func(a, b language.Tag) int { return strings.Compare(a.String(), b.String()) })
	q.languages = append(q.languages, others...)
}

// Applies reports, for every item, whether it applies given raw answers as
// Validate takes them: its enableWhen holds and the question it sits under
// is answered. Keys are field names: the linkId, or within an instance of a
// repeating group given in raw the instance's prefix and the linkId
// ("meds[2]/dose"). An item whose conditions depend on an answer that is
// itself invalid counts as applying. A form without script uses it to mark
// as required only the questions that apply to the answers given so far.
func (q *Questionnaire) Applies(raw map[string]json.RawMessage) map[string]bool {
	v := newValidation(q)
	top := v.newRun(nil, nil, "")
	top.decode(raw)
	out := make(map[string]bool, len(v.inScope[nil]))
	top.applies(out)
	return out
}

// applies records whether each item of the run and its instances applies.
func (r *scopeRun) applies(out map[string]bool) {
	for _, it := range r.v.inScope[r.scope] {
		out[r.prefix+it.LinkID] = r.enabled(it) != stateNo
		if it.RepeatingGroup() {
			for _, c := range r.instances[it] {
				c.applies(out)
			}
		}
	}
}

// OptionByLabel finds the option whose label, in the form's own language
// or any translation, is text (ignoring case and surrounding space). An
// open-choice box offers the labels as suggestions in the page's
// language; a picked suggestion is stored as the option it names.
func (it *Item) OptionByLabel(text string) (Option, bool) {
	text = strings.TrimSpace(text)
	for _, o := range it.Options {
		if strings.EqualFold(o.Label(), text) {
			return o, true
		}
		for _, l := range o.labelTr {
			if strings.EqualFold(l, text) {
				return o, true
			}
		}
	}
	return Option{}, false
}
