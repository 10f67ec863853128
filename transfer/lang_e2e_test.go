package transfer_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEndToEndSpanishFormReachesTheClinicInItsOwnLanguage: a patient fills
// the new-patient form in Spanish (?lang=es), its errors and receipt come
// in Spanish, and the clinic's copy carries the answers under the form's
// own (English) question texts and option displays, whatever language the
// patient read: transfer moves codes, and clinical exports the texts of
// the form's own language.
func TestEndToEndSpanishFormReachesTheClinicInItsOwnLanguage(t *testing.T) {
	s := newStack(t)
	form := s.intakeURL + "/forms/new-patient?lang=es"
	cookie, token, page := openLink(t, form)
	if !strings.Contains(string(page.body), `<html lang="es">`) || !strings.Contains(string(page.body), "¿Tiene alguna alergia?") {
		t.Fatalf("the form is not in Spanish:\n%.2000s", page.body)
	}
	answers := url.Values{
		"_csrf": {token}, "family-name": {"Quixwellington"}, "given-name": {"Aurelinde"}, "birth-date": {"1984-02-29"},
		"sex-at-birth": {"female"}, "allergies": {"true"}, "allergy-details": {"Penicilina: sarpullido"}, "smoker": {"never"},
		"email": {"aurelinde.q@example.org"}, "consent": {"true"},
	}
	sent := fetchPage(t, http.MethodPost, form, answers, cookie)
	if sent.status != http.StatusSeeOther || !strings.HasSuffix(sent.header.Get("Location"), "/sent?lang=es") {
		t.Fatalf("send: %d %s\n%.2000s", sent.status, sent.header.Get("Location"), sent.body)
	}
	var receiptCookie *http.Cookie
	for _, c := range (&http.Response{Header: sent.header}).Cookies() {
		if c.Name == "__Host-airlock-receipt" {
			receiptCookie = c
		}
	}
	receipt := fetchPage(t, http.MethodGet, s.intakeURL+sent.header.Get("Location"), nil, receiptCookie)
	if receipt.status != http.StatusOK || !strings.Contains(string(receipt.body), "Gracias: su formulario se ha enviado") {
		t.Fatalf("receipt page: %d\n%.2000s", receipt.status, receipt.body)
	}

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
