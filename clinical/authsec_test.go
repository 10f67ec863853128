package clinical

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/cli"
)

// preLogin returns a pre-login cookie value and the CSRF token the login
// form carries with it, as a browser would get them from GET /login.
func (a *app) preLogin(tb testing.TB, n int) (cookie, token string) {
	tb.Helper()
	cookie = encodeToken([]byte(fmt.Sprintf("burst client %019d", n)))
	m := hmac.New(sha256.New, a.srv.csrfKey)
	m.Write([]byte("pre\x00" + cookie))
	return cookie, base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestLoginBurstCannotRaceThrottle: a burst of concurrent logins with the
// right password and random TOTP codes, plus the right code, over a real
// HTTP server and Postgres. At most AccountLimit of them get to check the
// password and code (the rest are refused with 429 before any hash), at most
// one logs in, and afterwards the account is locked even for the right code.
func TestLoginBurstCannotRaceThrottle(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	a.srv.accounts.slots = make(chan struct{}, 200) // this test is about the count, not the hash slots
	ts := httptest.NewServer(a.srv.Echo)
	defer ts.Close()
	client := &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	a.clock.advance(30 * time.Second)
	right := a.code(t, u)
	const burst = 150
	codes := make([]string, burst)
	for i := range codes {
		codes[i] = fmt.Sprintf("%06d", (i*7919+13)%1000000)
		if codes[i] == right {
			codes[i] = wrongCode(right)
		}
	}
	codes[burst/2] = right

	start := make(chan struct{})
	statuses := make([]int, burst)
	var wg sync.WaitGroup
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cookie, token := a.preLogin(t, i)
			form := url.Values{"email": {u.email}, "password": {u.password}, "code": {codes[i]}, "csrf": {token}}
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: preCookie, Value: cookie})
			<-start
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("attempt %d: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}(i)
	}
	close(start)
	wg.Wait()

	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	admitted := count[http.StatusUnauthorized] + count[http.StatusSeeOther]
	t.Logf("statuses: %v", count)
	if admitted > a.srv.accounts.AccountLimit {
		t.Errorf("%d attempts checked the password and code, want at most %d (statuses %v)", admitted, a.srv.accounts.AccountLimit, count)
	}
	if count[http.StatusSeeOther] > 1 {
		t.Errorf("%d logins succeeded", count[http.StatusSeeOther])
	}
	if count[http.StatusUnauthorized]+count[http.StatusSeeOther]+count[http.StatusTooManyRequests] != burst {
		t.Errorf("unexpected statuses: %v", count)
	}
	if n := a.countAudit(t, "login.failure"); n > a.srv.accounts.AccountLimit {
		t.Errorf("%d failures audited, want at most %d", n, a.srv.accounts.AccountLimit)
	}
	// Once the limit is reached, the right password and a fresh right code
	// do not log in either.
	a.clock.advance(30 * time.Second)
	c := a.client()
	if rec := c.post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {a.code(t, u)}}); count[http.StatusUnauthorized] >= a.srv.accounts.AccountLimit && (rec.Code != http.StatusTooManyRequests || hasSession(c)) {
		t.Errorf("after the burst: %d, want 429", rec.Code)
	}
}

// TestLoginSuccessKeepsFailures: a successful login clears neither the
// address's failures nor the account's: failures on an account, then its
// right credentials, then more failures from that address still reach the
// address limit.
func TestLoginSuccessKeepsFailures(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	a.srv.accounts.AddrLimit = 4
	attacker := a.client()
	for i := 0; i < a.srv.accounts.AddrLimit-1; i++ {
		attacker.post("/login", url.Values{"email": {u.email}, "password": {"password guess"}})
	}
	attacker.login(t, u)
	attacker.post("/login", url.Values{"email": {"guess9@clinic.example"}, "password": {"password guess"}})
	a.clock.advance(30 * time.Second)
	rec := a.clientAt(attacker.addr).post("/login", url.Values{"email": {"guess10@clinic.example"}, "password": {"password guess"}})
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("address over its limit after a success in between: %d, want 429", rec.Code)
	}
	var rows int
	a.owner.QueryRow(t.Context(), `SELECT count(*) FROM login_failures`).Scan(&rows)
	if rows != a.srv.accounts.AddrLimit {
		t.Errorf("%d failure rows, want %d (the success must not delete any)", rows, a.srv.accounts.AddrLimit)
	}
}

func (a *app) clientAt(addr string) *client {
	c := a.client()
	c.addr = addr
	return c
}

// TestLoginShedsWhenHashSlotsFull: with every hashing slot taken, a login
// is answered at once with 503 and Retry-After, counted, and neither
// checked nor recorded as a failure.
func TestLoginShedsWhenHashSlotsFull(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	if cap(a.srv.accounts.slots) < 2 {
		t.Fatalf("hash slots: %d", cap(a.srv.accounts.slots))
	}
	for i := 0; i < cap(a.srv.accounts.slots); i++ {
		a.srv.accounts.slots <- struct{}{}
	}
	c := a.client()
	a.clock.advance(30 * time.Second)
	rec := c.post("/login", url.Values{"email": {u.email}, "password": {u.password}, "code": {a.code(t, u)}})
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || hasSession(c) {
		t.Fatalf("login with every slot taken: %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if got := a.srv.accounts.Shed.Load(); got != 1 {
		t.Errorf("shed count %d, want 1", got)
	}
	var rows int
	a.owner.QueryRow(t.Context(), `SELECT count(*) FROM login_failures`).Scan(&rows)
	if rows != 0 || a.countAudit(t, "login.failure") != 0 {
		t.Errorf("a shed login was recorded: %d rows", rows)
	}
	for i := 0; i < cap(a.srv.accounts.slots); i++ {
		<-a.srv.accounts.slots
	}
	c.login(t, u)
}

// TestApproveRacingReset interleaves two transactions on real Postgres: a
// rogue admin's Approve of an account another admin created, and the same
// rogue admin's Reset of that account committing while the Approve waits.
// The approval must be refused: the rogue admin is now requested_by.
func TestApproveRacingReset(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	rogue := a.newUser(t, "rogue@clinic.example", true, true, RoleAdmin)
	other := a.newUser(t, "other@clinic.example", true, true, RoleAdmin)
	otherID := other.id
	if _, err := a.srv.accounts.Create(ctx, "staff:x", &otherID, "victim@clinic.example", []string{RoleClinician}, false); err != nil {
		t.Fatal(err)
	}
	var victim int64
	a.owner.QueryRow(ctx, `SELECT id FROM staff WHERE email = 'victim@clinic.example'`).Scan(&victim)
	rogueStaff, err := a.srv.accounts.Get(ctx, rogue.id)
	if err != nil {
		t.Fatal(err)
	}

	// The "Reset" transaction takes the row first.
	tx, err := a.owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var holder int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid() FROM staff WHERE id = $1 FOR UPDATE`, victim).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.srv.accounts.Approve(context.Background(), rogueStaff, victim)
		done <- err
	}()
	// Wait until the Approve is blocked on the row, whatever it read before.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := a.owner.QueryRow(ctx, `SELECT count(*) FROM pg_locks w JOIN pg_locks h
  ON h.locktype = 'transactionid' AND h.transactionid = w.transactionid AND h.granted AND h.pid = $1
WHERE NOT w.granted`, holder).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Approve did not wait for the row: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Approve never reached the row lock")
		}
	}
	// What Reset by the rogue admin writes: new credentials, pending, requested by him.
	if _, err := tx.Exec(ctx, `UPDATE staff SET status = 'pending', requested_by = $2, approved_by = NULL, approved_at = NULL,
  password_hash = 'reset by rogue' WHERE id = $1`, victim, rogue.id); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if codeOf(err) != CodeForbidden {
		t.Errorf("Approve after a concurrent Reset by the approver: %v, want forbidden", err)
	}
	var status string
	var approvedBy *int64
	a.owner.QueryRow(ctx, `SELECT status, approved_by FROM staff WHERE id = $1`, victim).Scan(&status, &approvedBy)
	if status != StatusPending || approvedBy != nil {
		t.Errorf("victim is %s, approved by %v: the rogue admin approved his own reset", status, approvedBy)
	}
}

// TestCSRFOnlyFromBody: a right CSRF token in the query string, and not in
// the body, is refused with 403.
func TestCSRFOnlyFromBody(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	s := a.insert(t, "symptoms", patient("Doe", "Jane", ""), a.clock.now(), ReviewNew)

	anon := a.client()
	a.clock.advance(30 * time.Second)
	token := anon.csrf()
	creds := url.Values{"email": {u.email}, "password": {u.password}, "code": {a.code(t, u)}}
	if rec := anon.do(http.MethodPost, "/login?csrf="+url.QueryEscape(token), creds); rec.Code != http.StatusForbidden || hasSession(anon) {
		t.Errorf("login with the token in the query string: %d, want 403", rec.Code)
	}
	c := a.client()
	c.login(t, u)
	form := url.Values{"from": {"new"}, "to": {"in_review"}}
	if rec := c.do(http.MethodPost, "/submissions/"+s.intakeID+"/status?csrf="+url.QueryEscape(c.csrf()), form); rec.Code != http.StatusForbidden {
		t.Errorf("status change with the token in the query string: %d, want 403", rec.Code)
	}
	var status string
	a.owner.QueryRow(t.Context(), `SELECT status FROM submissions WHERE id = $1`, s.id).Scan(&status)
	if status != ReviewNew {
		t.Errorf("status changed to %s", status)
	}
}

// TestPanicAndUnknownCodeGive500: a panicking handler and a domain error
// code nobody mapped both give a 500 page, the panic's value is not
// logged, and the server keeps serving.
func TestPanicAndUnknownCodeGive500(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.srv.Echo.GET("/test/panic", func(echo.Context) error { panic("Penicillin: anaphylaxis") })
	a.srv.Echo.GET("/test/unmapped", func(echo.Context) error { return &Error{Code: 99, Msg: "unmapped"} })
	ts := httptest.NewServer(a.srv.Echo)
	defer ts.Close()
	client := &http.Client{Timeout: 30 * time.Second}
	for _, path := range []string{"/test/panic", "/test/unmapped", "/test/panic"} {
		resp, err := client.Get(ts.URL + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "anaphylaxis") {
			t.Errorf("%s: %d, want 500 without the panic value", path, resp.StatusCode)
		}
	}
	resp, err := client.Get(ts.URL + "/login")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the panics: %v %v", resp, err)
	}
	resp.Body.Close()
	logs := a.logs.String()
	if !strings.Contains(logs, "panic recovered") || strings.Contains(logs, "anaphylaxis") {
		t.Errorf("logs: %s", logs)
	}
	if statusOf(0) != http.StatusInternalServerError {
		t.Errorf("statusOf(0) = %d", statusOf(0))
	}
}

// TestStaticNoListing: /static/ lists nothing; the stylesheet is served.
func TestStaticNoListing(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	if rec := c.get("/static/"); rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "app.css") {
		t.Errorf("GET /static/: %d %q, want 404", rec.Code, rec.Body.String())
	}
	if rec := c.get("/static/app.css"); rec.Code != http.StatusOK {
		t.Errorf("GET /static/app.css: %d", rec.Code)
	}
}

// TestTrustedProxies: behind a trusted proxy each client has its own
// throttling address (X-Forwarded-For), so one client over its limit does
// not lock out the others; from an untrusted peer the header is ignored.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	key, _ := NewSecretKey()
	env := map[string]string{"CLINICAL_DATABASE_URL": "postgres://u@h/db", "CLINICAL_SECRET_KEY": key.String(),
		"CLINICAL_TRUSTED_PROXIES": "10.9.0.0/16, 192.0.2.7"}
	cfg, err := LoadServeConfig(func(k string) string { return env[k] })
	if err != nil || len(cfg.TrustedProxies) != 2 {
		t.Fatalf("trusted proxies: %v %v", cfg, err)
	}
	env["CLINICAL_TRUSTED_PROXIES"] = "10.9.0.0/16,proxy.internal"
	var ue *cli.UsageError
	if _, err := LoadServeConfig(func(k string) string { return env[k] }); !errors.As(err, &ue) || !strings.HasPrefix(ue.Msg, "CLINICAL_TRUSTED_PROXIES:") {
		t.Errorf("bad entry: %v, want a usage error naming CLINICAL_TRUSTED_PROXIES", err)
	}

	extract := clientIP(cfg.TrustedProxies)
	for _, tc := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"203.0.113.5:1234", []string{"198.51.100.1"}, "203.0.113.5"},           // untrusted peer: header ignored
		{"10.9.1.1:1234", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},    // rightmost untrusted
		{"10.9.1.1:1234", []string{"198.51.100.1, 192.0.2.7"}, "198.51.100.1"},  // skip trusted hops
		{"10.9.1.1:1234", []string{"198.51.100.1", "10.9.2.2"}, "198.51.100.1"}, // several headers
		{"10.9.1.1:1234", []string{"6.6.6.6, junk, 10.9.2.2"}, "10.9.2.2"},      // malformed ends the walk
		{"10.9.1.1:1234", nil, "10.9.1.1"},                                      // no header
		{"[::ffff:10.9.1.1]:1234", []string{"2001:db8::1"}, "2001:db8::1"},      // mapped peer
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if got := extract(req); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
	if throttleAddr("2001:db8:1:2:3::4") != throttleAddr("2001:db8:1:2:ffff::9") {
		t.Errorf("IPv6 addresses of one /64 are counted apart")
	}

	// End to end: two clients behind one proxy.
	a := newApp(t, func(c *ServeConfig) { c.TrustedProxies = cfg.TrustedProxies })
	a.srv.accounts.AddrLimit = 3
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	post := func(xff string, form url.Values) int {
		c := a.clientAt("10.9.0.1:5555")
		f := url.Values{"csrf": {c.csrf()}}
		for k, v := range form {
			f[k] = v
		}
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(f.Encode()))
		req.RemoteAddr = c.addr
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", xff)
		for _, ck := range c.cookies {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		a.srv.Echo.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := 0; i < a.srv.accounts.AddrLimit; i++ {
		post("198.51.100.66", url.Values{"email": {fmt.Sprintf("guess%d@clinic.example", i)}, "password": {"password guess"}})
	}
	if code := post("198.51.100.66", url.Values{"email": {"guess9@clinic.example"}, "password": {"password guess"}}); code != http.StatusTooManyRequests {
		t.Errorf("the guessing client: %d, want 429", code)
	}
	a.clock.advance(30 * time.Second)
	if code := post("198.51.100.7", url.Values{"email": {u.email}, "password": {u.password}, "code": {a.code(t, u)}}); code != http.StatusSeeOther {
		t.Errorf("another client behind the same proxy: %d, want 303", code)
	}
}

// TestThrottledFloodAddsOneAuditEntry: once an account is locked out, a
// flood of further attempts is refused without growing the audit log. The
// failure that reaches the limit is audited once as login.throttled.
func TestThrottledFloodAddsOneAuditEntry(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	a.srv.accounts.AddrLimit = 1000
	wrong := url.Values{"email": {u.email}, "password": {"wrong password " + u.password}}
	for i := 0; i < a.srv.accounts.AccountLimit; i++ {
		if rec := a.client().post("/login", wrong); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, rec.Code)
		}
	}
	var before int
	a.owner.QueryRow(t.Context(), `SELECT count(*) FROM audit_log`).Scan(&before)
	const flood = 40
	for i := 0; i < flood; i++ {
		if rec := a.client().post("/login", wrong); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("attempt %d after the limit: %d, want 429", i, rec.Code)
		}
	}
	if got := a.countAudit(t, "login.throttled"); got != 1 {
		t.Errorf("login.throttled entries: %d, want exactly 1 (the failure that reached the limit)", got)
	}
	if got := a.countAudit(t, "login.failure"); got != a.srv.accounts.AccountLimit {
		t.Errorf("login.failure entries: %d, want %d", got, a.srv.accounts.AccountLimit)
	}
	var total int
	a.owner.QueryRow(t.Context(), `SELECT count(*) FROM audit_log`).Scan(&total)
	if grown := total - before; grown != 0 {
		t.Errorf("%d refused attempts added %d audit entries, want 0", flood, grown)
	}
}

// TestThrottledLoginsHoldNoHashSlot: a refused (throttled) attempt is
// answered 429 even when every hashing slot is taken; it never waits for,
// nor takes, a slot that a real login needs.
func TestThrottledLoginsHoldNoHashSlot(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	a.srv.accounts.AddrLimit = 1000
	wrong := url.Values{"email": {u.email}, "password": {"wrong password " + u.password}}
	for i := 0; i < a.srv.accounts.AccountLimit; i++ {
		a.client().post("/login", wrong)
	}
	for i := 0; i < cap(a.srv.accounts.slots); i++ {
		a.srv.accounts.slots <- struct{}{}
	}
	rec := a.client().post("/login", wrong)
	for i := 0; i < cap(a.srv.accounts.slots); i++ {
		<-a.srv.accounts.slots
	}
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("throttled attempt with every slot taken: %d, want 429 (it must not need a slot)", rec.Code)
	}
	if got := a.srv.accounts.Shed.Load(); got != 0 {
		t.Errorf("shed count %d: a throttled attempt competed for a slot", got)
	}
}
