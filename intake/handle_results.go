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
	return s.render(c, http.StatusGone, "error", errorPage{page: page{Site: siteName, CSS: cssPath, Title: "This link no longer works"},
		Message: "This link has been used, has expired or was withdrawn: a document can be downloaded only once. " +
			"If you did not download it yourself, or you need it again, contact the clinic that sent you the link."})
}

func (s *Server) resultUnknown(c echo.Context) error {
	return s.render(c, http.StatusNotFound, "error", errorPage{page: page{Site: siteName, CSS: cssPath, Title: "Link not found"},
		Message: "There is no document at this address. Check that you copied the whole link, or contact the clinic that sent it."})
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

func (s *Server) renderResultPage(c echo.Context, status int, tok results.Token, r *storedResult, msg string) error {
	title, err := tok.OpenTitle(r.sealedTitle)
	if err != nil {
		// The row's title does not open under its own token: altered in
		// the database. Show nothing of it.
		title = "a document"
	}
	cookie := s.csrf.cookieValue(c.Response(), c.Request())
	return s.render(c, status, "result", resultPage{
		page:     page{Site: siteName, CSS: cssPath, Title: "A document from the clinic", HasErrors: msg != ""},
		DocTitle: title, Size: formatSize(r.size), Action: "/r/" + tok.String(), CSRF: s.csrf.token(cookie),
		Error: msg, AskBirthDate: r.birthDateRequired, MaxTries: results.MaxWrongBirthDates,
	})
}

func (s *Server) handleResultDownload(c echo.Context) error {
	req := c.Request()
	if _, ok := s.csrf.check(req, req.FormValue(csrfField)); !ok {
		return s.render(c, http.StatusForbidden, "error", errorPage{page: page{Site: siteName, CSS: cssPath, Title: "The download did not start"},
			Message: "The page had expired or did not come from this site, so nothing was downloaded and the link still works. Open the link again.",
			Back:    "/r/" + c.Param("token"), BackText: "Open the link again"})
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
				return s.render(c, http.StatusTooManyRequests, "error", errorPage{page: page{Site: siteName, CSS: cssPath, Title: "Too many attempts"},
					Message: "Too many wrong dates of birth were sent from your network. Wait a few minutes, then open the link again."})
			}
			spent = res
		}
		d, ok := results.BirthDateFromParts(req.FormValue("dob-day"), req.FormValue("dob-month"), req.FormValue("dob-year"))
		if !ok {
			return s.renderResultPage(c, http.StatusUnprocessableEntity, tok, r, "Enter your date of birth as day, month and year, such as 27 3 1985.")
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
			return s.render(c, http.StatusForbidden, "error", errorPage{page: page{Site: siteName, CSS: cssPath, Title: "This link no longer works"},
				Message: "The date of birth did not match too many times, so the link has stopped working. Contact the clinic that sent it for a new one."})
		}
		return s.renderResultPage(c, http.StatusForbidden, tok, r, "The date of birth does not match what the clinic has. Check it and try again.")
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
