package intake

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/text/language"

	"github.com/airlockhq/airlock/shared/locale"
)

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static/intake.css
var stylesheet []byte

// cssPath carries a digest of the stylesheet so it can be cached for ever
// and still change with a new release.
var cssPath = func() string {
	sum := sha256.Sum256(stylesheet)
	return "/static/intake.css?v=" + hex.EncodeToString(sum[:6])
}()

// pages holds the parsed template sets: per page (each with the layout),
// one per catalogue language.
type pages map[string]map[language.Tag]*template.Template

// loadPages parses every page once per catalogue language, with the
// template function t bound to that language's messages: every fixed word
// of a template is {{t KEY args...}}, its text from the catalogue
// (shared/locale). (Parsing per language at start-up, rather than cloning
// a template set per request to bind t, keeps a request's rendering free
// of that copy: a clone cost ~0.5 ms and ~2,900 allocations.)
func loadPages(cat *locale.Catalogue) pages {
	p := pages{}
	for _, name := range []string{"index", "form", "receipt", "error", "result"} {
		p[name] = map[language.Tag]*template.Template{}
		for _, tag := range cat.Languages() {
			pr := cat.Printer(tag)
			p[name][tag] = template.Must(template.New("layout").Funcs(template.FuncMap{"t": pr.T, "nowrap": keepTogether, "groups": receiptGroups}).
				ParseFS(templateFS, "web/templates/layout.html", "web/templates/"+name+".html"))
		}
	}
	return p
}

// unbreakable are the tokens of hints and messages that must not break
// across lines on a narrow screen: example dates and times
// (1980-03-27, 2024-03-27T14:30:00+01:00) and phone numbers.
var unbreakable = regexp.MustCompile(`\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)?)?|\+\d[\d ]{6,}\d`)

// keepTogether escapes text for HTML and wraps each unbreakable token in
// a span the stylesheet keeps on one line.
func keepTogether(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range unbreakable.FindAllStringIndex(text, -1) {
		b.WriteString(template.HTMLEscapeString(text[last:m[0]]))
		b.WriteString(`<span class="nowrap">`)
		b.WriteString(template.HTMLEscapeString(text[m[0]:m[1]]))
		b.WriteString(`</span>`)
		last = m[1]
	}
	b.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(b.String())
}

// receiptGroups shows a receipt or correction code (groups of four joined
// by "-") so that a line breaks only between groups: each group with its
// dash is kept together, with a break opportunity after it. Copied, it
// reads as it was.
func receiptGroups(code string) template.HTML {
	parts := strings.Split(code, "-")
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString("<wbr>")
		}
		b.WriteString(`<span class="nowrap">`)
		b.WriteString(template.HTMLEscapeString(p))
		if i < len(parts)-1 {
			b.WriteString("-")
		}
		b.WriteString("</span>")
	}
	return template.HTML(b.String())
}

// page is what every template sees.
type page struct {
	Site, Title, CSS string
	HasErrors        bool
	Lang             string     // <html lang>
	Languages        []langLink // the language switch; empty when there is no choice
	// SwitchForm, on a form's page, is the id of the form the switch
	// posts (with SwitchField set): the page is drawn again in the chosen
	// language with everything typed so far, instead of a link that would
	// lose it. The layout then starts with a hidden Send button for the
	// form: Enter in a field submits with the first submit button of the
	// form in document order, which would otherwise be the switch's.
	SwitchForm, SwitchField string

	pr *locale.Printer
}

func (p page) printer() *locale.Printer { return p.pr }

// pageData is any page's data: it embeds a page, made by newPage.
type pageData interface{ printer() *locale.Printer }

// render writes a page in full only once it has executed without error, so
// a template failure never leaves half a page behind.
func (s *Server) render(c echo.Context, status int, name string, data pageData) error {
	pr := data.printer()
	if pr == nil {
		pr = s.catalogue.Printer(locale.Base)
	}
	t := s.pages[name][pr.CatalogueLang()]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return err
	}
	c.Response().Header().Set("Content-Language", pr.Lang().String())
	return c.HTMLBlob(status, buf.Bytes())
}

func (s *Server) handleCSS(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", stylesheet)
}

type indexPage struct {
	page
	Forms []indexEntry
}

type indexEntry struct{ Href, Title, Description string }

// handleIndex lists the forms, each title in the page's language when the
// form carries it, and links to each form in that language.
func (s *Server) handleIndex(c echo.Context) error {
	s.forgetReceipt(c) // as handleFormPage: a new visit
	pr := s.printerFor(c, s.siteLanguages())
	data := indexPage{page: s.newPage(pr, pr.T("intake.index.title"), s.siteLanguages(), "/")}
	for _, q := range s.forms.List() {
		href := "/forms/" + q.ID
		if pr.Lang() != q.Language() && slices.Contains(s.formLanguages(q), pr.Lang()) {
			href = withLang(href, pr)
		}
		data.Forms = append(data.Forms, indexEntry{Href: href, Title: q.TitleIn(pr.Lang()), Description: q.DescriptionIn(pr.Lang())})
	}
	return s.render(c, http.StatusOK, "index", data)
}

type errorPage struct {
	page
	Message, Back, BackText string
}
