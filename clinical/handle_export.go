package clinical

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// The app's export runs in three steps, so that the page can say what the
// download held without any script:
//
//  1. POST /export takes the list page's filters as they are on screen
//     (the export button submits the filter form itself), checks them,
//     counts the rows they select and fixes the highest id, and redirects
//     to a ticket: a signed, expiring token bound to the session.
//  2. GET /export/ready?t= says what the file holds (how many
//     submissions, which form, status, dates, whether superseded ones are
//     in, the format and the file name) and starts the download with a
//     meta refresh, with a link should it not start.
//  3. GET /export/file?t= streams the file: exactly the rows counted (no
//     row that arrived in between), audited like every export.
//
// The ticket carries filters only (form id, status, dates, the format),
// never search text, so no patient identifier reaches a URL.

// exportTicketLife is how long a ticket's download link works.
const exportTicketLife = 10 * time.Minute

// exportTicket is a checked export request.
type exportTicket struct {
	Format     string `json:"format"`
	Form       string `json:"form,omitempty"`
	Status     string `json:"status,omitempty"`
	From       string `json:"from,omitempty"` // YYYY-MM-DD, as typed
	To         string `json:"to,omitempty"`   // inclusive
	Superseded bool   `json:"superseded,omitempty"`
	Count      int64  `json:"count"`
	MaxID      int64  `json:"max_id"`
	Created    int64  `json:"created"` // unix seconds; names the file
}

// filter is the ticket's ExportFilter.
func (t *exportTicket) filter() ExportFilter {
	f := ExportFilter{FormID: t.Form, Status: t.Status, IncludeSuperseded: t.Superseded, MaxID: t.MaxID}
	f.Since, _ = parseDay(t.From, "From")
	if to, _ := parseDay(t.To, "To"); !to.IsZero() {
		f.Before = to.AddDate(0, 0, 1)
	}
	return f
}

// FileName is the name the download is saved under.
func (t *exportTicket) FileName() string {
	ext := "csv"
	if t.Format == "ndjson" {
		ext = "ndjson"
	}
	return "airlock-export-" + time.Unix(t.Created, 0).UTC().Format("20060102-150405") + "." + ext
}

// exportTicketMAC binds a ticket's payload to the session it was made in.
func (s *Server) exportTicketMAC(sess *Session, payload string) []byte {
	m := hmac.New(sha256.New, s.exportKey)
	m.Write(sess.TokenHash)
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func (s *Server) encodeExportTicket(sess *Session, t *exportTicket) (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.exportTicketMAC(sess, payload)), nil
}

// errExportTicket is a ticket from another session, altered, or too old.
var errExportTicket = errorf(CodeInvalid, "This export link has expired or belongs to another session. Export again from the list.")

func (s *Server) decodeExportTicket(sess *Session, token string) (*exportTicket, error) {
	payload, sig, ok := strings.Cut(token, ".")
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err != nil || !hmac.Equal(mac, s.exportTicketMAC(sess, payload)) {
		return nil, errExportTicket
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errExportTicket
	}
	var t exportTicket
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, errExportTicket
	}
	if created := time.Unix(t.Created, 0); s.now().Sub(created) > exportTicketLife || created.After(s.now().Add(time.Minute)) {
		return nil, errExportTicket
	}
	return &t, nil
}

// handleExport checks the filters the export button sent and redirects to
// the export's ticket.
func (s *Server) handleExport(c echo.Context, sess *Session) error {
	format := postValue(c, "format")
	if format != "csv" && format != "ndjson" {
		return errorf(CodeInvalid, "Format: choose CSV or FHIR NDJSON.")
	}
	p := listParams{Form: postValue(c, "form"), Status: postValue(c, "status"), From: postValue(c, "from"), To: postValue(c, "to"),
		Superseded: postValue(c, "superseded") == "1"}
	if strings.TrimSpace(postValue(c, "q")) != "" {
		return errorf(CodeInvalid, "Search: exports take the form, status and date filters only. Clear the search text, then export.")
	}
	if _, err := s.listFilter(p, ""); err != nil {
		return err
	}
	t := &exportTicket{Format: format, Form: p.Form, Status: p.Status, From: p.From, To: p.To, Superseded: p.Superseded,
		Created: s.now().Unix()}
	var err error
	if t.Count, t.MaxID, err = s.exporter.Count(c.Request().Context(), t.filter()); err != nil {
		return err
	}
	token, err := s.encodeExportTicket(sess, t)
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/export/ready?t="+token)
}

// exportReadyView is the page that starts the download and says what it
// holds.
type exportReadyView struct {
	T          *exportTicket
	FileURL    string
	FormTitle  string
	StatusText string
	Dates      string
	FormatText string
}

func (s *Server) handleExportReady(c echo.Context, sess *Session) error {
	token := c.QueryParam("t")
	t, err := s.decodeExportTicket(sess, token)
	if err != nil {
		return err
	}
	v := exportReadyView{T: t, FileURL: "/export/file?t=" + token, FormTitle: "all forms", StatusText: "any status",
		Dates: "any date", FormatText: "CSV"}
	if t.Form != "" {
		v.FormTitle = t.Form
		if q, ok := s.forms.Get(t.Form); ok && q.Title != "" {
			v.FormTitle = q.Title
		}
	}
	if t.Status != "" {
		v.StatusText = statusLabel(t.Status)
	}
	switch {
	case t.From != "" && t.To != "":
		v.Dates = "from " + t.From + " to " + t.To
	case t.From != "":
		v.Dates = "from " + t.From
	case t.To != "":
		v.Dates = "up to " + t.To
	}
	if t.Format == "ndjson" {
		v.FormatText = "FHIR QuestionnaireResponse (NDJSON)"
	}
	return s.render(c, http.StatusOK, "export", sess, &page{Title: "Export", Data: v})
}

// handleExportFile streams a ticket's export.
func (s *Server) handleExportFile(c echo.Context, sess *Session) error {
	t, err := s.decodeExportTicket(sess, c.QueryParam("t"))
	if err != nil {
		return err
	}
	ctype := "text/csv; charset=utf-8"
	if t.Format == "ndjson" {
		ctype = "application/fhir+ndjson"
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, ctype)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": t.FileName()}))
	// Export appends its audit entry before the first byte is written; an
	// error before that still gets a proper error page.
	w := &lazyWriter{c: c}
	n, err := s.exporter.Export(c.Request().Context(), w, t.Format, sess.Staff.Actor(), t.filter())
	if err != nil {
		if !c.Response().Committed {
			h.Del("Content-Disposition")
		}
		return err
	}
	if !c.Response().Committed {
		c.Response().WriteHeader(http.StatusOK)
	}
	s.metrics.exports.WithLabelValues(t.Format).Inc()
	s.log.InfoContext(c.Request().Context(), "export written", "actor", sess.Staff.Actor(), "format", t.Format, "count", n)
	return nil
}

// lazyWriter commits the response status only when the first byte comes.
type lazyWriter struct{ c echo.Context }

func (w *lazyWriter) Write(b []byte) (int, error) {
	if !w.c.Response().Committed {
		w.c.Response().WriteHeader(http.StatusOK)
	}
	return w.c.Response().Write(b)
}
