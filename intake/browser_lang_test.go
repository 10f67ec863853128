package intake_test

import (
	"bytes"
	"fmt"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/airlockhq/airlock/internal/browsertest"
)

// layoutReport is what the browser measures on a page (layoutJS).
type layoutReport struct {
	Width, Viewport int
	// HeadingGap: px between the header bar and the page's first heading
	// or panel.
	HeadingGap float64
	// BrokenNowrap: the texts kept together (example dates, receipt
	// groups) that nevertheless take more than one line.
	BrokenNowrap []string
}

const layoutJS = `(() => {
  const header = document.querySelector('.site-header').getBoundingClientRect();
  const first = document.querySelector('main').firstElementChild.getBoundingClientRect();
  const broken = [...document.querySelectorAll('.nowrap')].filter(e => e.getClientRects().length > 1).map(e => e.textContent);
  return {Width: document.documentElement.scrollWidth, Viewport: window.innerWidth,
    HeadingGap: first.top - header.bottom, BrokenNowrap: broken};
})()`

// checkLayout measures the page and reports the layout faults of issue 12
// (sideways scrolling, a heading flush against the header bar, an example
// date or receipt group broken across lines, a radio group's error bar
// starting below its legend), then runs axe-core on it.
func checkLayout(t *testing.T, b *browsertest.Browser, page string) {
	t.Helper()
	r := browsertest.Run(b, "measure "+page, chromedp.Evaluate[layoutReport](layoutJS))
	if r.Width > r.Viewport {
		t.Errorf("%s: page is %d px wide in a %d px viewport", page, r.Width, r.Viewport)
	}
	if r.HeadingGap < 16 {
		t.Errorf("%s: the first heading sits %.0f px below the header bar", page, r.HeadingGap)
	}
	for _, s := range r.BrokenNowrap {
		t.Errorf("%s: %q breaks across lines", page, s)
	}
	checkErrorBars(t, b, page)
	b.Axe(page)
}

// barSpot is where, on screen, a fieldset in error must show its red bar:
// in the bar, level with the middle of its legend's first line.
type barSpot struct {
	X, Y, Viewport float64
	Legend         string
}

const barSpotJS = `((i) => {
  const f = [...document.querySelectorAll('fieldset.field-error')].filter(f => f.querySelector(':scope > legend'))[i];
  if (!f) return null;
  f.scrollIntoView({block: 'center'});
  const l = f.querySelector(':scope > legend'), fr = f.getBoundingClientRect(), lr = l.getBoundingClientRect();
  const line = parseFloat(getComputedStyle(l).lineHeight);
  return {X: fr.left + 2, Y: lr.top + line / 2, Viewport: window.innerWidth, Legend: l.textContent.trim().slice(0, 40)};
})`

// checkErrorBars looks at the pixels: a radio or checkbox group in error
// shows its red bar beside the first line of its question, not from below
// it (a fieldset draws its border from the legend's middle).
func checkErrorBars(t *testing.T, b *browsertest.Browser, page string) {
	t.Helper()
	for i := 0; ; i++ {
		spot := browsertest.Run(b, "find the error bars", chromedp.Evaluate[*barSpot](fmt.Sprintf("%s(%d)", barSpotJS, i)))
		if spot == nil {
			return
		}
		shot := browsertest.Run(b, "screenshot", chromedp.CaptureScreenshot())
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatal(err)
		}
		scale := float64(img.Bounds().Dx()) / spot.Viewport
		r, g, bl, _ := img.At(int(spot.X*scale), int(spot.Y*scale)).RGBA()
		if !(r>>8 > 140 && g>>8 < 80 && bl>>8 < 80) {
			t.Errorf("%s: no error bar beside the first line of %q (colour %d,%d,%d there)", page, spot.Legend, r>>8, g>>8, bl>>8)
		}
	}
}

// TestBrowserSpanishForm, at 360 px and at desktop width in headless
// Chromium: the list of forms and the form switch to Spanish by plain links
// (the pages allow no script at all), the Spanish form answers a
// disabled question's answer with an error naming the answer it depends
// on, keeps what was typed, marks the follow-up required only once it
// applies, and sends; the receipt page is in Spanish and its groups never
// break. No page has an axe-core violation.
func TestBrowserSpanishForm(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	b := browsertest.New(t, 3*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// stale marks the page shown now, so that waiting for an element on
	// "fresh" waits for the next page, not this one.
	stale := chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.stale = '1'`)
	fresh := func(sel string) chromedp.Action[chromedp.Void] {
		if rest, ok := strings.CutPrefix(sel, "html"); ok {
			return chromedp.WaitVisible(css(`html:not([data-stale])` + rest))
		}
		return chromedp.WaitVisible(css(`html:not([data-stale]) ` + sel))
	}
	sent := 0
	for _, size := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"360 px", 360, 740, true}, {"desktop", 1280, 900, false}} {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		at := func(page string) string { return fmt.Sprintf("%s (%s)", page, size.name) }

		b.Do(at("the list of forms"),
			chromedp.EmulateViewport(size.width, size.height, opts...),
			chromedp.Navigate(ti.url+"/"),
			chromedp.WaitVisible(css(".form-list")),
		)
		checkLayout(t, b, at("the list of forms"))
		b.Do(at("switch the list to Spanish"),
			stale,
			chromedp.Click(css(`.languages a[lang="es"]`)),
			fresh(`html[lang="es"] .form-list`),
		)
		if h1 := b.Text("h1"); h1 != "Formularios" {
			t.Errorf("%s: heading %q", at("Spanish list"), h1)
		}
		b.Do(at("open the form from the Spanish list"),
			stale,
			chromedp.Click(css(`.form-list a[href^="/forms/new-patient"]`)),
			fresh(`input[name="family-name"]`),
		)
		if lang := browsertest.Run(b, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "es" {
			t.Fatalf("%s: the form opened from the Spanish list is in %q", size.name, lang)
		}
		checkLayout(t, b, at("the Spanish form"))
		// The switch back and forth (buttons that post the form: what was
		// typed stays), the page's language follows.
		b.Do(at("switch the form to English"),
			chromedp.SendKeys(css(`input[name="family-name"]`), "Quorvendahl"),
			stale,
			chromedp.Click(css(`.languages [lang="en"]`)),
			fresh(`html[lang="en"] input[name="family-name"]`),
		)
		if h1 := b.Text("h1"); h1 != "New patient registration" {
			t.Errorf("%s: English heading %q", size.name, h1)
		}
		checkLayout(t, b, at("the English form"))
		if v := browsertest.Run(b, "typed", chromedp.Value(css(`input[name="family-name"]`))); v != "Quorvendahl" {
			t.Errorf("%s: the switch lost what was typed: %q", size.name, v)
		}
		b.Do(at("switch the form to Spanish"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name="family-name"]').value = ''`),
			stale,
			chromedp.Click(css(`.languages [lang="es"]`)),
			fresh(`html[lang="es"] input[name="family-name"]`),
		)
		if h1 := b.Text("h1"); h1 != "Registro de paciente nuevo" {
			t.Errorf("%s: Spanish heading %q", size.name, h1)
		}
		label := b.Text(`label[for="` + browsertest.Run(b, "id", chromedp.Evaluate[string](`document.querySelector('textarea[name="allergy-details"]').id`)) + `"]`)
		if strings.Contains(label, "obligatoria") {
			t.Errorf("%s: the follow-up is marked required before it applies: %q", size.name, label)
		}

		// Allergies "No", yet details typed: an error naming the answer.
		b.Do(at("send with an answer that does not apply"),
			chromedp.SendKeys(css(`input[name="family-name"]`), "Quorvendahl"),
			chromedp.SendKeys(css(`input[name="given-name"]`), "Aurelinde"),
			chromedp.SendKeys(css(`input[name="birth-date"]`), "1980-02-29"),
			chromedp.Click(css(`input[name="sex-at-birth"][value="female"]`)),
			chromedp.Click(css(`input[name="allergies"][value="false"]`)),
			chromedp.SendKeys(css(`textarea[name="allergy-details"]`), "Penicilina"),
			chromedp.Click(css(`input[name="consent"]`)),
			stale,
			chromedp.Click(css(`#send`)),
			fresh(".error-summary"),
		)
		errText := b.Text(`.field-error .error-message`)
		want := "Esta pregunta solo corresponde si su respuesta a «¿Tiene alguna alergia?» es «Sí», así que debe quedar vacía."
		if !strings.Contains(errText, want) {
			t.Errorf("%s: error %q, want it to contain %q", size.name, errText, want)
		}
		if v := browsertest.Run(b, "kept", chromedp.Value(css(`textarea[name="allergy-details"]`))); v != "Penicilina" {
			t.Errorf("%s: the typed details were not kept: %q", size.name, v)
		}
		if title := browsertest.Run(b, "title", chromedp.Title()); !strings.HasPrefix(title, "Error: Registro de paciente nuevo") {
			t.Errorf("%s: title %q", size.name, title)
		}
		checkLayout(t, b, at("the Spanish form with an error"))
		// Answer "Yes" and leave the details empty: now the follow-up is
		// required, and says so, and a radio group in error shows its bar
		// from the top of its question.
		b.Do(at("allergies yes, details empty"),
			chromedp.Click(css(`input[name="allergies"][value="true"]`)),
			chromedp.Evaluate[chromedp.Void](`document.querySelector('textarea[name="allergy-details"]').value = ''`),
			chromedp.Click(css(`input[name="sex-at-birth"][value="female"]`)),
			stale,
			chromedp.Click(css(`#send`)),
			fresh(".error-summary"),
		)
		if errText := b.Text(`.field-error .error-message`); !strings.Contains(errText, "Esta pregunta es obligatoria.") {
			t.Errorf("%s: follow-up error %q", size.name, errText)
		}
		if n := browsertest.Run(b, "aria-required", chromedp.Evaluate[int](`document.querySelectorAll('textarea[name="allergy-details"][aria-required="true"]').length`)); n != 1 {
			t.Errorf("%s: the follow-up that now applies is not aria-required", size.name)
		}
		// A radio group in error: its bar starts at its legend.
		// Enter in a field sends the form: the switch's buttons, first in
		// the document, must not be the form's default button.
		b.Do(at("a radio group in error, sent with Enter"),
			chromedp.Navigate(ti.url+"/forms/new-patient?lang=es"),
			chromedp.WaitVisible(css(`input[name="family-name"]`)),
			stale,
			chromedp.SendKeys(css(`input[name="given-name"]`), "Aurelinde"+kb.Enter),
			fresh(".error-summary"),
		)
		if lang := browsertest.Run(b, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "es" {
			t.Errorf("%s: Enter switched the language to %q instead of sending", size.name, lang)
		}
		if n := browsertest.Run(b, "radio errors", chromedp.Evaluate[int](`document.querySelectorAll('fieldset.field-error').length`)); n < 2 {
			t.Errorf("%s: %d radio groups in error, want the sex and allergies groups", size.name, n)
		}
		checkLayout(t, b, at("the Spanish form with every required answer missing"))

		b.Do(at("send in Spanish"),
			chromedp.SendKeys(css(`input[name="family-name"]`), "Quorvendahl"),
			chromedp.SendKeys(css(`input[name="given-name"]`), "Aurelinde"),
			chromedp.SendKeys(css(`input[name="birth-date"]`), "1980-02-29"),
			chromedp.Click(css(`input[name="sex-at-birth"][value="female"]`)),
			chromedp.Click(css(`input[name="allergies"][value="true"]`)),
			chromedp.SendKeys(css(`textarea[name="allergy-details"]`), "Penicilina: sarpullido"),
			chromedp.Click(css(`input[name="consent"]`)),
			stale,
			chromedp.Click(css(`#send`)),
			fresh("#receipt"),
		)
		sent++
		if h1 := b.Text("h1"); h1 != "Gracias: su formulario se ha enviado" {
			t.Errorf("%s: receipt heading %q", size.name, h1)
		}
		if lang := browsertest.Run(b, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "es" {
			t.Errorf("%s: receipt page in %q", size.name, lang)
		}
		if r := strings.TrimSpace(b.Text("#receipt")); !receiptRE.MatchString(r) {
			t.Errorf("%s: receipt %q", size.name, r)
		}
		checkLayout(t, b, at("the Spanish receipt"))
		// An error page in Spanish (an address with no form).
		b.Do(at("a missing page"),
			chromedp.Navigate(ti.url+"/forms/no-such-form?lang=es"),
			chromedp.WaitVisible(css("main h1")),
		)
		if h1 := b.Text("h1"); h1 != "Página no encontrada" {
			t.Errorf("%s: 404 heading %q", size.name, h1)
		}
		checkLayout(t, b, at("the Spanish 404 page"))
		if n := ti.rows(t); n != sent {
			t.Errorf("%s: %d rows stored, want %d", size.name, n, sent)
		}
		// Sealed as the form defines its answers: codes, not Spanish words.
		answers := ti.lastAnswers(t)
		if a := string(answers["sex-at-birth"]); !strings.Contains(a, `"code":"female"`) || !strings.Contains(a, `"display":"Female"`) {
			t.Errorf("%s: sealed sex-at-birth %s", size.name, a)
		}
	}
}
