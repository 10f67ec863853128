package clinical

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/browsertest"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/results"
)

// TestBrowserPublishResult drives the clinician's publish flow in headless
// Chromium: log in, open a submission, upload a document with a title, an
// expiry and the date-of-birth factor, see the one-time link and its QR
// code once, go back and see the result's state, then withdraw it.
func TestBrowserPublishResult(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.srv.intakeURL = "https://forms.example.org"
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	ans := patient("Doe", "Jane", "")
	ans["birth-date"] = []forms.Value{date("1971-07-04")}
	s := a.insert(t, "new-patient", ans, time.Now(), ReviewNew)
	file := filepath.Join(t.TempDir(), "letter.pdf")
	if err := os.WriteFile(file, []byte("%PDF-1.4\nDischarge letter\n%%EOF\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ts := httptest.NewServer(a.srv.Echo)
	defer ts.Close()
	b := browsertest.New(t, 90*time.Second)
	step := b.Do
	read := func(name string, act chromedp.Action[string]) string {
		t.Helper()
		return browsertest.Run(b, name, act)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	a.clock.advance(30 * time.Second)
	step("log in",
		chromedp.Navigate(ts.URL+"/login"),
		chromedp.WaitVisible(css("#email")),
		chromedp.SendKeys(css("#email"), u.email),
		chromedp.SendKeys(css("#password"), u.password),
		chromedp.SendKeys(css("#code"), a.code(t, u)),
		chromedp.Submit(css("#code")),
		chromedp.WaitVisible(css("#q")),
	)
	step("open the submission",
		chromedp.Navigate(ts.URL+"/submissions/"+s.intakeID),
		chromedp.WaitVisible(css("#publish-result")),
	)
	b.Axe("the detail page with the publish form")
	step("publish a result",
		chromedp.SendKeys(css("#result-title"), "Discharge letter"),
		chromedp.SetUploadFiles(css("#result-file"), []string{file}),
		chromedp.SetValue(css("#result-expires"), "7"),
		chromedp.Click(css("#result-dob")),
		chromedp.Click(css("#publish")),
		chromedp.WaitVisible(css("#result-link")),
	)
	b.Axe("the one-time link page")
	link := read("read the link", chromedp.Text(css("#result-link")))
	tok, ok := results.ParseToken(strings.TrimPrefix(link, "https://forms.example.org/r/"))
	if !ok {
		t.Fatalf("the page shows %q, not a one-time link", link)
	}
	qr := read("QR code", chromedp.Evaluate[string](`(() => { const q = document.querySelector('svg.qr'); return q ? q.getBoundingClientRect().width + ' ' + q.querySelector('path').getAttribute('d').length : '' })()`))
	if qr == "" || strings.HasPrefix(qr, "0 ") {
		t.Errorf("no visible QR code on the link page: %q", qr)
	}
	var expires, published time.Time
	var dob bool
	if err := a.owner.QueryRow(b.Ctx, `SELECT expires_at, published_at, birth_date_required FROM results WHERE token_hash = $1`, tok.Hash()).
		Scan(&expires, &published, &dob); err != nil {
		t.Fatalf("the link's token hash is not stored: %v", err)
	}
	if expires.Sub(published) != 7*24*time.Hour || !dob {
		t.Errorf("stored expiry %s, date of birth %v; want 7 days and true", expires.Sub(published), dob)
	}
	step("back to the submission",
		chromedp.Click(css(`a[href="/submissions/`+s.intakeID+`"]`)),
		chromedp.WaitVisible(css("table.results")),
	)
	b.Axe("the detail page with a published result")
	if st := read("state", chromedp.Text(css(".result-state"))); !strings.Contains(st, "Published") {
		t.Errorf("state shown %q", st)
	}
	if body := read("page", chromedp.Text(css("main"))); strings.Contains(body, tok.String()) {
		t.Error("the submission page shows the link again")
	}
	step("withdraw",
		chromedp.Click(css("button.withdraw")),
		chromedp.WaitVisible(css(".notice")),
	)
	if st := read("state", chromedp.Text(css(".result-state"))); !strings.Contains(st, "Withdrawn") {
		t.Errorf("state after withdrawal %q", st)
	}
}
