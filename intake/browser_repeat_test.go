package intake_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/browsertest"
)

// TestBrowserRepeatingGroup fills a repeating group in headless Chromium at
// 360 px without script: "Add another" draws a second numbered fieldset
// keeping what was typed, "Remove" takes one out, Enter in a text box sends
// the form (not "Add another"), axe-core finds nothing on the page, and the
// two instances are sealed apart.
func TestBrowserRepeatingGroup(t *testing.T) {
	t.Parallel()
	ti := newRepeatIntake(t)
	b := browsertest.New(t, 3*time.Minute)
	b.Do("open the form",
		chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
		chromedp.Navigate(ti.url+"/forms/meds"),
		chromedp.WaitVisible(`input[name="med[1]/name"]`),
		chromedp.SendKeys(`input[name="med[1]/name"]`, "Aspirin"),
		chromedp.Click(`button[value="add:med"]`),
		chromedp.WaitVisible(`input[name="med[2]/name"]`),
	)
	if got := b.Text(`#q-1-i2 legend`); got != "Medication 2" {
		t.Errorf("second instance legend %q", got)
	}
	if v := browsertest.Run(b, "read the first name", chromedp.Value(`input[name="med[1]/name"]`)); v != "Aspirin" {
		t.Errorf("first instance's name not kept: %q", v)
	}
	if w := browsertest.Run(b, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 360 {
		t.Errorf("page is %d px wide on a 360 px screen", w)
	}
	b.Axe("repeating group with two instances")
	b.Do("a third, then remove the first",
		chromedp.SendKeys(`input[name="med[2]/name"]`, "Ibuprofen"),
		chromedp.Click(`button[value="add:med"]`),
		chromedp.WaitVisible(`input[name="med[3]/name"]`),
		chromedp.SendKeys(`input[name="med[3]/name"]`, "Paracetamol"),
		chromedp.Click(`button[value="remove:med[1]"]`),
		chromedp.WaitNotPresent(`input[name="med[3]/name"]`),
	)
	if v := browsertest.Run(b, "read the new first name", chromedp.Value(`input[name="med[1]/name"]`)); v != "Ibuprofen" {
		t.Errorf("after removing the first, the first is %q, want Ibuprofen", v)
	}
	// Enter in a text box: the form is sent, no instance is added.
	b.Do("send with Enter",
		chromedp.SendKeys(`input[name="notes"]`, "none\r"),
		chromedp.WaitVisible(`#receipt`),
	)
	if n := ti.rows(t); n != 1 {
		t.Fatalf("%d rows stored, want 1", n)
	}
	meds := string(ti.lastAnswers(t)["med"])
	if !strings.Contains(meds, "Ibuprofen") || !strings.Contains(meds, "Paracetamol") || strings.Contains(meds, "Aspirin") {
		t.Errorf("sealed instances %s", meds)
	}
}
