package clinical

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/results"
)

// Publishing and withdrawing one-time results from the submission page
// (docs/results.md). The link is in one response only: the page that
// follows publication, which is also the printable hand-out with a QR code.

// resultExpiryChoices are the expiries the publish form offers, in days.
var resultExpiryChoices = []int{1, 3, 7, 14, 30, 90}

// maxResultBody bounds a publish request: the file, base64-free multipart,
// and the small fields.
const maxResultBody = results.MaxSize + 64<<10

// resultsView is the results part of the submission page.
type resultsView struct {
	List []*Result
	// CanPublish is set when CLINICAL_INTAKE_URL is, so links can be made.
	CanPublish   bool
	HasBirthDate bool
	Expiries     []int
	DefaultDays  int
}

// resultsFor fills the results part of a submission page.
func (s *Server) resultsFor(ctx context.Context, d *Detail) (*resultsView, error) {
	list, err := s.results.ForSubmission(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	v := &resultsView{List: list, CanPublish: s.intakeURL != "", Expiries: resultExpiryChoices,
		DefaultDays: int(results.DefaultExpiry / (24 * time.Hour))}
	if q, ok := s.forms.Get(d.FormID); ok {
		v.HasBirthDate = BirthDateOf(q, d.Answers) != ""
	}
	return v, nil
}

// resultLinkView is the page shown once after publishing.
type resultLinkView struct {
	Link      string
	QR        template.HTML
	Title     string
	ExpiresAt time.Time
	BirthDate bool
	Back      string
}

func (s *Server) handlePublishResult(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	if s.intakeURL == "" {
		return errorf(CodeConflict, "Publishing results is off: CLINICAL_INTAKE_URL is not set.")
	}
	d, err := s.subs.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	fh, err := c.FormFile("file")
	if err != nil {
		return errorf(CodeInvalid, "File: choose the document to publish.")
	}
	if fh.Size > results.MaxSize {
		return errorf(CodeInvalid, "File: the file is larger than %d MiB.", results.MaxSize>>20)
	}
	f, err := fh.Open()
	if err != nil {
		return fmt.Errorf("open upload: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, results.MaxSize+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("read upload: %w", err)
	}
	days, err := strconv.Atoi(c.FormValue("expires_days"))
	if err != nil || days < 1 || time.Duration(days)*24*time.Hour > results.MaxExpiry {
		return errorf(CodeInvalid, "Expires: choose how many days the link works.")
	}
	p := Publication{SubmissionID: d.ID, Title: c.FormValue("title"), Data: data,
		Expires: time.Duration(days) * 24 * time.Hour, RequireBirthDate: c.FormValue("require_birth_date") == "1"}
	if q, ok := s.forms.Get(d.FormID); ok {
		p.BirthDate = BirthDateOf(q, d.Answers)
	}
	tok, res, err := s.results.Publish(ctx, p, sess.Staff.Actor(), s.audit)
	var fe *FieldError
	if errors.As(err, &fe) {
		name := map[string]string{"title": "Title", "file": "File", "expires": "Expires", "require-birth-date": "Date of birth"}[fe.Field]
		return errorf(CodeInvalid, "%s: %s.", name, fe.Message)
	}
	if err != nil {
		return err
	}
	link := s.intakeURL + "/r/" + tok.String()
	code, err := qrSVG(link)
	if err != nil {
		return err
	}
	v := resultLinkView{Link: link, QR: code, Title: res.Title, ExpiresAt: res.ExpiresAt,
		BirthDate: res.BirthDateRequired, Back: "/submissions/" + d.IntakeID}
	return s.render(c, http.StatusOK, "result_link", sess, &page{Title: "One-time link for " + d.Receipt, Data: v})
}

func (s *Server) handleWithdrawResult(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	d, err := s.subs.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	rid, err := strconv.ParseInt(c.Param("rid"), 10, 64)
	if err != nil {
		return errNotFound
	}
	if err := s.results.Withdraw(ctx, d.ID, rid, sess.Staff.Actor(), s.audit); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/submissions/"+d.IntakeID+"?done=withdrawn")
}

// qrSVG renders link as a QR code in inline SVG: one path of dark modules
// with the standard quiet zone, drawn on the server (the app runs no
// script, and its CSP admits no data: image).
func qrSVG(link string) (template.HTML, error) {
	code, err := qr.Encode(link, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("QR code: %w", err)
	}
	const quiet = 4
	n := code.Bounds().Dx()
	var path strings.Builder
	for y := range n {
		for x := range n {
			r, _, _, _ := code.At(x, y).RGBA()
			if r == 0 {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	size := n + 2*quiet
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" class="qr" viewBox="0 0 %d %d" role="img" aria-label="QR code of the link" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path d="%s" fill="#000"/></svg>`,
		size, size, size, size, path.String())), nil
}
