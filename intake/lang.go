package intake

import (
	"net/url"

	"github.com/labstack/echo/v4"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/locale"
)

// langParam is the query parameter that picks a page's language. It wins
// over Accept-Language, so the language switch works with plain links.
const langParam = "lang"

// langLink is one entry of the language switch.
type langLink struct {
	Tag, Name, URL string
	Current        bool
}

// siteLanguages are the languages intake's own pages (the list of forms,
// error pages, result links) are offered in: those of the catalogue.
func (s *Server) siteLanguages() []language.Tag {
	return s.catalogue.Languages()
}

// formLanguages are the languages a form is offered in: its own language
// first, then each language its translations carry that intake has pages
// for. (A translation into a language without a catalogue is not offered:
// the page around it would be in another language; serve logs it.)
func (s *Server) formLanguages(q *forms.Questionnaire) []language.Tag {
	langs := q.Languages()
	out := langs[:1:1]
	for _, t := range langs[1:] {
		if s.catalogue.Supports(t) {
			out = append(out, t)
		}
	}
	return out
}

// printerFor chooses the language of a request among offered: ?lang=, then
// Accept-Language, then the first offered.
func (s *Server) printerFor(c echo.Context, offered []language.Tag) *locale.Printer {
	tag := locale.Match(offered, c.QueryParam(langParam), c.Request().Header.Get("Accept-Language"))
	return s.catalogue.Printer(tag)
}

// newPage is the part of a page every template sees, in pr's language.
// With switchPath set and more than one language offered, the page carries
// a language switch: plain links to switchPath?lang=..., no script.
func (s *Server) newPage(pr *locale.Printer, title string, offered []language.Tag, switchPath string) page {
	p := page{Site: pr.T("intake.site"), Title: title, CSS: cssPath, Lang: pr.Lang().String(), pr: pr}
	if switchPath != "" && len(offered) > 1 {
		for _, t := range offered {
			p.Languages = append(p.Languages, langLink{
				Tag:     t.String(),
				Name:    languageName(t),
				URL:     switchPath + "?" + url.Values{langParam: {t.String()}}.Encode(),
				Current: t == pr.Lang(),
			})
		}
	}
	return p
}

// languageName is a language's name in itself ("español", "English"), so a
// reader finds their own whatever the page's language.
func languageName(t language.Tag) string {
	if n := display.Self.Name(t); n != "" {
		return n
	}
	return t.String()
}

// withLang adds the page's language to a URL of intake's own, so the next
// page (the receipt, the form again) stays in it.
func withLang(path string, pr *locale.Printer) string {
	return path + "?" + url.Values{langParam: {pr.Lang().String()}}.Encode()
}
