// Package locale holds Airlock's message catalogues: every fixed string a
// patient reads (intake's pages) and every validation message (shared/forms)
// is named by a key and written once per language in messages/<tag>.json.
//
// Code never assembles English with fmt: it returns a Message (a key and its
// parameters, as miniflux's locale.NewLocalizedError does) and the page that
// shows it renders it with a Printer for the reader's language. Lookup,
// language fallback (es-MX reads es), plural forms and number formatting are
// golang.org/x/text/message's; choosing a language from ?lang= and
// Accept-Language is golang.org/x/text/language's matcher.
//
// A catalogue file is a JSON object from key to text. The text is a fmt
// format (%s, %d, %[2]s to reorder parameters). A text that depends on a
// number is an object of CLDR plural forms selected by the first parameter:
// {"one": "%d character", "other": "%d characters"}.
package locale

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

//go:embed messages/*.json
var builtin embed.FS

// Base is the language every key is written in first, and the one logs and
// the clinic's side use.
var Base = language.English

// Message is text for a person, named by its catalogue key, with the
// parameters the text places. Parameters are never values a patient
// submitted: they are limits, form text (as a Localizer) or other Messages.
type Message struct {
	Key  string
	Args []any
}

// New returns the message with the given key and parameters.
func New(key string, args ...any) Message {
	return Message{Key: key, Args: args}
}

// IsZero reports whether m names no message.
func (m Message) IsZero() bool { return m.Key == "" }

// String renders the message in the base language (for logs and errors).
func (m Message) String() string {
	return Default().Printer(Base).Sprint(m)
}

// Localizer is a parameter whose text depends on the language: form text
// that a Questionnaire carries in translations. lang is the BCP 47 tag the
// page is rendered in.
type Localizer interface {
	Localize(lang language.Tag) string
}

// Catalogue is a set of languages and their messages.
type Catalogue struct {
	builder *catalog.Builder
	tags    []language.Tag // Base first, then the others in tag order
	matcher language.Matcher
	keys    map[language.Tag]map[string]bool
}

var defaultCatalogue = sync.OnceValue(func() *Catalogue {
	c, err := Load(builtin)
	if err != nil {
		panic(err) // TestBuiltinCatalogueComplete says which key
	}
	return c
})

// Default is the catalogue built into the binary.
func Default() *Catalogue { return defaultCatalogue() }

// Load reads messages/<tag>.json files from fsys. The base language's file
// must exist; every other file must translate exactly its keys, with the
// same parameters, so a language is never half there: a missing, extra or
// differently parameterised key is an error naming the file and the key.
func Load(fsys fs.FS) (*Catalogue, error) {
	files, err := fs.Glob(fsys, "messages/*.json")
	if err != nil {
		return nil, err
	}
	c := &Catalogue{
		builder: catalog.NewBuilder(catalog.Fallback(Base)),
		keys:    map[language.Tag]map[string]bool{},
	}
	texts := map[language.Tag]map[string]json.RawMessage{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".json")
		tag, err := language.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("catalogue %s: file name is not a language tag: %v", f, err)
		}
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("catalogue %s: %v", f, err)
		}
		texts[tag] = m
	}
	base, ok := texts[Base]
	if !ok {
		return nil, fmt.Errorf("catalogue: no messages/%s.json", Base)
	}
	c.tags = append(c.tags, Base)
	for tag := range texts {
		if tag != Base {
			c.tags = append(c.tags, tag)
		}
	}
	slices.SortFunc(c.tags[1:], func(a, b language.Tag) int { return strings.Compare(a.String(), b.String()) })
	for _, tag := range c.tags {
		keys := map[string]bool{}
		for key, raw := range texts[tag] {
			if _, ok := base[key]; !ok {
				return nil, fmt.Errorf("catalogue %s: key %q is not in %s.json", tag, key, Base)
			}
			msg, verbs, err := parseText(raw)
			if err != nil {
				return nil, fmt.Errorf("catalogue %s: key %q: %v", tag, key, err)
			}
			if tag != Base {
				_, baseVerbs, _ := parseText(base[key])
				if !slices.Equal(verbs, baseVerbs) {
					return nil, fmt.Errorf("catalogue %s: key %q places parameters %v, %s places %v", tag, key, verbs, Base, baseVerbs)
				}
			}
			if err := c.builder.Set(tag, key, msg); err != nil {
				return nil, fmt.Errorf("catalogue %s: key %q: %v", tag, key, err)
			}
			keys[key] = true
		}
		c.keys[tag] = keys
		if tag != Base {
			var missing []string
			for key := range base {
				if !keys[key] {
					missing = append(missing, key)
				}
			}
			if len(missing) > 0 {
				slices.Sort(missing)
				return nil, fmt.Errorf("catalogue %s: no text for %d keys of %s.json: %s", tag, len(missing), Base, strings.Join(missing, ", "))
			}
		}
	}
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

// parseText turns one catalogue value into a catalog.Message, and lists the
// parameters it places (for the check that translations place the same).
func parseText(raw json.RawMessage) (catalog.Message, []string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return catalog.String(s), verbsOf(s), nil
	}
	var forms map[string]string
	if err := json.Unmarshal(raw, &forms); err != nil {
		return nil, nil, fmt.Errorf("want a string or an object of plural forms")
	}
	other, ok := forms["other"]
	if !ok {
		return nil, nil, fmt.Errorf("plural forms need \"other\"")
	}
	var cases []any
	for _, form := range []string{"zero", "one", "two", "few", "many", "other"} {
		if text, ok := forms[form]; ok {
			cases = append(cases, form, text)
			delete(forms, form)
		}
	}
	if len(forms) > 0 {
		return nil, nil, fmt.Errorf("unknown plural forms (want zero, one, two, few, many, other)")
	}
	return plural.Selectf(1, "", cases...), verbsOf(other), nil
}

// verbsOf lists the fmt verbs of a format, sorted, with their explicit
// argument indexes, e.g. ["%[1]s", "%d"].
func verbsOf(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(s) && strings.IndexByte("+-# 0123456789.[]", s[j]) >= 0 {
			j++
		}
		if j < len(s) {
			if s[j] != '%' {
				out = append(out, normaliseVerb(s[i:j+1]))
			}
			i = j
		}
	}
	slices.Sort(out)
	return out
}

// normaliseVerb keeps what matters for comparing texts: the verb letter.
// (Translations may reorder parameters with %[n]s.)
func normaliseVerb(v string) string { return v[len(v)-1:] }

// Languages lists the catalogue's languages, the base language first.
func (c *Catalogue) Languages() []language.Tag { return slices.Clone(c.tags) }

// Has reports whether the catalogue has a text for key in tag's language
// (not by fallback).
func (c *Catalogue) Has(tag language.Tag, key string) bool {
	return c.keys[tag][key]
}

// Keys lists the keys of the base language, sorted.
func (c *Catalogue) Keys() []string {
	var out []string
	for k := range c.keys[Base] {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Match picks the best of offered for a reader who asked for query (the
// ?lang= parameter, may be empty) and sent acceptLanguage (the header, may
// be empty). query wins when it names an offered language (or a regional
// variant of one); otherwise the
// header is matched; otherwise the first offered language (the form's own)
// is used. offered must not be empty.
func Match(offered []language.Tag, query, acceptLanguage string) language.Tag {
	m := language.NewMatcher(offered)
	if query != "" {
		// ?lang=es-MX picks es when es is offered; a language not offered
		// leaves the choice to the header.
		if t, err := language.Parse(query); err == nil {
			if _, i, conf := m.Match(t); conf >= language.High {
				return offered[i]
			}
		}
	}
	if acceptLanguage != "" {
		if _, i, conf := m.Match(parseAccept(acceptLanguage)...); conf != language.No {
			return offered[i]
		}
	}
	return offered[0]
}

// parseAccept reads an Accept-Language header; a malformed one counts as
// absent (the reader still gets a page).
func parseAccept(h string) []language.Tag {
	tags, _, err := language.ParseAcceptLanguage(h)
	if err != nil {
		return nil
	}
	return tags
}

// Printer renders messages in one language.
type Printer struct {
	tag language.Tag // the reader's language
	cat language.Tag // the catalogue language its messages come from
	p   *message.Printer
}

// Printer returns a printer for tag. Its messages come from the closest
// catalogue language (es for es-MX; the base language when none is close);
// Localizer parameters (form text) are asked for tag itself.
func (c *Catalogue) Printer(tag language.Tag) *Printer {
	cat := Base
	if _, i, conf := c.matcher.Match(tag); conf != language.No {
		cat = c.tags[i]
	}
	return &Printer{tag: tag, cat: cat, p: message.NewPrinter(cat, message.Catalog(c.builder))}
}

// Supports reports whether the catalogue has a language close enough to
// tag to print its pages (es serves es-MX).
func (c *Catalogue) Supports(tag language.Tag) bool {
	_, _, conf := c.matcher.Match(tag)
	return conf >= language.High
}

// Lang is the printer's language.
func (p *Printer) Lang() language.Tag { return p.tag }

// CatalogueLang is the catalogue language the printer's messages come from
// (es for a printer in es-MX): the same for every printer whose messages
// read the same.
func (p *Printer) CatalogueLang() language.Tag { return p.cat }

// T renders the text of key with args.
func (p *Printer) T(key string, args ...any) string {
	return p.Sprint(Message{Key: key, Args: args})
}

// Sprint renders a message; parameters that are Messages or Localizers are
// rendered in the same language first.
func (p *Printer) Sprint(m Message) string {
	if m.Key == "" {
		return ""
	}
	args := make([]any, len(m.Args))
	for i, a := range m.Args {
		switch a := a.(type) {
		case Message:
			args[i] = p.Sprint(a)
		case Localizer:
			args[i] = a.Localize(p.tag)
		default:
			args[i] = a
		}
	}
	return p.p.Sprintf(m.Key, args...)
}
