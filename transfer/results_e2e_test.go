package transfer_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/results"
	"github.com/airlockhq/airlock/transfer"
)

// patientPage is one answer of intake to a patient's browser.
type patientPage struct {
	status int
	header http.Header
	body   []byte
}

var noRedirect = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetchPage(t *testing.T, method, u string, form url.Values, cookie *http.Cookie) patientPage {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return patientPage{resp.StatusCode, resp.Header, b}
}

var csrfFieldRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// openLink GETs a link as a browser does and returns the confirmation form's
// CSRF cookie and token.
func openLink(t *testing.T, link string) (*http.Cookie, string, patientPage) {
	t.Helper()
	p := fetchPage(t, http.MethodGet, link, nil, nil)
	if p.status != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", link, p.status, p.body)
	}
	m := csrfFieldRE.FindSubmatch(p.body)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "__Host-airlock-csrf" {
			cookie = c
		}
	}
	if m == nil || cookie == nil {
		t.Fatalf("confirmation page without a CSRF token or cookie:\n%s", p.body)
	}
	return cookie, string(m[1]), p
}

func passOnce(t *testing.T, s *stack) transfer.Summary {
	t.Helper()
	s.transfer.stdout = lockedBuffer{}
	if err := s.transfer.exec(context.Background(), "once"); err != nil {
		t.Fatalf("transfer once: %v\n%s", err, s.transfer.stderr.String())
	}
	var sum transfer.Summary
	if err := json.Unmarshal([]byte(s.transfer.stdout.String()), &sum); err != nil {
		t.Fatalf("transfer once printed %q: %v", s.transfer.stdout.String(), err)
	}
	if !strings.Contains(s.transfer.stdout.String(), `"results_moved":`) || !strings.Contains(s.transfer.stdout.String(), `"results_expired":`) {
		t.Errorf("transfer once line lacks the results counts: %s", s.transfer.stdout.String())
	}
	return sum
}

func resultState(t *testing.T, s *stack, link string) string {
	t.Helper()
	tok, ok := results.ParseToken(link[strings.LastIndex(link, "/")+1:])
	if !ok {
		t.Fatalf("no token in %q", link)
	}
	ctx := context.Background()
	pool, err := pg.Connect(ctx, s.clinicalDB, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var state string
	if err := pool.QueryRow(ctx, `SELECT state FROM results WHERE token_hash = $1`, tok.Hash()).Scan(&state); err != nil {
		t.Fatal(err)
	}
	return state
}

// TestResultLinkEndToEnd: results published with the real clinical command
// travel through the real transfer to the real intake server; a patient can
// look at a link any number of times, download it once with intake's CSRF
// token, and never again; the second factor, expiry and withdrawal hold;
// clinical learns each outcome; intake's database and every log hold
// neither a token nor a plaintext.
func TestResultLinkEndToEnd(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	s.clinical.env["CLINICAL_INTAKE_URL"] = s.intakeURL
	status, body := postJSON(t, s.intakeURL+"/api/v1/forms/new-patient/submissions", secretAnswers)
	if status != http.StatusCreated {
		t.Fatalf("submit: %d %v", status, body)
	}
	receipt := body["receipt"].(string)
	passOnce(t, s)

	dir := t.TempDir()
	doc := []byte("%PDF-1.4\n1 0 obj << >> endobj\nResult: Vexillotron-5582 within range\n%%EOF\n")
	file := filepath.Join(dir, "result.pdf")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	var links []string
	publish := func(title string, extra ...string) string {
		t.Helper()
		s.clinical.stdout = lockedBuffer{}
		args := append([]string{"results", "publish", "--receipt", receipt, "--file", file, "--title", title}, extra...)
		if err := s.clinical.exec(ctx, args...); err != nil {
			t.Fatalf("publish: %v\n%s", err, s.clinical.stderr.String())
		}
		link := strings.TrimSpace(s.clinical.stdout.String())
		if !strings.HasPrefix(link, s.intakeURL+"/r/") {
			t.Fatalf("publish printed %q", link)
		}
		links = append(links, link)
		return link
	}

	// Published results wait in clinical until a pass carries them.
	link := publish("Quarnebright blood panel")
	dob := publish("Second factor letter", "--require-birth-date")
	locked := publish("Locked letter", "--require-birth-date")
	expiring := publish("Expiring letter", "--expires", "1h")
	withdrawn := publish("Withdrawn letter")
	if p := fetchPage(t, http.MethodGet, link, nil, nil); p.status != http.StatusNotFound {
		t.Errorf("before transfer carries it: GET %d, want 404\n%s", p.status, s.intake.stderr.String())
	}
	if sum := passOnce(t, s); sum.ResultsMoved != 5 {
		t.Fatalf("results_moved %d, want 5", sum.ResultsMoved)
	}
	if st := resultState(t, s, link); st != clinical.ResultDelivered {
		t.Errorf("state after carrying: %s", st)
	}
	checkIntakeDump(t, s, links, [][]byte{[]byte("Vexillotron"), []byte("Quarnebright"), []byte("Second factor letter")})

	// GET twice: the page names the document and consumes nothing.
	openLink(t, link)
	cookie, csrf, page := openLink(t, link)
	if !bytes.Contains(page.body, []byte("Quarnebright blood panel")) {
		t.Errorf("the confirmation page does not name the document")
	}
	if page.header.Get("Cache-Control") != "no-store" {
		t.Errorf("confirmation page Cache-Control %q", page.header.Get("Cache-Control"))
	}
	// A POST without the CSRF token is refused and consumes nothing.
	if p := fetchPage(t, http.MethodPost, link, url.Values{}, cookie); p.status != http.StatusForbidden {
		t.Errorf("POST without CSRF: %d, want 403", p.status)
	}
	if p := fetchPage(t, http.MethodPost, link, url.Values{"_csrf": {csrf}}, nil); p.status != http.StatusForbidden {
		t.Errorf("POST without the CSRF cookie: %d, want 403", p.status)
	}
	got := fetchPage(t, http.MethodPost, link, url.Values{"_csrf": {csrf}}, cookie)
	if got.status != http.StatusOK || !bytes.Equal(got.body, doc) {
		t.Fatalf("download: %d, %d bytes, want 200 and the published bytes", got.status, len(got.body))
	}
	for h, want := range map[string]string{
		"Content-Type": "application/pdf", "Content-Disposition": `attachment; filename="result.pdf"`,
		"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
		"X-Frame-Options": "DENY",
	} {
		if got.header.Get(h) != want {
			t.Errorf("download %s: %q, want %q", h, got.header.Get(h), want)
		}
	}
	// Every later request: 410.
	if p := fetchPage(t, http.MethodGet, link, nil, nil); p.status != http.StatusGone {
		t.Errorf("GET after download: %d, want 410", p.status)
	}
	if p := fetchPage(t, http.MethodPost, link, url.Values{"_csrf": {csrf}}, cookie); p.status != http.StatusGone {
		t.Errorf("POST after download: %d, want 410", p.status)
	}
	// A token never issued: 404, whatever the method.
	never := s.intakeURL + "/r/" + results.NewToken().String()
	if p := fetchPage(t, http.MethodGet, never, nil, nil); p.status != http.StatusNotFound {
		t.Errorf("GET never-issued token: %d, want 404", p.status)
	}
	if p := fetchPage(t, http.MethodPost, never, url.Values{"_csrf": {csrf}}, cookie); p.status != http.StatusNotFound {
		t.Errorf("POST never-issued token: %d, want 404", p.status)
	}
	if p := fetchPage(t, http.MethodGet, s.intakeURL+"/r/short", nil, nil); p.status != http.StatusNotFound {
		t.Errorf("GET malformed token: %d, want 404", p.status)
	}
	// The date of birth factor.
	cookie, csrf, page = openLink(t, dob)
	if !bytes.Contains(page.body, []byte(`name="dob-day"`)) {
		t.Errorf("the page of a link with the factor does not ask for the date of birth")
	}
	answer := func(link, d, m, y string) patientPage {
		return fetchPage(t, http.MethodPost, link, url.Values{"_csrf": {csrf}, "dob-day": {d}, "dob-month": {m}, "dob-year": {y}}, cookie)
	}
	if p := answer(dob, "", "", ""); p.status != http.StatusUnprocessableEntity {
		t.Errorf("no date of birth: %d, want 422", p.status)
	}
	if p := answer(dob, "28", "2", "1984"); p.status != http.StatusForbidden {
		t.Errorf("wrong date of birth: %d, want 403", p.status)
	}
	if p := answer(dob, "29", "02", "1984"); p.status != http.StatusOK || !bytes.Equal(p.body, doc) {
		t.Errorf("right date of birth: %d, want 200 and the document", p.status)
	}
	for i := range results.MaxWrongBirthDates {
		if p := answer(locked, "1", "1", "2000"); p.status != http.StatusForbidden {
			t.Errorf("wrong answer %d: %d, want 403", i+1, p.status)
		}
	}
	if p := answer(locked, "29", "2", "1984"); p.status != http.StatusGone {
		t.Errorf("right answer after five wrong ones: %d, want 410", p.status)
	}
	if p := fetchPage(t, http.MethodGet, locked, nil, nil); p.status != http.StatusGone {
		t.Errorf("GET after five wrong answers: %d, want 410", p.status)
	}

	// Expiry: the link ends at its time, and transfer deletes it.
	admin := func(url, sql string, args ...any) {
		t.Helper()
		pool, err := pg.Connect(ctx, url, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	expTok, _ := results.ParseToken(expiring[strings.LastIndex(expiring, "/")+1:])
	admin(s.intakeDB, `UPDATE results SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, expTok.Hash())
	if p := fetchPage(t, http.MethodGet, expiring, nil, nil); p.status != http.StatusGone {
		t.Errorf("GET expired link: %d, want 410", p.status)
	}

	// Withdrawal by a clinician, through the app's store and login.
	wTok, _ := results.ParseToken(withdrawn[strings.LastIndex(withdrawn, "/")+1:])
	appPool, err := pg.Connect(ctx, pgtest.URLAs(t, s.clinicalDB, "airlock_clinical_app"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer appPool.Close()
	var subID, resID int64
	if err := appPool.QueryRow(ctx, `SELECT submission_id, id FROM results WHERE token_hash = $1`, wTok.Hash()).Scan(&subID, &resID); err != nil {
		t.Fatal(err)
	}
	secret, err := clinical.ParseSecretKey(s.clinical.env["CLINICAL_SECRET_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	if err := clinical.NewResults(appPool, time.Now).Withdraw(ctx, subID, resID, "staff:1", clinical.NewAudit(appPool, secret)); err != nil {
		t.Fatalf("withdraw: %v", err)
	}

	sum := passOnce(t, s)
	if sum.ResultsExpired != 1 {
		t.Errorf("results_expired %d, want 1", sum.ResultsExpired)
	}
	for link, want := range map[string]string{link: clinical.ResultDownloaded, dob: clinical.ResultDownloaded, locked: clinical.ResultLocked,
		expiring: clinical.ResultExpired, withdrawn: clinical.ResultWithdrawn} {
		if st := resultState(t, s, link); st != want {
			t.Errorf("clinical state of %q: %s, want %s", link[len(link)-6:], st, want)
		}
	}
	for _, l := range []string{expiring, withdrawn} {
		if p := fetchPage(t, http.MethodGet, l, nil, nil); p.status != http.StatusGone {
			t.Errorf("GET %s link: %d, want 410", l[len(l)-6:], p.status)
		}
	}
	if n := count(t, s.intakeDB, `SELECT count(*) FROM results`); n != 0 {
		t.Errorf("intake still holds %d results", n)
	}
	if n := count(t, s.clinicalDB, `SELECT count(*) FROM results WHERE sealed IS NOT NULL`); n != 0 {
		t.Errorf("clinical keeps %d sealed results it no longer needs", n)
	}
	if n := count(t, s.clinicalDB, `SELECT count(*) FROM audit_log WHERE action = 'result.publish'`); n != 5 {
		t.Errorf("%d result.publish audit entries, want 5", n)
	}
	if n := count(t, s.clinicalDB, `SELECT count(*) FROM audit_log WHERE action = 'result.withdraw'`); n != 1 {
		t.Errorf("%d result.withdraw audit entries, want 1", n)
	}

	// The public server's writer role alone reaches no result.
	writer := pgtest.URLAs(t, s.intakeDB, "airlock_intake_writer")
	wp, err := pg.Connect(ctx, writer, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer wp.Close()
	var n int
	if err := wp.QueryRow(ctx, `SELECT count(*) FROM results`).Scan(&n); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the writer role read the results table: %v", err)
	}

	for name, p := range map[string]*program{"intake": s.intake, "transfer": s.transfer, "clinical": s.clinical} {
		for _, l := range links {
			if strings.Contains(p.stderr.String(), l[strings.LastIndex(l, "/")+1:]) {
				t.Errorf("%s log holds a token", name)
			}
		}
		if strings.Contains(p.stderr.String(), "Vexillotron") {
			t.Errorf("%s log holds the document", name)
		}
	}
}

// checkIntakeDump dumps intake's database and fails on any token (as in the
// link, or as bytes) or plaintext in it.
func checkIntakeDump(t *testing.T, s *stack, links []string, plaintexts [][]byte) {
	t.Helper()
	dump, err := exec.Command("pg_dump", s.intakeDB).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump intake: %v\n%s", err, dump)
	}
	if n := count(t, s.intakeDB, `SELECT count(*) FROM results`); n == 0 {
		t.Fatal("the dump holds no result to check")
	}
	for _, l := range links {
		tok, _ := results.ParseToken(l[strings.LastIndex(l, "/")+1:])
		if bytes.Contains(dump, []byte(tok.String())) || bytes.Contains(dump, []byte(hex.EncodeToString(tok[:]))) {
			t.Errorf("intake's dump holds a token")
		}
	}
	for _, p := range plaintexts {
		if bytes.Contains(dump, p) || bytes.Contains(dump, []byte(hex.EncodeToString(p))) {
			t.Errorf("intake's dump holds %q", p)
		}
	}
}
