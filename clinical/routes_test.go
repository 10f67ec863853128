package clinical

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/forms"
)

// TestEveryRouteForEveryRole drives each route through the real router as
// each kind of user and checks the status: anonymous is 401, a role past its
// rights is 403 (and audited as access.denied), a permitted role gets what
// it asked for.
func TestEveryRouteForEveryRole(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	day := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	doc := "scan"
	att := forms.Value{ValueAttachment: &forms.Attachment{ContentType: "image/png", Data: []byte("\x89PNG fake"), Title: doc + ".png"}}
	answers := forms.Answers{"complaint": {str("Sore knee")}, "documents": {att}}

	users := map[string]*staffUser{
		"admin":     a.newUser(t, "admin@clinic.example", true, true, RoleAdmin),
		"clinician": a.newUser(t, "doc@clinic.example", true, true, RoleClinician),
		"viewer":    a.newUser(t, "view@clinic.example", true, true, RoleViewer),
	}
	other := a.newUser(t, "other@clinic.example", false, false, RoleViewer)

	type route struct {
		method, path string
		form         url.Values
		want         map[string]int // by user kind; "anonymous" too
	}
	const ok, see, created = http.StatusOK, http.StatusSeeOther, http.StatusCreated
	const unauth, forbid = http.StatusUnauthorized, http.StatusForbidden
	// Each case gets a fresh submission, so state changes do not interfere.
	cases := func(s sub) []route {
		sp := "/submissions/" + s.intakeID
		return []route{
			{"GET", "/", nil, map[string]int{"anonymous": unauth, "admin": see, "clinician": see, "viewer": see}},
			{"GET", "/submissions", nil, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": ok, "viewer": ok}},
			{"POST", "/submissions", url.Values{"q": {"knee"}}, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": see, "viewer": see}},
			{"GET", sp, nil, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": ok, "viewer": ok}},
			{"POST", sp + "/status", url.Values{"from": {"new"}, "to": {"in_review"}}, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": see, "viewer": forbid}},
			{"POST", sp + "/notes", url.Values{"body": {"Call back"}}, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": see, "viewer": forbid}},
			// Not a correction: nothing to accept (409), but only a clinician gets that far.
			{"POST", sp + "/accept-correction", nil, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": http.StatusConflict, "viewer": forbid}},
			{"GET", sp + "/attachments/documents/0", nil, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": ok, "viewer": forbid}},
			{"POST", "/export", url.Values{"format": {"csv"}}, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": see, "viewer": forbid}},
			// A ticket from no session: refused (422) once the role passes.
			{"GET", "/export/ready?t=x.y", nil, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": http.StatusUnprocessableEntity, "viewer": forbid}},
			{"GET", "/export/file?t=x.y", nil, map[string]int{"anonymous": unauth, "admin": forbid, "clinician": http.StatusUnprocessableEntity, "viewer": forbid}},
			{"GET", "/admin/staff", nil, map[string]int{"anonymous": unauth, "admin": ok, "clinician": forbid, "viewer": forbid}},
			{"POST", "/admin/staff", url.Values{"email": {"n" + s.intakeID[30:] + "@clinic.example"}, "role": {"viewer"}}, map[string]int{"anonymous": unauth, "admin": created, "clinician": forbid, "viewer": forbid}},
			{"POST", fmt.Sprintf("/admin/staff/%d/roles", other.id), url.Values{"role": {"viewer"}}, map[string]int{"anonymous": unauth, "admin": see, "clinician": forbid, "viewer": forbid}},
			{"POST", fmt.Sprintf("/admin/staff/%d/approve", other.id), nil, map[string]int{"anonymous": unauth, "admin": forbid /* it asked for the change itself */, "clinician": forbid, "viewer": forbid}},
			{"POST", fmt.Sprintf("/admin/staff/%d/reset", other.id), nil, map[string]int{"anonymous": unauth, "admin": ok, "clinician": forbid, "viewer": forbid}},
			{"POST", fmt.Sprintf("/admin/staff/%d/disable", other.id), nil, map[string]int{"anonymous": unauth, "admin": see, "clinician": forbid, "viewer": forbid}},
			{"GET", "/admin/audit", nil, map[string]int{"anonymous": unauth, "admin": ok, "clinician": forbid, "viewer": forbid}},
			{"POST", "/admin/audit/verify", nil, map[string]int{"anonymous": unauth, "admin": ok, "clinician": forbid, "viewer": forbid}},
			{"GET", "/admin/erase", nil, map[string]int{"anonymous": unauth, "admin": ok, "clinician": forbid, "viewer": forbid}},
			{"POST", "/admin/erase", url.Values{"receipt": {s.receipt}, "confirm": {"yes"}}, map[string]int{"anonymous": unauth, "admin": ok, "clinician": forbid, "viewer": forbid}},
			{"GET", "/enrol", nil, map[string]int{"anonymous": ok, "admin": see, "clinician": see, "viewer": see}},
			{"POST", "/logout-everywhere", nil, map[string]int{"anonymous": unauth, "admin": see, "clinician": see, "viewer": see}},
			{"POST", "/logout", nil, map[string]int{"anonymous": unauth, "admin": see, "clinician": see, "viewer": see}},
		}
	}
	for _, kind := range []string{"anonymous", "admin", "clinician", "viewer"} {
		c := a.client()
		if u := users[kind]; u != nil {
			c.login(t, u)
		}
		for i, r := range cases(a.insert(t, "symptoms", answers, day, ReviewNew)) {
			if r.method == "POST" && strings.HasPrefix(r.path, "/logout") && kind != "anonymous" {
				defer func(r route, c *client, u *staffUser) {
					// Last: logging out ends the session the other cases use.
					if r.path == "/logout-everywhere" {
						c = a.client()
						c.login(t, u)
					}
					rec := c.post(r.path, r.form)
					if rec.Code != r.want[kind] {
						t.Errorf("%s %s as %s: status %d, want %d", r.method, r.path, kind, rec.Code, r.want[kind])
					}
				}(r, c, users[kind])
				continue
			}
			deniedBefore := a.countAudit(t, "access.denied")
			var rec *httptest.ResponseRecorder
			if r.method == "POST" {
				rec = c.post(r.path, r.form)
			} else {
				rec = c.get(r.path)
			}
			if rec.Code != r.want[kind] {
				t.Errorf("case %d: %s %s as %s: status %d, want %d: %.300s", i, r.method, r.path, kind, rec.Code, r.want[kind], rec.Body.String())
			}
			denied := a.countAudit(t, "access.denied") - deniedBefore
			wantDenied := 0
			if rec.Code == forbid && kind != "anonymous" && !(kind == "admin" && strings.Contains(r.path, "/approve")) {
				wantDenied = 1
			}
			if denied != wantDenied {
				t.Errorf("%s %s as %s: %d access.denied entries, want %d", r.method, r.path, kind, denied, wantDenied)
			}
			if kind == "anonymous" && rec.Code == unauth && !strings.Contains(rec.Body.String(), `action="/login"`) {
				t.Errorf("%s %s anonymous: the 401 is not the login page", r.method, r.path)
			}
		}
	}
}

// TestSecurityHeaders checks the headers every page carries, including the
// CSP without inline script or style and the __Host- cookie attributes.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	rec := c.get("/login")
	h := rec.Header()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'none'", "style-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows unsafe-inline")
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"Cache-Control": "no-store", "Strict-Transport-Security": "max-age=63072000; includeSubDomains"} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	if h.Get("Content-Encoding") != "" {
		t.Errorf("response is compressed")
	}
	body := rec.Body.String()
	if strings.Contains(body, "<script") || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
		t.Errorf("page carries inline script or style")
	}
	c.a.clock.advance(30 * time.Second)
	rec = c.post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {a.code(t, u)}})
	var session *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == sessionCookie {
			session = ck
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" || session.Domain != "" {
		t.Fatalf("session cookie %+v: want __Host-, Secure, HttpOnly, SameSite=Strict, Path=/", session)
	}
	if len(session.Value) != tokenLen {
		t.Errorf("session token has %d characters, want %d (256 bits)", len(session.Value), tokenLen)
	}
	// Only the token's SHA-256 is stored.
	var n int
	a.owner.QueryRow(t.Context(), `SELECT count(*) FROM staff_sessions WHERE token_hash = sha256($1::bytea)`, []byte(session.Value)).Scan(&n)
	if n != 1 {
		t.Errorf("the session is not stored by the SHA-256 of its token")
	}
	a.owner.QueryRow(t.Context(), `SELECT count(*) FROM staff_sessions WHERE position(convert_to($1, 'UTF8') in token_hash) > 0`, session.Value).Scan(&n)
	if n != 0 {
		t.Errorf("the token is stored in clear")
	}
	css := c.get("/static/app.css")
	if css.Code != http.StatusOK || !strings.HasPrefix(css.Header().Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", css.Code, css.Header().Get("Content-Type"))
	}
	if hz := c.get("/healthz"); hz.Code != http.StatusOK {
		t.Errorf("healthz: %d", hz.Code)
	}
}
