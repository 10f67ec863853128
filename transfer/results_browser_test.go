package transfer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/browsertest"
)

// TestBrowserPatientDownloadsResult opens a one-time link in headless
// Chromium on a 360 px phone screen, as a patient would: the page names the
// document and fits the screen, a wrong date of birth is refused with the
// error shown, the right one downloads the document, and the link then
// tells the patient it was used.
func TestBrowserPatientDownloadsResult(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	s.clinical.env["CLINICAL_INTAKE_URL"] = s.intakeURL
	status, body := postJSON(t, s.intakeURL+"/api/v1/forms/new-patient/submissions", secretAnswers)
	if status != 201 {
		t.Fatalf("submit: %d %v", status, body)
	}
	passOnce(t, s)
	dir := t.TempDir()
	doc := "Your test results: Vexillotron-5582 within range.\n"
	file := filepath.Join(dir, "result.txt")
	os.WriteFile(file, []byte(doc), 0o600)
	if err := s.clinical.exec(ctx, "results", "publish", "--receipt", body["receipt"].(string), "--file", file,
		"--title", "Blood test results", "--require-birth-date"); err != nil {
		t.Fatalf("publish: %v\n%s", err, s.clinical.stderr.String())
	}
	link := strings.TrimSpace(s.clinical.stdout.String())
	passOnce(t, s)

	downloads := t.TempDir()
	b := browsertest.New(t, 90*time.Second, chromedp.WindowSize(360, 800))
	step := b.Do
	read := func(name string, act chromedp.Action[string]) string {
		t.Helper()
		return browsertest.Run(b, name, act)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	step("open the link on a phone",
		chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
		chromedp.Navigate(link),
		chromedp.WaitVisible(css("#download")),
	)
	b.Axe("the result link's confirmation page (360 px)")
	b.AllowDownloads(downloads)
	if title := read("title", chromedp.Text(css("#result-title"))); title != "Blood test results" {
		t.Errorf("the page names %q", title)
	}
	if w, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 360 {
		t.Errorf("page is %d px wide on a 360 px screen (%v)", w, err)
	}
	step("a wrong date of birth",
		chromedp.SendKeys(css("#dob-day"), "1"),
		chromedp.SendKeys(css("#dob-month"), "1"),
		chromedp.SendKeys(css("#dob-year"), "1990"),
		chromedp.Click(css("#download")),
		chromedp.WaitVisible(css(".error-summary")),
	)
	b.Axe("the result link's page with a wrong date of birth (360 px)")
	if msg := read("error", chromedp.Text(css("#dob-error"))); !strings.Contains(msg, "does not match") {
		t.Errorf("error shown %q", msg)
	}
	step("the right date of birth",
		chromedp.SendKeys(css("#dob-day"), "29"),
		chromedp.SendKeys(css("#dob-month"), "2"),
		chromedp.SendKeys(css("#dob-year"), "1984"),
		chromedp.Click(css("#download")),
	)
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && got == ""; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(downloads, "result.txt")); err == nil && len(b) == len(doc) {
			got = string(b)
		}
	}
	if got != doc {
		t.Fatalf("downloaded %q, want the published document", got)
	}
	step("open the link again",
		chromedp.Navigate(link),
		chromedp.WaitVisible(css("h1")),
	)
	if h := read("heading", chromedp.Text(css("h1"))); !strings.Contains(h, "no longer works") {
		t.Errorf("after the download the link shows %q", h)
	}
}
