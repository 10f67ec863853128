package transfer_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// TestBrowserPatientDownloadsResult opens a one-time link in headless
// Chromium on a 360 px phone screen, as a patient would: the page names the
// document and fits the screen, a wrong date of birth is refused with the
// error shown, the right one downloads the document, and the link then
// tells the patient it was used.
func TestBrowserPatientDownloadsResult(t *testing.T) {
	if os.Getenv("AIRLOCK_SKIP_BROWSER") == "1" {
		t.Skip("AIRLOCK_SKIP_BROWSER=1")
	}
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			t.Fatalf("chromium is not installed (apt-get install chromium), or set AIRLOCK_SKIP_BROWSER=1: %v", err)
		}
		path = p
	}
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
	bctxTimeout, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(bctxTimeout,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(360, 800),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	fail := func(name string, err error) {
		t.Helper()
		loc, _ := chromedp.Run(bctx, chromedp.Location())
		text, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v (at %s: %.500s)", name, err, loc, text)
	}
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			fail(name, err)
		}
	}
	read := func(name string, act chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, act)
		if err != nil {
			fail(name, err)
		}
		return v
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	step("open the link on a phone",
		chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
		chromedp.Navigate(link),
		chromedp.WaitVisible(css("#download")),
	)
	if _, err := chromedp.CallBrowser(bctx, browser.SetDownloadBehavior,
		browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	if title := read("title", chromedp.Text(css("#result-title"))); title != "Blood test results" {
		t.Errorf("the page names %q", title)
	}
	if w, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 360 {
		t.Errorf("page is %d px wide on a 360 px screen (%v)", w, err)
	}
	step("a wrong date of birth",
		chromedp.SendKeys(css("#dob-day"), "1"),
		chromedp.SendKeys(css("#dob-month"), "1"),
		chromedp.SendKeys(css("#dob-year"), "1990"),
		chromedp.Click(css("#download")),
		chromedp.WaitVisible(css(".error-summary")),
	)
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
