package intake

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static/intake.css
var stylesheet []byte

// siteName heads every page.
const siteName = "Clinic forms"

// cssPath carries a digest of the stylesheet so it can be cached for ever
// and still change with a new release.
var cssPath = func() string {
	sum := sha256.Sum256(stylesheet)
	return "/static/intake.css?v=" + hex.EncodeToString(sum[:6])
}()

// pages holds one parsed template set per page, each with the layout.
type pages map[string]*template.Template

func loadPages() pages {
	p := pages{}
	for _, name := range []string{"index", "form", "receipt", "error", "result"} {
		t := template.Must(template.New("layout").ParseFS(templateFS, "web/templates/layout.html", "web/templates/"+name+".html"))
		p[name] = t
	}
	return p
}

// page is what every template sees.
type page struct {
	Site, Title, CSS string
	HasErrors        bool
}

// render writes a page in full only once it has executed without error, so
// a template failure never leaves half a page behind.
func (s *Server) render(c echo.Context, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		return err
	}
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

type indexEntry struct{ ID, Title, Description string }

func (s *Server) handleIndex(c echo.Context) error {
	data := indexPage{page: page{Site: siteName, Title: "Forms", CSS: cssPath}}
	for _, q := range s.forms.List() {
		data.Forms = append(data.Forms, indexEntry{ID: q.ID, Title: q.Title, Description: q.Description})
	}
	return s.render(c, http.StatusOK, "index", data)
}

type errorPage struct {
	page
	Message, Back, BackText string
}
