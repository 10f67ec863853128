package transfer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/browsertest"
)

// TestEndToEndSpanishFormReachesTheClinicInItsOwnLanguage: in headless
// Chromium on a 360 px screen, a patient opens the new-patient form, switches
// it to Spanish with the switch (the pages run no script), fills and sends
// it; the receipt is in Spanish. After a transfer pass the clinic's copy
// carries the answers under the form's own (English) question texts and
// option displays, whatever language the patient read: transfer moves
// codes, and clinical shows (and exports) the texts of the form's own
// language.
func TestEndToEndSpanishFormReachesTheClinicInItsOwnLanguage(t *testing.T) {
	s := newStack(t)
	b := browsertest.New(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.Do("open the form on a phone",
		chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
		chromedp.Navigate(s.intakeURL+"/forms/new-patient"),
		chromedp.WaitVisible(css(`html[lang="en"] #send`)),
	)
	b.Do("switch it to Spanish",
		chromedp.Click(css(`.languages [lang="es"]`)),
		chromedp.WaitVisible(css(`html[lang="es"] #send`)),
	)
	if h1 := b.Text("h1"); h1 != "Registro de paciente nuevo" {
		t.Errorf("heading %q", h1)
	}
	b.Do("fill it in Spanish and send it",
		chromedp.SendKeys(css(`input[name="family-name"]`), "Quixwellington"),
		chromedp.SendKeys(css(`input[name="given-name"]`), "Aurelinde"),
		chromedp.SendKeys(css(`input[name="birth-date"]`), "1984-02-29"),
		chromedp.Click(css(`input[name="sex-at-birth"][value="female"]`)),
		chromedp.Click(css(`input[name="allergies"][value="true"]`)),
		chromedp.SendKeys(css(`textarea[name="allergy-details"]`), "Penicilina: sarpullido"),
		chromedp.Click(css(`input[name="smoker"][value="never"]`)),
		chromedp.Click(css(`input[name="consent"]`)),
		chromedp.Click(css(`#send`)),
		chromedp.WaitVisible(css("#receipt")),
	)
	if h1 := b.Text("h1"); h1 != "Gracias: su formulario se ha enviado" {
		t.Errorf("receipt heading %q", h1)
	}
	b.Axe("the Spanish receipt (360 px)")

	if sum := passOnce(t, s); sum.Moved != 1 || sum.Quarantined != 0 {
		t.Fatalf("pass %+v, want one moved", sum)
	}
	s.clinical.stdout = lockedBuffer{}
	if err := s.clinical.exec(t.Context(), "export", "--format", "ndjson"); err != nil {
		t.Fatalf("export: %v\n%s", err, s.clinical.stderr.String())
	}
	export := s.clinical.stdout.String()
	for _, want := range []string{`"text":"Do you have any allergies?"`, `"text":"What are you allergic to, and what happens?"`,
		`"text":"Sex assigned at birth"`, `"display":"Female"`, `"display":"Never smoked"`, `"valueString":"Penicilina: sarpullido"`} {
		if !strings.Contains(export, want) {
			t.Errorf("the clinic's copy lacks %s:\n%s", want, export)
		}
	}
	for _, spanish := range []string{"¿Tiene", "Mujer", "Nunca he fumado", "Sexo asignado"} {
		if strings.Contains(export, spanish) {
			t.Errorf("the clinic's copy carries the patient's language: %q", spanish)
		}
	}
}
