package intake_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which CI installs (.ci/run).
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium with a fresh profile, or fails the
// test when it is missing (AIRLOCK_SKIP_BROWSER=1 skips instead).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if os.Getenv("AIRLOCK_SKIP_BROWSER") == "1" {
		t.Skip("AIRLOCK_SKIP_BROWSER=1")
	}
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			t.Fatalf("Chromium is not installed (apt-get install -y chromium), or set AIRLOCK_SKIP_BROWSER=1: %v", err)
		}
		path = p
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// A phone-sized window: the form must work at 360 px.
		chromedp.WindowSize(360, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// TestBrowserNewPatient fills the new-patient form in headless Chromium:
// an incomplete submission shows the error summary and inline errors with
// the typed values kept, the completed one shows a receipt.
func TestBrowserNewPatient(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	ctx := newBrowser(t)

	err := chromedp.Do(ctx,
		// A 360 px wide phone screen.
		chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
		chromedp.Navigate(ti.url+formPath),
		chromedp.WaitVisible(`input[name="family-name"]`),
		chromedp.SendKeys(`input[name="family-name"]`, "Quorvendahl"),
		chromedp.SendKeys(`input[name="birth-date"]`, "1980-02-30"),
		chromedp.Click(`#send`),
		chromedp.WaitVisible(`.error-summary`),
	)
	if err != nil {
		t.Fatalf("incomplete submission: %v", err)
	}
	screenshot(t, ctx, "new-patient-errors.png")
	// Nothing sticks out sideways: no horizontal scrolling at 360 px.
	if w := run(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 360 {
		t.Errorf("page is %d px wide on a 360 px screen", w)
	}
	summary := run(t, ctx, chromedp.Text(`.error-summary`))
	summaryLinks := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('.error-summary a').length`))
	givenError := run(t, ctx, chromedp.Text(`#q-3-error`))
	familyValue := run(t, ctx, chromedp.Value(`input[name="family-name"]`))
	title := run(t, ctx, chromedp.Title())
	for _, want := range []string{"There is a problem", "Given name(s)", "Date of birth", "Sex assigned at birth", "Do you have any allergies?", "I agree"} {
		if !strings.Contains(summary, want) {
			t.Errorf("error summary %q does not mention %q", summary, want)
		}
	}
	if summaryLinks != 5 {
		t.Errorf("%d links in the error summary, want 5", summaryLinks)
	}
	if !strings.Contains(givenError, "required") {
		t.Errorf("inline error for given name: %q", givenError)
	}
	if familyValue != "Quorvendahl" {
		t.Errorf("family name not kept: %q", familyValue)
	}
	if strings.Contains(summary, "Quorvendahl") || strings.Contains(summary, "1980-02-30") {
		t.Errorf("error summary repeats a typed value: %q", summary)
	}
	if !strings.HasPrefix(title, "Error:") {
		t.Errorf("page title %q does not start with Error:", title)
	}

	// A summary link takes the keyboard to the field.
	if err := chromedp.Do(ctx, chromedp.Click(`.error-summary a[href="#q-3"]`)); err != nil {
		t.Fatal(err)
	}
	if focused := run(t, ctx, chromedp.Evaluate[string](`location.hash`)); focused != "#q-3" {
		t.Errorf("summary link leads to %q", focused)
	}

	err = chromedp.Do(ctx,
		chromedp.SendKeys(`input[name="given-name"]`, "Aurelinde"),
		chromedp.SetValue(`input[name="birth-date"]`, "1980-02-29"),
		chromedp.Click(`input[name="sex-at-birth"][value="female"]`),
		chromedp.Click(`input[name="allergies"][value="false"]`),
		chromedp.Click(`input[name="consent"]`),
		chromedp.Click(`#send`),
		chromedp.WaitVisible(`#receipt`),
	)
	if err != nil {
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML("main"))
		t.Fatalf("complete submission: %v\n%s", err, body)
	}
	receipt := run(t, ctx, chromedp.Text(`#receipt`))
	screenshot(t, ctx, "new-patient-receipt.png")
	if !receiptRE.MatchString(strings.TrimSpace(receipt)) {
		t.Errorf("receipt %q", receipt)
	}
	if n := ti.rows(t); n != 1 {
		t.Errorf("%d rows stored, want 1", n)
	}
	answers := ti.lastAnswers(t)
	if !strings.Contains(string(answers["family-name"]), "Quorvendahl") || !strings.Contains(string(answers["consent"]), "true") {
		t.Errorf("sealed answers %v", answers)
	}
}

// run runs one browser action that returns a value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// screenshot saves the whole page as a PNG into AIRLOCK_SCREENSHOT_DIR,
// when set, so a person can look at what the test saw.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("AIRLOCK_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png := run(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
	}
}
