package clinical

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
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
