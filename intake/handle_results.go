package intake

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/airlockhq/airlock/shared/results"
)

// One-time result links (docs/results.md). GET /r/{token} names the
// document and asks the patient to confirm; it consumes nothing, so link
// previews in messaging apps cannot use a link up. POST /r/{token}, with the
// page's CSRF token (and the date of birth when the clinic asked for it),
// returns the document and consumes it. The token lives only in the URL and
// in this request's memory: what is looked up is its SHA-256, and routes,
// logs and metrics name the route pattern, never the path.

// Wrong dates of birth a client address may send: a burst of 10, then one
// every 30 seconds, across all links (each link also allows only
// results.MaxWrongBirthDates).
const (
	birthDatePerMinute = 2
	birthDateBurst     = 10
)

// resultPage is the confirmation page.
type resultPage struct {
	page
	DocTitle, Size, Action, CSRF, Error string
	AskBirthDate                        bool
	MaxTries                            int
}

func (s *Server) resultToken(c echo.Context) (results.Token, bool) {
	return results.ParseToken(c.Param("token"))
}

// resultGone and resultUnknown are the pages for links that ended and
// links never issued.
func (s *Server) resultGone(c echo.Context) error {
	pr := s.printerFor(c, s.siteLanguages())
	return s.render(c, http.StatusGone, "error", errorPage{page: s.newPage(pr, pr.T("intake.result.gone.title"), nil, ""),
		Message: pr.T("intake.result.gone")})
}

func (s *Server) resultUnknown(c echo.Context) error {
	pr := s.printerFor(c, s.siteLanguages())
	return s.render(c, http.StatusNotFound, "error", errorPage{page: s.newPage(pr, pr.T("intake.result.unknown.title"), nil, ""),
		Message: pr.T("intake.result.unknown")})
}

func (s *Server) handleResultPage(c echo.Context) error {
	tok, ok := s.resultToken(c)
	if !ok {
		results.DummyOpen(0)
		return s.resultUnknown(c)
	}
	state, r, err := s.results.lookup(c.Request().Context(), tok.Hash())
	if err != nil {
		return err
	}
	if state != linkLive {
		// The work a live link costs, so the answer's timing tells nothing.
		results.DummyOpen(0)
		if state == linkGone {
			return s.resultGone(c)
		}
		return s.resultUnknown(c)
	}
	return s.renderResultPage(c, http.StatusOK, tok, r, "")
}

func (s *Server) renderResultPage(c echo.Context, status int, tok results.Token, r *storedResult, msgKey string) error {
	pr := s.printerFor(c, s.siteLanguages())
	title, err := tok.OpenTitle(r.sealedTitle)
	if err != nil {
		// The row's title does not open under its own token: altered in
		// the database. Show nothing of it.
		title = pr.T("intake.result.untitled")
	}
	cookie := s.csrf.cookieValue(c.Response(), c.Request())
	p := s.newPage(pr, pr.T("intake.result.title"), nil, "")
	p.HasErrors = msgKey != ""
	errorText := ""
	if msgKey != "" {
		errorText = pr.T(msgKey)
	}
	return s.render(c, status, "result", resultPage{
		page:     p,
		DocTitle: title, Size: formatSize(r.size), Action: "/r/" + tok.String(), CSRF: s.csrf.token(cookie),
		Error: errorText, AskBirthDate: r.birthDateRequired, MaxTries: results.MaxWrongBirthDates,
	})
}

func (s *Server) handleResultDownload(c echo.Context) error {
	req := c.Request()
	if _, ok := s.csrf.check(req, req.FormValue(csrfField)); !ok {
		pr := s.printerFor(c, s.siteLanguages())
		return s.render(c, http.StatusForbidden, "error", errorPage{page: s.newPage(pr, pr.T("intake.result.csrf.title"), nil, ""),
			Message: pr.T("intake.result.csrf"), Back: "/r/" + c.Param("token"), BackText: pr.T("intake.result.again")})
	}
	tok, ok := s.resultToken(c)
	if !ok {
		results.DummyOpen(64 << 10)
		return s.resultUnknown(c)
	}
	ctx := req.Context()
	hash := tok.Hash()
	state, r, err := s.results.lookup(ctx, hash)
	if err != nil {
		return err
	}
	birthDate := ""
	// A date-of-birth answer spends one token of its address's budget
	// before it is tried, so concurrent answers from one address, to one
	// link or many, cannot try more than the budget; an answer that turns
	// out not to be wrong gets its token back.
	var spent *rate.Reservation
	wrong := false
	defer func() {
		if spent != nil && !wrong {
			spent.CancelAt(time.Now())
		}
	}()
	if state == linkLive && r.birthDateRequired {
		addr := clientAddr(s.clients, req)
		now := time.Now()
		// With the address table full (a flood from many addresses),
		// limiterFor has no limiter to give: the per-address budget is then
		// out of reach, and the per-link limit of five still holds.
		if lim := s.birthDateLimiter.limiterFor(addr, now); lim != nil {
			res := lim.ReserveN(now, 1)
			if !res.OK() || res.DelayFrom(now) > 0 {
				res.CancelAt(now)
				c.Response().Header().Set("Retry-After", "60")
				pr := s.printerFor(c, s.siteLanguages())
				return s.render(c, http.StatusTooManyRequests, "error", errorPage{page: s.newPage(pr, pr.T("intake.error.rate.title"), nil, ""),
					Message: pr.T("intake.result.rate")})
			}
			spent = res
		}
		d, ok := results.BirthDateFromParts(req.FormValue("dob-day"), req.FormValue("dob-month"), req.FormValue("dob-year"))
		if !ok {
			return s.renderResultPage(c, http.StatusUnprocessableEntity, tok, r, "intake.result.dob_shape")
		}
		birthDate = d
	}
	withBirthDate := state == linkLive && r.birthDateRequired
	state, doc, locked, err := s.results.consume(ctx, hash, withBirthDate, func(sealed []byte) (results.Document, error) {
		return tok.OpenDocument(sealed, birthDate)
	})
	switch {
	case err == errWrongBirthDate:
		wrong = true // the token spent above stays spent
		if locked {
			pr := s.printerFor(c, s.siteLanguages())
			return s.render(c, http.StatusForbidden, "error", errorPage{page: s.newPage(pr, pr.T("intake.result.gone.title"), nil, ""),
				Message: pr.T("intake.result.locked")})
		}
		return s.renderResultPage(c, http.StatusForbidden, tok, r, "intake.result.dob_wrong")
	case err != nil:
		return err
	case state == linkGone:
		return s.resultGone(c)
	case state != linkLive:
		return s.resultUnknown(c)
	}
	h := c.Response().Header()
	h.Set("Content-Disposition", `attachment; filename="`+results.Filename(doc.ContentType)+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	return c.Blob(http.StatusOK, results.ContentHeader(doc.ContentType), doc.Data)
}
