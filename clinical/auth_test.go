package clinical

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func hasSession(c *client) bool { _, ok := c.cookies[sessionCookie]; return ok }

// TestLoginDenials: each way a login can be wrong is refused with the login
// page, sets no session and is audited as a login failure.
func TestLoginDenials(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	pending := a.newUser(t, "new@clinic.example", true, true, RoleViewer)
	a.owner.Exec(t.Context(), `UPDATE staff SET status = 'pending' WHERE id = $1`, pending.id)
	disabled := a.newUser(t, "gone@clinic.example", true, true, RoleViewer)
	a.owner.Exec(t.Context(), `UPDATE staff SET status = 'disabled' WHERE id = $1`, disabled.id)
	unenrolled := a.newUser(t, "fresh@clinic.example", true, false, RoleViewer)

	cases := []struct {
		name       string
		email, pw  string
		code       func() string
		wantStatus int
		wantReason string
	}{
		{"wrong password", u.email, u.password + "x", func() string { return a.code(t, u) }, http.StatusUnauthorized, "password"},
		{"unknown account", "nobody@clinic.example", u.password, func() string { return a.code(t, u) }, http.StatusUnauthorized, "unknown-account"},
		{"missing code", u.email, u.password, func() string { return "" }, http.StatusUnauthorized, "code-missing"},
		{"wrong code", u.email, u.password, func() string { return wrongCode(a.code(t, u)) }, http.StatusUnauthorized, "code"},
		{"pending account", pending.email, pending.password, func() string { return a.code(t, pending) }, http.StatusForbidden, "pending"},
		{"not enrolled, empty password", unenrolled.email, "", func() string { return "" }, http.StatusUnauthorized, "not-enrolled"},
		{"not enrolled, a code as password", unenrolled.email, unenrolled.createCode, func() string { return "" }, http.StatusUnauthorized, "not-enrolled"},
		{"disabled account", disabled.email, disabled.password, func() string { return a.code(t, disabled) }, http.StatusUnauthorized, "disabled"},
	}
	for _, tc := range cases {
		c := a.client()
		a.clock.advance(30 * time.Second)
		before := a.countAudit(t, "login.failure")
		rec := c.post("/login", url.Values{"email": {tc.email}, "password": {tc.pw}, "code": {tc.code()}})
		if rec.Code != tc.wantStatus || hasSession(c) || !strings.Contains(rec.Body.String(), `action="/login"`) {
			t.Errorf("%s: status %d, session %v; want %d, the login page and no session", tc.name, rec.Code, hasSession(c), tc.wantStatus)
		}
		if a.countAudit(t, "login.failure") != before+1 {
			t.Errorf("%s: not audited", tc.name)
		}
		var reason string
		a.owner.QueryRow(t.Context(), `SELECT detail::jsonb ->> 'reason' FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&reason)
		if reason != tc.wantReason {
			t.Errorf("%s: audited reason %q, want %q", tc.name, reason, tc.wantReason)
		}
	}

	// A code works once: a second login in the same time step is refused.
	a.clock.advance(30 * time.Second)
	code := a.code(t, u)
	first := a.client()
	if rec := first.post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {code}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("first use of a code: %d", rec.Code)
	}
	second := a.client()
	rec := second.post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {code}})
	if rec.Code != http.StatusUnauthorized || hasSession(second) {
		t.Errorf("reused code: status %d, session %v; want 401 and none", rec.Code, hasSession(second))
	}
	// So does the code of an earlier step, still inside the drift window.
	a.clock.advance(30 * time.Second)
	fresh := a.code(t, u)
	a.client().post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {fresh}})
	a.clock.advance(-30 * time.Second)
	old := a.code(t, u)
	a.clock.advance(30 * time.Second)
	if rec := a.client().post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {old}}); rec.Code != http.StatusUnauthorized {
		t.Errorf("code of an older step after a newer one: %d, want 401", rec.Code)
	}
}

func wrongCode(c string) string {
	return string(rune('0'+(c[0]-'0'+1)%10)) + c[1:]
}

// TestLoginThrottling: after AccountLimit failures an account is locked for
// the window, even with the right password, and one address is limited
// across accounts.
func TestLoginThrottling(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	a.srv.accounts.AddrLimit = 8
	for i := 0; i < a.srv.accounts.AccountLimit; i++ {
		if rec := a.client().post("/login", url.Values{"email": {u.email}, "password": {"wrong password " + u.password}}); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, rec.Code)
		}
	}
	c := a.client()
	a.clock.advance(30 * time.Second)
	rec := c.post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {a.code(t, u)}})
	if rec.Code != http.StatusTooManyRequests || hasSession(c) || !strings.Contains(rec.Body.String(), "Too many failed logins") {
		t.Fatalf("locked account: status %d, session %v; want 429 with a clear message", rec.Code, hasSession(c))
	}
	if a.countAudit(t, "login.throttled") == 0 {
		t.Errorf("throttling is not audited")
	}
	// After the window the right credentials work again.
	a.clock.advance(a.srv.accounts.ThrottleWindow)
	c.login(t, u)

	// One address trying many accounts.
	attacker := a.client()
	for i := 0; i < a.srv.accounts.AddrLimit; i++ {
		attacker.post("/login", url.Values{"email": {"guess" + string(rune('a'+i)) + "@clinic.example"}, "password": {"password guess"}})
	}
	a.clock.advance(30 * time.Second)
	rec = attacker.post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {a.code(t, u)}})
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("address over its limit: %d, want 429", rec.Code)
	}
}

// TestSessionLifetime: idle and absolute timeouts, rotation at login, and
// logging out everywhere.
func TestSessionLifetime(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)

	t.Run("idle", func(t *testing.T) {
		c := a.client()
		c.login(t, u)
		a.clock.advance(14 * time.Minute)
		if rec := c.get("/submissions"); rec.Code != http.StatusOK {
			t.Fatalf("after 14 idle minutes: %d", rec.Code)
		}
		a.clock.advance(16 * time.Minute)
		rec := c.get("/submissions")
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "session has ended") {
			t.Fatalf("after 16 idle minutes: %d, want 401 with the login page", rec.Code)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		c := a.client()
		c.login(t, u)
		for i := 0; i < 12*6-1; i++ { // busy all day, a request every 10 minutes
			a.clock.advance(10 * time.Minute)
			if rec := c.get("/submissions"); rec.Code != http.StatusOK {
				t.Fatalf("after %d minutes: %d", (i+1)*10, rec.Code)
			}
		}
		a.clock.advance(11 * time.Minute)
		if rec := c.get("/submissions"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("past 12 hours: %d, want 401", rec.Code)
		}
	})
	t.Run("rotated at login", func(t *testing.T) {
		c := a.client()
		c.login(t, u)
		old := *c.cookies[sessionCookie]
		c.login(t, u)
		if c.cookies[sessionCookie].Value == old.Value {
			t.Fatal("login kept the old session token")
		}
		stale := a.client()
		stale.cookies[sessionCookie] = &old
		if rec := stale.get("/submissions"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("the pre-login token still works: %d", rec.Code)
		}
	})
	t.Run("logout everywhere", func(t *testing.T) {
		phone, desk := a.client(), a.client()
		phone.login(t, u)
		desk.login(t, u)
		if rec := desk.post("/logout-everywhere", nil); rec.Code != http.StatusSeeOther {
			t.Fatalf("logout everywhere: %d", rec.Code)
		}
		if rec := phone.get("/submissions"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("the other session survived: %d", rec.Code)
		}
	})
	t.Run("forged token", func(t *testing.T) {
		c := a.client()
		c.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: strings.Repeat("A", tokenLen)}
		if rec := c.get("/submissions"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("forged token: %d", rec.Code)
		}
	})
}

// TestCSRF: a state-changing request without the right token is refused
// with 403 and changes nothing, logged in or not.
func TestCSRF(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	s := a.insert(t, "symptoms", patient("Doe", "Jane", ""), a.clock.now(), ReviewNew)

	anon := a.client()
	anon.get("/login")
	a.clock.advance(30 * time.Second)
	creds := url.Values{"email": {u.email}, "password": {u.password}, "code": {a.code(t, u)}}
	if rec := anon.do(http.MethodPost, "/login", creds); rec.Code != http.StatusForbidden || hasSession(anon) {
		t.Errorf("login without a CSRF token: %d, want 403", rec.Code)
	}
	c := a.client()
	c.login(t, u)
	for _, token := range []string{"", "wrong", anon.csrf()} {
		form := url.Values{"from": {"new"}, "to": {"in_review"}}
		if token != "" {
			form.Set("csrf", token)
		}
		if rec := c.do(http.MethodPost, "/submissions/"+s.intakeID+"/status", form); rec.Code != http.StatusForbidden {
			t.Errorf("status change with CSRF token %q: %d, want 403", token, rec.Code)
		}
	}
	var status string
	a.owner.QueryRow(context.Background(), `SELECT status FROM submissions WHERE id = $1`, s.id).Scan(&status)
	if status != ReviewNew {
		t.Errorf("a refused request changed the status to %s", status)
	}
	if rec := c.do(http.MethodPost, "/logout", url.Values{}); rec.Code != http.StatusForbidden {
		t.Errorf("logout without a token: %d, want 403", rec.Code)
	}
	if rec := c.post("/submissions/"+s.intakeID+"/status", url.Values{"from": {"new"}, "to": {"in_review"}}); rec.Code != http.StatusSeeOther {
		t.Errorf("with the right token: %d, want 303", rec.Code)
	}
}

// TestEnrolment: an account that has not enrolled cannot log in; its owner
// enters the email and both enrolment codes (either alone, swapped, wrong,
// reused or expired is refused), which opens a session that may only enrol;
// a weak password or a wrong or reused code is refused; then the session is
// rotated to a full one and the TOTP secret is stored encrypted.
func TestEnrolment(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.srv.accounts.AccountLimit = 8
	u := a.newUser(t, "doc@clinic.example", true, false, RoleClinician)
	late := a.newUser(t, "late@clinic.example", true, false, RoleClinician)
	if rec := a.client().post("/login", url.Values{"email": {u.email}, "password": {u.createCode}}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("login before enrolment: %d, want 401", rec.Code)
	}
	c := a.client()
	if rec := c.get("/enrol"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `action="/enrol/start"`) {
		t.Fatalf("enrolment start page: %d", rec.Code)
	}
	for _, tc := range []struct{ name, create, approve string }{
		{"swapped codes", u.approveCode, u.createCode},
		{"a wrong create code", flipCode(u.createCode), u.approveCode},
		{"no approve code", u.createCode, ""},
		{"another account's codes", late.createCode, late.approveCode},
	} {
		rec := c.post("/enrol/start", url.Values{"email": {u.email}, "create_code": {tc.create}, "approve_code": {tc.approve}})
		if rec.Code != http.StatusUnprocessableEntity || hasSession(c) {
			t.Errorf("enrolment start with %s: %d, session %v; want 422 and none", tc.name, rec.Code, hasSession(c))
		}
	}
	// The right codes, typed in capitals with spaces, open an enrolment session.
	typed := strings.ToUpper(strings.ReplaceAll(u.createCode, "-", " "))
	rec := c.post("/enrol/start", url.Values{"email": {"DOC@clinic.example"}, "create_code": {typed}, "approve_code": {u.approveCode}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/enrol" || !hasSession(c) {
		t.Fatalf("enrolment start: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	// The codes work once.
	if rec := a.client().post("/enrol/start", url.Values{"email": {u.email}, "create_code": {u.createCode}, "approve_code": {u.approveCode}}); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("codes used twice: %d, want 422", rec.Code)
	}
	if rec := c.get("/submissions"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/enrol" {
		t.Fatalf("data before enrolment: %d, want a redirect to /enrol", rec.Code)
	}
	if rec := c.post("/submissions", url.Values{"q": {"x"}}); rec.Code != http.StatusForbidden {
		t.Fatalf("POST before enrolment: %d, want 403", rec.Code)
	}
	st, err := a.srv.accounts.Get(t.Context(), u.id)
	if err != nil {
		t.Fatal(err)
	}
	if u.secret, err = a.srv.accounts.EnrolTOTPSecret(st); err != nil {
		t.Fatal(err)
	}
	page := c.get("/enrol")
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), spaced(u.secret)) {
		t.Fatalf("enrol page: %d, secret shown: %v", page.Code, strings.Contains(page.Body.String(), spaced(u.secret)))
	}
	if qr := c.get("/enrol/qr.png"); qr.Code != http.StatusOK || qr.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("QR code: %d %s", qr.Code, qr.Header().Get("Content-Type"))
	}
	good := "quiet lantern seventy rivers"
	for _, tc := range []struct{ name, pw, confirm, code string }{
		{"short", "short pw", "short pw", a.code(t, u)},
		{"common", "Password1234!", "Password1234!", a.code(t, u)},
		{"mismatch", good, good + "x", a.code(t, u)},
		{"wrong code", good, good, wrongCode(a.code(t, u))},
		{"missing code", good, good, ""},
	} {
		if rec := c.post("/enrol", url.Values{"password": {tc.pw}, "confirm": {tc.confirm}, "code": {tc.code}}); rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("enrol with %s: %d, want 422", tc.name, rec.Code)
		}
	}
	// Wrong codes count against the account like failed logins.
	for i := 0; i < a.srv.accounts.AccountLimit; i++ {
		c.post("/enrol", url.Values{"password": {good}, "confirm": {good}, "code": {wrongCode(a.code(t, u))}})
	}
	if rec := c.post("/enrol", url.Values{"password": {good}, "confirm": {good}, "code": {a.code(t, u)}}); rec.Code != http.StatusTooManyRequests {
		t.Errorf("enrolment after too many wrong codes: %d, want 429", rec.Code)
	}
	a.clock.advance(a.srv.accounts.ThrottleWindow)
	c.get("/enrol") // keep the session alive past the idle timeout
	enrolSession := c.cookies[sessionCookie].Value
	code := a.code(t, u)
	if rec := c.post("/enrol", url.Values{"password": {good}, "confirm": {good}, "code": {code}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("enrol: %d", rec.Code)
	}
	if c.cookies[sessionCookie].Value == enrolSession {
		t.Errorf("enrolment kept the session token")
	}
	if rec := c.get("/submissions"); rec.Code != http.StatusOK {
		t.Errorf("after enrolment: %d", rec.Code)
	}
	if rec := c.get("/enrol/qr.png"); rec.Code == http.StatusOK {
		t.Errorf("the secret is still shown after enrolment")
	}
	// The enrolment code was used: it does not log in again.
	if rec := a.client().post("/login", url.Values{"email": {u.email}, "password": {good}, "code": {code}}); rec.Code != http.StatusUnauthorized {
		t.Errorf("the enrolment code logged in again: %d", rec.Code)
	}
	var enc []byte
	a.owner.QueryRow(t.Context(), `SELECT totp_secret_enc FROM staff WHERE id = $1`, u.id).Scan(&enc)
	if strings.Contains(string(enc), u.secret) || len(enc) < 28 {
		t.Errorf("TOTP secret not encrypted at rest")
	}
	// The secret does not open under another key or for another account.
	if _, err := NewTOTPBox(SecretKey{1}).Open(u.id, enc); err == nil {
		t.Errorf("TOTP secret opens under another key")
	}
	if _, err := a.srv.accounts.totp.Open(u.id+1, enc); err == nil {
		t.Errorf("TOTP secret opens for another account")
	}
	// Codes expire.
	a.clock.advance(a.srv.accounts.EnrolCodeTTL)
	if rec := a.client().post("/enrol/start", url.Values{"email": {late.email}, "create_code": {late.createCode}, "approve_code": {late.approveCode}}); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("expired codes: %d, want 422", rec.Code)
	}
	var stored int
	a.owner.QueryRow(t.Context(), `SELECT count(*) FROM staff_enrolment_codes WHERE staff_id = $1`, u.id).Scan(&stored)
	if stored != 0 {
		t.Errorf("%d codes left after enrolment", stored)
	}
}

// flipCode changes the first character of an enrolment code.
func flipCode(c string) string {
	if c[0] == 'a' {
		return "b" + c[1:]
	}
	return "a" + c[1:]
}

func spaced(s string) string {
	var g []string
	for i := 0; i < len(s); i += 4 {
		g = append(g, s[i:min(i+4, len(s))])
	}
	return strings.Join(g, " ")
}
