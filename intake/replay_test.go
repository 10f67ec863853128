package intake_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/internal/browsertest"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
)

var codeHTML = shownCode{regexp.MustCompile(`<p class="receipt" id="correction-code">(.*?)</p>`)}

// receiptOf reads the receipt and correction code from a receipt page.
func receiptOf(t *testing.T, page response) (receipt, code string) {
	t.Helper()
	r, c := receiptHTML.FindSubmatch(page.body), codeHTML.FindSubmatch(page.body)
	if r == nil || c == nil || !codeRE.Match(c[1]) {
		t.Fatalf("no receipt and correction code on the page: %.2000s", page.body)
	}
	return string(r[1]), string(c[1])
}

// postForm sends a rendered form (s) with fields, as the browser that
// holds s's cookie.
func (ti *testIntake) postForm(t *testing.T, s session, fields url.Values, extraCookies ...string) response {
	t.Helper()
	h := s.header()
	for _, c := range extraCookies {
		h.Set("Cookie", h.Get("Cookie")+"; "+c)
	}
	return ti.do(t, request{method: "POST", path: formPath, contentType: formType, body: s.formBody(fields), header: h})
}

// receiptCookieOf is the receipt cookie a sent form's 303 set, as
// "name=value".
func receiptCookieOf(t *testing.T, resp response) string {
	t.Helper()
	for _, c := range (&http.Response{Header: resp.header}).Cookies() {
		if c.Name == receiptCookie {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no receipt cookie in %q", resp.header.Values("Set-Cookie"))
	return ""
}

// TestFormSentTwiceStoresOnce: post/redirect/get, and a rendered form
// posted again (a reload of the POST, a double tap, a retry) shows the
// first receipt and stores nothing; the same rendered form with other
// answers stores nothing either.
func TestFormSentTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	s, _ := ti.openForm(t, formPath)
	first := ti.postForm(t, s, validForm())
	if loc := first.header.Get("Location"); loc != formPath+"/sent?lang=en" {
		t.Fatalf("sent form redirects to %q", loc)
	}
	receipt, code := receiptOf(t, ti.followReceipt(t, first))
	if strings.Contains(first.header.Get("Location"), receipt) {
		t.Fatal("the receipt is in the URL")
	}

	// Reloading the receipt page (a GET) shows it again.
	cookie := receiptCookieOf(t, first)
	again := ti.do(t, request{method: "GET", path: formPath + "/sent", header: http.Header{"Cookie": {cookie}}})
	if r, c := receiptOf(t, again); r != receipt || c != code {
		t.Errorf("reloaded receipt page shows %s/%s, want the first", r, c)
	}
	if cc := again.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("receipt page Cache-Control %q", cc)
	}

	// The same POST again, without the receipt cookie (another tab, a
	// retry whose first answer never arrived): the same receipt.
	second := ti.postForm(t, s, validForm())
	if r, c := receiptOf(t, ti.followReceipt(t, second)); r != receipt || c != code {
		t.Errorf("posting the form again shows %s/%s, want the first receipt", r, c)
	}
	if n := ti.rows(t); n != 1 {
		t.Fatalf("%d rows after sending one rendered form twice, want 1", n)
	}

	// Back, change an answer, send the same rendered form (or a retry
	// whose first answer was lost, with a typo fixed): nothing is stored
	// and nothing is lost. The form comes back with the changed answers,
	// a fresh token and a notice; no receipt is shown. With or without the
	// receipt cookie alike.
	changed := withFields(validForm(), map[string]string{"given-name": "Robin"})
	for _, extra := range [][]string{{cookie}, nil} {
		resp := ti.postForm(t, s, changed, extra...)
		if resp.status != http.StatusUnprocessableEntity || !strings.Contains(string(resp.body), "already sent") ||
			!strings.Contains(string(resp.body), `value="Robin"`) {
			t.Fatalf("changed answers on the same form (cookie %v): %d %s", extra != nil, resp.status, resp.body)
		}
		if strings.Contains(string(resp.body), receipt) || strings.Contains(string(resp.body), code) {
			t.Fatal("the refusal shows the first receipt")
		}
		if n := ti.rows(t); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
		// The form that came back is a new rendered form: sending it
		// stores the changed answers as a new submission.
		m := csrfFieldRE.FindSubmatch(resp.body)
		if m == nil || string(m[1]) == s.token {
			t.Fatal("the form came back without a fresh token")
		}
		if extra != nil {
			continue
		}
		fresh := s
		fresh.token = string(m[1])
		if r, _ := receiptOf(t, ti.followReceipt(t, ti.postForm(t, fresh, changed))); r == receipt || ti.rows(t) != 2 {
			t.Fatalf("sending the returned form: receipt %s, %d rows; want a new receipt and 2 rows", r, ti.rows(t))
		}
	}

	// A newly rendered form is a new submission.
	s2, _ := ti.openForm(t, formPath)
	if r, _ := receiptOf(t, ti.followReceipt(t, ti.postForm(t, s2, validForm()))); r == receipt {
		t.Error("a new rendered form got the first receipt")
	}
	if n := ti.rows(t); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	for _, secret := range []string{receipt, code} {
		if strings.Contains(ti.logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestReceiptPageNeedsItsCookie: without the sealed cookie, with a forged
// or altered one, or after Done, the receipt page shows nothing.
func TestReceiptPageNeedsItsCookie(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	s, _ := ti.openForm(t, formPath)
	sent := ti.postForm(t, s, validForm())
	receipt, _ := receiptOf(t, ti.followReceipt(t, sent))
	cookie := receiptCookieOf(t, sent)
	name, value, _ := strings.Cut(cookie, "=")
	altered := []byte(value)
	altered[len(altered)/2] ^= 1
	if altered[len(altered)/2] == '-'+1 || altered[len(altered)/2] == '_'+1 { // keep it base64url
		altered[len(altered)/2] = 'A'
	}
	for _, c := range []string{"", name + "=" + string(altered), name + "=" + strings.Repeat("A", len(value))} {
		resp := ti.do(t, request{method: "GET", path: formPath + "/sent", header: http.Header{"Cookie": {c}}})
		if resp.status != http.StatusNotFound || strings.Contains(string(resp.body), receipt) || !strings.Contains(string(resp.body), "No receipt") {
			t.Errorf("cookie %.20q: status %d, body %s", c, resp.status, resp.body)
		}
	}
	// Another form's receipt page does not show it.
	if resp := ti.do(t, request{method: "GET", path: symptomsForm + "/sent", header: http.Header{"Cookie": {cookie}}}); resp.status != http.StatusNotFound {
		t.Errorf("another form's receipt page: %d", resp.status)
	}

	// Done clears the cookie (and needs the page's CSRF token).
	page := ti.do(t, request{method: "GET", path: formPath + "/sent", header: http.Header{"Cookie": {cookie + "; " + csrfCookie + "=" + s.cookie}}})
	m := csrfFieldRE.FindSubmatch(page.body)
	if m == nil {
		t.Fatalf("receipt page has no Done form: %s", page.body)
	}
	h := s.header()
	h.Set("Cookie", h.Get("Cookie")+"; "+cookie)
	if resp := ti.do(t, request{method: "POST", path: formPath + "/sent", contentType: formType, body: "", header: h}); resp.status != http.StatusForbidden {
		t.Errorf("Done without a token: %d", resp.status)
	}
	done := ti.do(t, request{method: "POST", path: formPath + "/sent", contentType: formType, body: url.Values{"_csrf": {string(m[1])}}.Encode(), header: h})
	if done.status != http.StatusSeeOther {
		t.Fatalf("Done: %d %s", done.status, done.body)
	}
	cleared := false
	for _, c := range (&http.Response{Header: done.header}).Cookies() {
		cleared = cleared || (c.Name == receiptCookie && c.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("Done did not clear the receipt cookie: %q", done.header.Values("Set-Cookie"))
	}
}

// TestConcurrentDoublePostStoresOnce: the same rendered form posted many
// times at once (a double tap, a retry racing the first) stores one row and
// every answer carries the same receipt.
func TestConcurrentDoublePostStoresOnce(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	s, _ := ti.openForm(t, formPath)
	const n = 8
	receipts := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp := ti.do(t, request{method: "POST", path: formPath, contentType: formType, body: s.formBody(validForm()), header: s.header()})
			if resp.status != http.StatusSeeOther {
				t.Errorf("post %d: status %d %s", i, resp.status, resp.body)
				return
			}
			receipts[i] = receiptCookieOf(t, resp) // sealed afresh each time; compare what it shows below
			page := ti.do(t, request{method: "GET", path: formPath + "/sent", header: http.Header{"Cookie": {receipts[i]}}})
			receipts[i], _ = receiptOf(t, page)
		}()
	}
	close(start)
	wg.Wait()
	for i := 1; i < n; i++ {
		if receipts[i] != receipts[0] {
			t.Errorf("post %d got receipt %q, post 0 %q", i, receipts[i], receipts[0])
		}
	}
	if got := ti.rows(t); got != 1 {
		t.Fatalf("%d rows from %d concurrent posts of one rendered form, want 1", got, n)
	}
}

const submitNewPatient = "/api/v1/forms/new-patient/submissions"

func (ti *testIntake) postJSON(t *testing.T, path, ctype, body, key string) (response, map[string]string) {
	t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	resp := ti.do(t, request{method: "POST", path: path, contentType: ctype, body: body, header: h})
	var out map[string]string
	if resp.status == http.StatusCreated {
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return resp, out
}

// TestIdempotencyKey: the JSON and FHIR APIs store one submission per
// Idempotency-Key and answer a repeat with the first receipt; the same key
// with other answers is 422 and stores nothing; a weak key is 400.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	const key = "0b7e9f2c-4d1a-4e8b-9c3f-5a6d7e8f9a0b"
	resp, first := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), key)
	if resp.status != http.StatusCreated {
		t.Fatalf("first: %d %s", resp.status, resp.body)
	}
	// The same answers, encoded differently: the same submission.
	resp, again := ti.postJSON(t, submitNewPatient, jsonType, "\n "+answersJSON(nil)+" \n", `"`+key+`"`)
	if resp.status != http.StatusCreated || again["receipt"] != first["receipt"] || again["correction_code"] != first["correction_code"] {
		t.Fatalf("repeat: %d %v, want %v", resp.status, again, first)
	}
	if n := ti.rows(t); n != 1 {
		t.Fatalf("%d rows after the same key twice, want 1", n)
	}

	// The same key with other answers: 422 naming the header; nothing
	// stored, nothing of the first submission shown.
	resp, _ = ti.postJSON(t, submitNewPatient, jsonType, answersJSON(map[string]any{"given-name": "Robin"}), key)
	if resp.status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %d %s", resp.status, resp.body)
	}
	checkFieldErrors(t, resp.body, []string{"Idempotency-Key"})
	if strings.Contains(string(resp.body), first["receipt"]) || strings.Contains(string(resp.body), first["correction_code"]) {
		t.Fatal("the refusal shows the first receipt")
	}
	if n := ti.rows(t); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}

	// FHIR QuestionnaireResponse: the same.
	const fhirKey = "f5c1d2e3-a4b5-4c6d-8e7f-90a1b2c3d4e5"
	qr := questionnaireResponseJSON(validAnswers(), "https://airlock.dev/fhir/Questionnaire/new-patient")
	_, f1 := ti.postJSON(t, submitNewPatient, fhirType, qr, fhirKey)
	resp, f2 := ti.postJSON(t, submitNewPatient, fhirType, qr, fhirKey)
	if resp.status != http.StatusCreated || f1["receipt"] == "" || f1["receipt"] != f2["receipt"] || f1["receipt"] == first["receipt"] {
		t.Fatalf("FHIR repeat: %v then %v", f1, f2)
	}
	if n := ti.rows(t); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}

	// Without a key every request is a new submission, as before.
	_, a := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), "")
	_, b := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), "")
	if a["receipt"] == b["receipt"] || ti.rows(t) != 4 {
		t.Fatalf("without a key: %v, %v, %d rows", a, b, ti.rows(t))
	}

	// Weak or malformed keys are refused before anything is stored.
	for _, bad := range []string{"short", strings.Repeat("a", 40), "1212121212121212121212121212", "has a space in the key 1234567", strings.Repeat("k", 300), "abcdefgh\u00e9ijklmnopqrstuvwxyz"} {
		resp, _ := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), bad)
		if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), "Idempotency-Key") || strings.Contains(string(resp.body), bad) {
			t.Errorf("key %.12q: %d %s", bad, resp.status, resp.body)
		}
	}
	two := ti.do(t, request{method: "POST", path: submitNewPatient, contentType: jsonType, body: answersJSON(nil),
		header: http.Header{"Idempotency-Key": {key, "another-key-0123456789abcdef"}}})
	if two.status != http.StatusBadRequest {
		t.Errorf("two keys: %d", two.status)
	}
	if n := ti.rows(t); n != 4 {
		t.Fatalf("%d rows after refused keys, want 4", n)
	}
	if strings.Contains(ti.logs.String(), key) {
		t.Error("the log holds an Idempotency-Key")
	}
}

// TestGuessedKeyRevealsNothing: someone who learns or guesses another
// person's Idempotency-Key or rendered form token cannot obtain their
// receipt or correction code: other answers are refused without them, a
// near key is another submission, and a form token needs its own cookie.
func TestGuessedKeyRevealsNothing(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	const key = "7c1f3a9e-2b4d-4f6a-8c0e-1d3f5a7b9c2e"
	_, victim := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), key)
	if victim["correction_code"] == "" {
		t.Fatal("no victim submission")
	}
	secret := func(b []byte) bool {
		return strings.Contains(string(b), victim["receipt"]) || strings.Contains(string(b), victim["correction_code"])
	}
	// The right key, a guess at the answers.
	for _, guess := range []map[string]any{{"given-name": "Alexa"}, {"birth-date": "1980-03-01"}, {"email": "alex@example.org"}} {
		resp, _ := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(guess), key)
		if resp.status != http.StatusUnprocessableEntity || secret(resp.body) {
			t.Errorf("guessed answers %v: %d %s", guess, resp.status, resp.body)
		}
	}
	// The right answers, a near key, another form's endpoint: new
	// submissions with receipts and codes of their own.
	for _, k := range []string{key[:len(key)-1] + "f", strings.ToUpper(key)} {
		resp, out := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), k)
		if resp.status != http.StatusCreated || secret(resp.body) || out["correction_code"] == "" {
			t.Errorf("near key %q: %d %s", k, resp.status, resp.body)
		}
	}

	// HTML: the victim's rendered form token without the victim's cookie
	// fails the CSRF check; with a cookie of one's own too.
	vs, _ := ti.openForm(t, formPath)
	sent := ti.postForm(t, vs, validForm())
	vReceipt, vCode := receiptOf(t, ti.followReceipt(t, sent))
	attacker, _ := ti.openForm(t, formPath)
	stolen := session{cookie: attacker.cookie, token: vs.token}
	if resp := ti.postForm(t, stolen, validForm()); resp.status != http.StatusForbidden || strings.Contains(string(resp.body), vReceipt) {
		t.Errorf("a stolen form token with another cookie: %d", resp.status)
	}
	// Even with the victim's cookie, other answers show nothing.
	resp := ti.postForm(t, vs, withFields(validForm(), map[string]string{"family-name": "Guess"}))
	if resp.status != http.StatusUnprocessableEntity || strings.Contains(string(resp.body), vReceipt) || strings.Contains(string(resp.body), vCode) {
		t.Errorf("the victim's form with other answers: %d %s", resp.status, resp.body)
	}
	if len(resp.header.Values("Set-Cookie")) != 0 && strings.Contains(strings.Join(resp.header.Values("Set-Cookie"), ";"), receiptCookie) {
		t.Error("the refusal hands out a receipt cookie")
	}
}

// TestRepeatAfterTransferMovedTheRow: once transfer has moved (deleted) the
// row, a repeat still stores nothing and shows the first receipt, and the
// key with other answers is still refused (migration 000090's tombstones).
func TestRepeatAfterTransferMovedTheRow(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	const key = "3e5a7c9b-1d2f-4a6c-8e0b-2c4e6a8d0f1b"
	_, first := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), key)
	ctx := context.Background()
	worker, err := pgx.Connect(ctx, pgtest.URLAs(t, ti.ownerURL, "airlock_intake_transfer"))
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close(ctx)
	if _, err := worker.Exec(ctx, `DELETE FROM submissions`); err != nil {
		t.Fatalf("transfer deletes the moved row: %v", err)
	}
	resp, again := ti.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), key)
	if resp.status != http.StatusCreated || again["receipt"] != first["receipt"] || again["correction_code"] != first["correction_code"] {
		t.Fatalf("repeat after the move: %d %v, want %v", resp.status, again, first)
	}
	if n := ti.rows(t); n != 0 {
		t.Fatalf("%d rows stored again after the move, want 0", n)
	}
	resp, _ = ti.postJSON(t, submitNewPatient, jsonType, answersJSON(map[string]any{"given-name": "Robin"}), key)
	if resp.status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other answers, after the move: %d %s", resp.status, resp.body)
	}
	if n := ti.rows(t); n != 0 {
		t.Fatalf("%d rows, want 0", n)
	}
	// The writer cannot read the tombstones.
	writer, err := pgx.Connect(ctx, pgtest.URLAs(t, ti.ownerURL, "airlock_intake_writer"))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(ctx)
	if _, err := writer.Exec(ctx, `SELECT 1 FROM submission_replays`); err == nil {
		t.Error("the intake writer can read submission_replays")
	}
}

// TestBrowserReloadAfterSubmit: in headless Chromium at 360 px, send the
// form, reload the receipt page: one row, the same receipt.
func TestBrowserReloadAfterSubmit(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	b := browsertest.New(t, 2*time.Minute, chromedp.WindowSize(360, 800))
	ctx := b.Ctx
	err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile), sendNewPatient(ti.url))
	if err != nil {
		t.Fatalf("send the form: %v", err)
	}
	receipt := run(t, ctx, chromedp.Text(`#receipt`))
	code := run(t, ctx, chromedp.Text(`#correction-code`))
	loc := run(t, ctx, chromedp.Evaluate[string](`location.pathname + location.search`))
	if loc != formPath+"/sent?lang=en" {
		t.Errorf("receipt page at %q, want %s/sent", loc, formPath)
	}
	if w := run(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 360 {
		t.Errorf("receipt page is %d px wide on a 360 px screen", w)
	}
	screenshot(t, ctx, "receipt-before-reload.png")
	b.Axe("the receipt page")
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(`#receipt`)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if r, c := run(t, ctx, chromedp.Text(`#receipt`)), run(t, ctx, chromedp.Text(`#correction-code`)); r != receipt || c != code || !receiptRE.MatchString(strings.TrimSpace(r)) {
		t.Errorf("after reload %q/%q, want %q/%q", r, c, receipt, code)
	}
	if n := ti.rows(t); n != 1 {
		t.Errorf("%d rows after submit and reload, want 1", n)
	}
	// Done hides it: a reload then shows no receipt.
	if err := chromedp.Do(ctx, chromedp.Click(`#receipt-done`), chromedp.WaitVisible(`a[href="/forms/new-patient"]`),
		chromedp.Navigate(ti.url+formPath+"/sent"), chromedp.WaitVisible(`h1`)); err != nil {
		t.Fatalf("done: %v", err)
	}
	if body := run(t, ctx, chromedp.Text(`main`)); strings.Contains(body, receipt) || !strings.Contains(body, "No receipt") {
		t.Errorf("after Done the receipt page shows %q", body)
	}
	b.Axe("the page with no receipt")
}

// TestTwoReplicas: two intake servers with the same settings behind a load
// balancer. A form rendered by one may be sent to the other, its repeat to
// the first, its receipt shown by either, and an Idempotency-Key holds
// across them: one row each. No replica keeps state of its own.
func TestTwoReplicas(t *testing.T) {
	t.Parallel()
	a := newTestIntake(t)
	cfg := &intake.Config{
		PlainHTTP: true, Recipients: []seal.PublicKey{a.key.Public}, RowKey: a.rowKey, Forms: forms.Builtin(),
		MaxBody: testMaxBody, MaxAttachment: testMaxAttachment,
	}
	srv := intake.NewServer(cfg, intake.NewStore(a.pool), slog.New(slog.NewJSONHandler(a.logs, nil)))
	ts := httptest.NewServer(srv.Echo)
	t.Cleanup(ts.Close)
	b := *a
	b.url = ts.URL

	s, _ := a.openForm(t, formPath)
	first := b.postForm(t, s, validForm())
	receipt, code := receiptOf(t, a.followReceipt(t, first))
	if r, c := receiptOf(t, b.followReceipt(t, a.postForm(t, s, validForm()))); r != receipt || c != code {
		t.Errorf("the repeat on the other replica shows %s/%s, want %s/%s", r, c, receipt, code)
	}
	const key = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
	_, x := a.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), key)
	resp, y := b.postJSON(t, submitNewPatient, jsonType, answersJSON(nil), key)
	if resp.status != http.StatusCreated || x["receipt"] == "" || x["receipt"] != y["receipt"] {
		t.Errorf("one key on two replicas: %v then %v", x, y)
	}
	if n := a.rows(t); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

// TestNextVisitForgetsTheReceipt: on a shared computer the next person
// must not find the last one's receipt and correction code. Opening the
// list of forms or a form clears the receipt cookie, and it lives only a
// few minutes anyway.
func TestNextVisitForgetsTheReceipt(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	s, _ := ti.openForm(t, formPath)
	sent := ti.postForm(t, s, validForm())
	cookie := receiptCookieOf(t, sent)
	for _, path := range []string{"/", formPath} {
		resp := ti.do(t, request{method: "GET", path: path, header: http.Header{"Cookie": {cookie}}})
		cleared := false
		for _, c := range (&http.Response{Header: resp.header}).Cookies() {
			if c.Name == "__Host-airlock-receipt" && c.MaxAge < 0 {
				cleared = true
			}
		}
		if !cleared {
			t.Errorf("GET %s does not clear the receipt cookie: %q", path, resp.header.Values("Set-Cookie"))
		}
	}
	for _, c := range (&http.Response{Header: sent.header}).Cookies() {
		if c.Name == "__Host-airlock-receipt" && (c.MaxAge <= 0 || c.MaxAge > 5*60) {
			t.Errorf("receipt cookie lives %d s, want at most 5 minutes", c.MaxAge)
		}
	}
}

// TestBrowserSharedComputerBackAfterDone: A sends the form and presses
// Done; B, at the same browser, goes Back to the form. The form must not
// come back filled with A's answers (sending it would store a second copy
// in A's name), and B sees neither A's receipt nor code (an adversarial
// review saw A's answers restored and a second row stored).
func TestBrowserSharedComputerBackAfterDone(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	b := browsertest.New(t, 2*time.Minute)
	ctx := b.Ctx
	err := chromedp.Do(ctx, sendNewPatient(ti.url))
	if err != nil {
		t.Fatalf("send the form: %v", err)
	}
	receipt := run(t, ctx, chromedp.Text(`#receipt`))
	code := run(t, ctx, chromedp.Text(`#correction-code`))
	if err := chromedp.Do(ctx, chromedp.Click(`#receipt-done`, chromedp.NodeVisible), chromedp.WaitNotPresent(`#receipt`)); err != nil {
		t.Fatalf("Done: %v", err)
	}
	// B goes back until the form is on screen.
	// formShown polls (through navigations, whose in-flight evaluations
	// fail) until the form is on screen, for up to five seconds.
	formShown := func() bool {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && document.querySelector('input[name="family-name"]') !== null`))
			if err == nil && ok {
				return true
			}
		}
		return false
	}
	onForm := false
	for i := 0; i < 3 && !onForm; i++ {
		// Back after the evaluation has answered: a navigation during it
		// fails the call with "target navigated or closed".
		chromedp.Run(ctx, chromedp.Evaluate[bool](`setTimeout(() => history.back(), 0), true`))
		onForm = formShown()
	}
	if !onForm {
		t.Fatal("Back never reached the form")
	}
	if fam := run(t, ctx, chromedp.Evaluate[string](`document.querySelector('input[name="family-name"]').value`)); fam != "" {
		t.Errorf("after Done and Back the form holds A's family name %q", fam)
	}
	// The emptied form comes back with errors: nothing of A's is sent.
	sendCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sendCtx, chromedp.Click(`#send`), chromedp.WaitVisible(`.error-summary`)); err != nil {
		t.Fatalf("send after Back: %v", err)
	}
	body := run(t, ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if strings.Contains(body, receipt) || strings.Contains(body, code) {
		t.Errorf("B sees A's receipt or correction code")
	}
	if n := ti.rows(t); n != 1 {
		t.Errorf("%d rows after B sent the form from Back, want 1 (A's)", n)
	}
}
