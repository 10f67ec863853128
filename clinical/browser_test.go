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
)

// TestBrowserReviewJourney drives the staff app in headless Chromium over
// plain HTTP on loopback (a secure context, so the Secure __Host- cookies
// work): enrol with the two enrolment codes, a new password and TOTP, log
// out and log in again with a fresh code, find a submission by name, open
// it, change its status, and export.
func TestBrowserReviewJourney(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, false, RoleClinician)
	day := time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC)
	target := a.insert(t, "new-patient", patient("Doe", "Jane", "ibuprofen twice daily"), day, ReviewNew)
	other := a.insert(t, "new-patient", patient("Roe", "Richard", ""), day.Add(time.Hour), ReviewNew)
	a.insert(t, "symptoms", forms.Answers{"complaint": {str("Cough")}}, day.Add(2*time.Hour), ReviewNew)

	ts := httptest.NewServer(a.srv.Echo)
	defer ts.Close()
	base := ts.URL // http://127.0.0.1:port

	downloads := t.TempDir()
	b := browsertest.New(t, 5*time.Minute) // generous: CI machines are loaded
	step := b.Do
	read := func(name string, a chromedp.Action[string]) string {
		t.Helper()
		return browsertest.Run(b, name, a)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	step("open the login page",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(css("#email")),
	)
	b.Axe("the login page")
	b.AllowDownloads(downloads)
	step("open the enrolment page", chromedp.Navigate(base+"/enrol"), chromedp.WaitVisible(css("#create_code")))
	b.Axe("the enrolment start page")
	step("enrol with the two codes",
		chromedp.Navigate(base+"/enrol"),
		chromedp.WaitVisible(css("#create_code")),
		chromedp.SendKeys(css("#email"), u.email),
		chromedp.SendKeys(css("#create_code"), u.createCode),
		chromedp.SendKeys(css("#approve_code"), u.approveCode),
		chromedp.Submit(css("#approve_code")),
		chromedp.WaitVisible(css("#totp-secret")),
	)
	b.Axe("the enrolment page")
	secret := read("read the secret", chromedp.Text(css("#totp-secret")))
	location := read("location", chromedp.Location())
	u.secret = strings.ReplaceAll(secret, " ", "")
	if !strings.HasSuffix(location, "/enrol") || len(u.secret) != 32 {
		t.Fatalf("enrolment page at %s shows secret %q", location, secret)
	}
	newPassword := "amber kettle under thirty bridges"
	a.clock.advance(30 * time.Second)
	step("enrol",
		chromedp.SendKeys(css("#password"), newPassword),
		chromedp.SendKeys(css("#confirm"), newPassword),
		chromedp.SendKeys(css("#code"), a.code(t, u)),
		chromedp.Submit(css("#code")),
		chromedp.WaitVisible(css("#q")),
	)
	if location = read("location", chromedp.Location()); !strings.HasSuffix(location, "/submissions") {
		t.Fatalf("after enrolment at %s", location)
	}
	step("log out",
		chromedp.Click(css(`form[action="/logout"] button`)),
		chromedp.WaitVisible(css("#email")),
	)
	if msg := read("logout confirmation", chromedp.Text(css(".info"))); msg != "You are logged out." {
		t.Errorf("after logout the page says %q", msg)
	}
	b.Axe("the login page after logout")
	a.clock.advance(30 * time.Second)
	step("log in with password and TOTP",
		chromedp.SendKeys(css("#email"), u.email),
		chromedp.SendKeys(css("#password"), newPassword),
		chromedp.SendKeys(css("#code"), a.code(t, u)),
		chromedp.Submit(css("#code")),
		chromedp.WaitVisible(css("#q")),
	)
	row := css(`a[href="/submissions/` + target.intakeID + `"]`)
	step("search by name",
		chromedp.SendKeys(css("#q"), "doe"),
		chromedp.Submit(css("#q")),
		// The page before the search lists every row: wait for the other
		// patient to be gone, then for the match.
		chromedp.WaitNotPresent(css(`a[href="/submissions/`+other.intakeID+`"]`)),
		chromedp.WaitVisible(row),
	)
	b.Axe("the search result")
	listing := read("read the list", chromedp.Text(css("table")))
	location = read("location", chromedp.Location())
	if !strings.Contains(listing, "Doe, Jane") || strings.Contains(listing, "Roe") || strings.Contains(strings.ToLower(location), "doe") {
		t.Fatalf("search result %q at %s", listing, location)
	}
	step("open the submission",
		chromedp.Click(row),
		chromedp.WaitVisible(css("#set-status")),
	)
	b.Axe("the detail page")
	if detail := read("read the submission", chromedp.Text(css("main"))); !strings.Contains(detail, "Family name") || !strings.Contains(detail, "ibuprofen twice daily") {
		t.Fatalf("detail page: %.400s", detail)
	}
	step("change the status",
		chromedp.SetValue(css("#to"), ReviewInReview),
		chromedp.Click(css("#set-status")),
		chromedp.WaitVisible(css(".notice")),
	)
	b.Axe("the detail page after a status change")
	if status := read("read the status", chromedp.Text(css("#status"))); status != "In review" {
		t.Fatalf("status shown %q", status)
	}
	step("export",
		chromedp.Navigate(base+"/submissions"),
		chromedp.WaitVisible(css("#export")),
		chromedp.SetValue(css("#format"), "csv"),
		chromedp.Click(css("#export")),
	)
	var exported string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && exported == ""; time.Sleep(100 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(downloads, "airlock-export-*.csv"))
		if len(files) == 1 {
			b, _ := os.ReadFile(files[0])
			exported = string(b)
		}
	}
	if !strings.Contains(exported, "Jane") || !strings.Contains(exported, "Richard") {
		t.Fatalf("export not downloaded or incomplete: %q", exported)
	}
	for _, action := range []string{"staff.enrol", "login.success", "submission.list", "submission.view", "submission.status", "export", "logout"} {
		if a.countAudit(t, action) == 0 {
			t.Errorf("no %s in the audit log", action)
		}
	}
}
