package intake_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/browsertest"
	"github.com/chromedp/chromedp"
)

// newBrowser starts headless Chromium in a phone-sized window (the form
// must work at 360 px), through the one set-up every browser test uses.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.New(t, 90*time.Second, chromedp.WindowSize(360, 800)).Ctx
}

// sendNewPatient opens the new-patient form at base, answers every
// required question as a patient would and sends it, waiting for the
// receipt.
func sendNewPatient(base string) chromedp.Action[chromedp.Void] {
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + formPath),
		chromedp.WaitVisible(`input[name="family-name"]`),
		chromedp.SendKeys(`input[name="family-name"]`, "Quorvendahl"),
		chromedp.SendKeys(`input[name="given-name"]`, "Aurelinde"),
		chromedp.SetValue(`input[name="birth-date"]`, "1980-02-29"),
		chromedp.Click(`input[name="sex-at-birth"][value="female"]`),
		chromedp.Click(`input[name="allergies"][value="false"]`),
		chromedp.Click(`input[name="consent"]`),
		chromedp.Click(`#send`),
		chromedp.WaitVisible(`#receipt`),
	}
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		return chromedp.Void{}, chromedp.Do(ctx, steps...)
	}
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
