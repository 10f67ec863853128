package clinical

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/forms"
)

// TestLoginMessages: a first visit and an ended session ask to log in in
// the neutral style, a refused login in the error style, and a logout (here
// or everywhere) is confirmed on the login page it leads to.
func TestLoginMessages(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	info := regexp.MustCompile(`<p class="info" role="status">([^<]*)</p>`)
	errorText := regexp.MustCompile(`<p class="error" role="alert">([^<]*)</p>`)
	for _, path := range []string{"/", "/submissions"} {
		rec := a.client().get(path)
		body := rec.Body.String()
		if rec.Code != http.StatusUnauthorized || errorText.MatchString(body) {
			t.Errorf("first visit to %s: %d, error shown %q", path, rec.Code, errorText.FindString(body))
		}
		if m := info.FindStringSubmatch(body); m == nil || m[1] != "Please log in." {
			t.Errorf("first visit to %s: neutral message %q, want Please log in.", path, m)
		}
	}
	if rec := a.client().get("/login"); info.MatchString(rec.Body.String()) || errorText.MatchString(rec.Body.String()) {
		t.Errorf("the plain login page shows a message: %s", rec.Body.String())
	}
	bad := a.client().post("/login", url.Values{"email": {u.email}, "password": {"not the password at all"}, "code": {"123456"}})
	if bad.Code != http.StatusUnauthorized || !errorText.MatchString(bad.Body.String()) {
		t.Errorf("a refused login: %d, no error shown", bad.Code)
	}

	c := a.client()
	c.login(t, u)
	rec := c.post("/logout", nil)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", rec.Code)
	}
	page := c.get(rec.Header().Get("Location"))
	if m := info.FindStringSubmatch(page.Body.String()); page.Code != http.StatusOK || m == nil || m[1] != "You are logged out." {
		t.Errorf("after logout %s: %d, message %q", rec.Header().Get("Location"), page.Code, m)
	}
	if rec := c.get("/submissions"); rec.Code != http.StatusUnauthorized {
		t.Errorf("the session lives on after logout: %d", rec.Code)
	}

	c.login(t, u)
	rec = c.post("/logout-everywhere", nil)
	page = c.get(rec.Header().Get("Location"))
	if m := info.FindStringSubmatch(page.Body.String()); m == nil || !strings.Contains(m[1], "logged out on every device") {
		t.Errorf("after logout everywhere: message %q", m)
	}
	// The confirmation takes fixed texts only: the URL cannot make the page say anything else.
	if rec := a.client().get("/login?done=%3Cb%3Eyou+won"); strings.Contains(rec.Body.String(), "you won") || info.MatchString(rec.Body.String()) {
		t.Errorf("the login page repeats the query string")
	}
}

// TestEnrolPageHeaderAndUsername: an enrolment session's page offers no
// navigation that would only send the user back, and carries the account's
// email in a read-only username field for password managers, next to the
// password rule.
func TestEnrolPageHeaderAndUsername(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "nurse@clinic.example", true, false, RoleClinician, RoleAdmin)
	c := a.client()
	if rec := c.post("/enrol/start", url.Values{"email": {u.email}, "create_code": {u.createCode}, "approve_code": {u.approveCode}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("enrolment start: %d", rec.Code)
	}
	rec := c.get("/enrol")
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("enrol page: %d", rec.Code)
	}
	for _, link := range []string{"<nav", `href="/submissions"`, `href="/admin/staff"`, `action="/logout"`} {
		if strings.Contains(body, link) {
			t.Errorf("the enrolment page offers %s, which only leads back to /enrol", link)
		}
	}
	if !regexp.MustCompile(`<input id="username" type="email" autocomplete="username" value="nurse@clinic.example" readonly>`).MatchString(body) {
		t.Errorf("no read-only username field with the email")
	}
	if !strings.Contains(body, `aria-describedby="password-hint"`) || !strings.Contains(body, `id="password-hint">`+strings.ReplaceAll(PasswordAdvice, "\u201c", "\u201c")) {
		t.Errorf("the password field is not described by the rule")
	}
	// A full session still has the navigation.
	full := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	d := a.client()
	d.login(t, full)
	if body := d.get("/submissions").Body.String(); !strings.Contains(body, `<nav aria-label="Main">`) || !strings.Contains(body, `action="/logout"`) {
		t.Errorf("the navigation is gone from a full session's pages")
	}
}

// TestPasswordAdviceMatchesRule: the advice's own example and passphrases
// in its style (words from the common list among them) pass; what it says
// is refused is refused, with a message in the same words.
func TestPasswordAdviceMatchesRule(t *testing.T) {
	t.Parallel()
	example := regexp.MustCompile("\u201c([^\u201d]+)\u201d").FindStringSubmatch(PasswordAdvice)
	if example == nil {
		t.Fatalf("the advice has no example: %q", PasswordAdvice)
	}
	for _, pw := range []string{example[1], "blue tiger coffee", "music guitar piano", "winter coffee spring tennis",
		"Purple monkey dishwasher", "sunshine orbit lantern", "horse battery staple correct"} {
		if err := CheckPassword(pw, "doc@clinic.example"); err != nil {
			t.Errorf("%q refused: %v", pw, err)
		}
	}
	for _, pw := range []string{"I love you forever", "sunshine rainbow", "Summer 2024 winter!", "password welcome",
		"happy happy happy", "correct horse battery staple"} {
		err := CheckPassword(pw, "doc@clinic.example")
		if err == nil {
			t.Errorf("%q accepted", pw)
		} else if !strings.Contains(err.Error(), "one or two common words") || !strings.Contains(PasswordAdvice, "one or two common words") {
			t.Errorf("%q refused with %q, which the advice does not say", pw, err)
		}
	}
}

// TestAuditPageReadable: the audit page names staff by email (actor and
// target), says what each action was, and reads the details out instead
// of showing their JSON.
func TestAuditPageReadable(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	admin := a.newUser(t, "admin@clinic.example", true, true, RoleAdmin)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	s := a.insert(t, "new-patient", patient("Doe", "Jane", ""), a.clock.now(), ReviewNew)
	dc := a.client()
	dc.login(t, doc)
	dc.post("/submissions/"+s.intakeID+"/status", url.Values{"from": {ReviewNew}, "to": {ReviewInReview}})
	a.client().post("/login", url.Values{"email": {doc.email}, "password": {"not the password at all"}, "code": {"123456"}})
	ac := a.client()
	ac.login(t, admin)
	ac.get("/admin/audit") // an audit.view entry with the newest page
	rec := ac.get("/admin/audit")
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("audit page: %d", rec.Code)
	}
	rows := regexp.MustCompile(`(?s)<tr><td>\d+</td>.*?</tr>`).FindAllString(body, -1)
	find := func(action string) string {
		for _, r := range rows {
			if strings.Contains(r, "("+action+")") {
				return r
			}
		}
		t.Errorf("no %s row on the audit page", action)
		return ""
	}
	cell := regexp.MustCompile(`<td>([^<]*)</td>`)
	who := func(row string) string {
		if m := cell.FindAllStringSubmatch(row, -1); len(m) >= 3 {
			return m[2][1]
		}
		return ""
	}
	if r := find("submission.status"); who(r) != doc.email || !strings.Contains(r, "Changed a submission&#39;s status") ||
		!strings.Contains(r, "<li>from: New</li>") || !strings.Contains(r, "<li>to: In review</li>") || !strings.Contains(r, fmt.Sprintf("submission #%d", s.id)) {
		t.Errorf("status change row: %s", r)
	}
	if r := find("login.failure"); who(r) != "not logged in" || !strings.Contains(r, "<td>"+doc.email+"</td>") || !strings.Contains(r, "<li>reason: wrong password</li>") {
		t.Errorf("login failure row: %s", r)
	}
	if r := find("audit.view"); who(r) != admin.email || !strings.Contains(r, "<li>page: newest entries</li>") {
		t.Errorf("audit view row: %s", r)
	}
	for _, raw := range []string{"staff:", "9223372036854775807", "{&#34;", `{"`} {
		if strings.Contains(strings.Join(rows, "\n"), raw) {
			t.Errorf("the audit page shows %q", raw)
		}
	}
	// An older page says which entries it shows.
	ac.get("/admin/audit?before=5")
	if r := regexp.MustCompile(`(?s)<tr><td>\d+</td>.*?\(audit.view\).*?</tr>`).FindString(ac.get("/admin/audit").Body.String()); !strings.Contains(r, "<li>page: entries before #5</li>") {
		t.Errorf("audit view of an older page: %s", r)
	}
}

// TestNotFoundPageAndFavicon: an unknown address answers 404 with the
// navigation for a logged-in user; the favicon is served from the app
// itself (the layout links nothing elsewhere) and cached.
func TestNotFoundPageAndFavicon(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, u)
	rec := c.get("/no/such/page")
	body := rec.Body.String()
	if rec.Code != http.StatusNotFound || !strings.Contains(body, `<nav aria-label="Main">`) || !strings.Contains(body, `href="/submissions"`) ||
		!strings.Contains(body, "There is no page at this address") || !strings.Contains(body, u.email) {
		t.Errorf("404 for a logged-in user: %d\n%s", rec.Code, body)
	}
	if rec := a.client().get("/no/such/page"); rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "<nav") {
		t.Errorf("404 without a session: %d, navigation shown %v", rec.Code, strings.Contains(rec.Body.String(), "<nav"))
	}
	for _, tc := range []struct{ path, ctype string }{{"/favicon.ico", "image/"}, {"/static/favicon.svg", "image/svg+xml"}} {
		rec := a.client().get(tc.path)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.ctype) || rec.Body.Len() == 0 {
			t.Errorf("%s: %d %q (%d bytes)", tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
		if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=86400") {
			t.Errorf("%s: Cache-Control %q, want it cached", tc.path, cc)
		}
	}
	if cc := c.get("/submissions").Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("a page with patient data: Cache-Control %q", cc)
	}
	login := a.client().get("/login").Body.String()
	for _, link := range regexp.MustCompile(`<link [^>]*href="([^"]+)"`).FindAllStringSubmatch(login, -1) {
		if !strings.HasPrefix(link[1], "/") || strings.HasPrefix(link[1], "//") {
			t.Errorf("the layout links %s, off this origin", link[1])
		}
	}
	if !strings.Contains(login, `<link rel="icon" href="/favicon.ico"`) {
		t.Errorf("the layout names no favicon")
	}
}

// export runs the app's export as a browser does: the filter form posted
// to /export, its redirect to the ready page (which must link the file),
// and the file. It returns the file's response, or the first one that was
// not a step of that path.
func (c *client) export(form url.Values) *httptest.ResponseRecorder {
	rec := c.post("/export", form)
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/export/ready?t=") {
		return rec
	}
	ready := c.get(loc)
	file := "/export/file?t=" + strings.TrimPrefix(loc, "/export/ready?t=")
	if ready.Code != http.StatusOK || !strings.Contains(ready.Body.String(), `url=`+file+`"`) {
		return ready
	}
	return c.get(file)
}

// TestExportTicket: the export's ready page says what the file holds; the
// file holds exactly the rows counted then (not one that arrived after),
// and its link works only in the session that made it, unaltered and for
// ten minutes.
func TestExportTicket(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	other := a.newUser(t, "other@clinic.example", true, true, RoleClinician)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	a.insert(t, "new-patient", patient("Doe", "Jane", ""), day, ReviewNew)
	a.insert(t, "new-patient", patient("Roe", "Rita", ""), day.Add(time.Hour), ReviewDone)
	a.insert(t, "symptoms", forms.Answers{"complaint": {str("Cough")}}, day, ReviewNew)
	c := a.client()
	c.login(t, u)
	rec := c.post("/export", url.Values{"format": {"csv"}, "form": {"new-patient"}, "status": {"new"}, "from": {"2026-03-01"}, "to": {"2026-04-30"}})
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/export/ready?t=") {
		t.Fatalf("export: %d to %q", rec.Code, loc)
	}
	if strings.Contains(loc, "Doe") || a.countAudit(t, "export") != 0 {
		t.Errorf("the ticket %q holds a name, or the count was audited as an export", loc)
	}
	ready := c.get(loc).Body.String()
	for _, want := range []string{"<strong>1 submission</strong>", "as CSV", "<dd>New patient registration</dd>", "<dd>New</dd>",
		"<dd>from 2026-03-01 to 2026-04-30</dd>", "left out: current data only", "airlock-export-", `<meta http-equiv="refresh" content="0; url=/export/file?t=`} {
		if !strings.Contains(ready, want) {
			t.Errorf("the ready page does not say %q:\n%s", want, ready)
		}
	}
	// A submission that arrives now is not in the file the page described.
	a.insert(t, "new-patient", patient("Late", "Lara", ""), day.Add(2*time.Hour), ReviewNew)
	file := "/export/file?t=" + strings.TrimPrefix(loc, "/export/ready?t=")
	got := c.get(file)
	if got.Code != http.StatusOK || !strings.Contains(got.Body.String(), "Jane") || strings.Contains(got.Body.String(), "Lara") ||
		!strings.Contains(got.Header().Get("Content-Disposition"), "airlock-export-") {
		t.Errorf("file: %d %q\n%s", got.Code, got.Header().Get("Content-Disposition"), got.Body.String())
	}
	if a.countAudit(t, "export") != 1 {
		t.Errorf("%d export entries, want 1", a.countAudit(t, "export"))
	}
	// Another session, an altered ticket, an expired one: refused.
	d := a.client()
	d.login(t, other)
	if rec := d.get(file); rec.Code != http.StatusUnprocessableEntity || rec.Header().Get("Content-Disposition") != "" {
		t.Errorf("another session's ticket: %d", rec.Code)
	}
	altered := strings.Replace(file, "?t=", "?t=e", 1)
	if rec := c.get(altered); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("an altered ticket: %d", rec.Code)
	}
	a.clock.advance(exportTicketLife + time.Minute)
	c.get("/submissions") // keeps the session alive
	if rec := c.get(file); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("an expired ticket: %d", rec.Code)
	}
	// Search text is not an export filter: refused, naming it.
	if rec := c.post("/export", url.Values{"format": {"csv"}, "q": {"doe"}}); rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "Clear the search text") {
		t.Errorf("export with search text: %d", rec.Code)
	}
}
