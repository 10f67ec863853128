package intake_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// requiredMarks finds, for each control, whether the page marks it
// required: the "(required)" note in its label and aria-required on it.
func requiredMarks(t *testing.T, body, name string) (note, aria bool) {
	t.Helper()
	ctl := regexp.MustCompile(`<(input|textarea|select)[^>]*name="` + regexp.QuoteMeta(name) + `"[^>]*>`).FindString(body)
	if ctl == "" {
		t.Fatalf("no control %s on the page", name)
	}
	id := regexp.MustCompile(`id="([^"]+)"`).FindStringSubmatch(ctl)[1]
	label := regexp.MustCompile(`<label for="` + regexp.QuoteMeta(id) + `">(.*?)</label>`).FindStringSubmatch(body)
	if label == nil {
		t.Fatalf("no label for %s", name)
	}
	return strings.Contains(label[1], `class="req"`), strings.Contains(ctl, `aria-required="true"`)
}

// TestRequiredOnlyWhileItApplies: a required follow-up question is marked
// required (note and aria-required) only while the answers on the page
// make it apply, worked out on the server without script.
func TestRequiredOnlyWhileItApplies(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	s, first := ti.openForm(t, formPath)
	body := string(first.body)
	if note, aria := requiredMarks(t, body, "allergy-details"); note || aria {
		t.Errorf("first view: the follow-up is marked required before allergies is answered (note %v, aria %v)", note, aria)
	}
	if note, aria := requiredMarks(t, body, "family-name"); !note || !aria {
		t.Errorf("first view: family-name not marked required (note %v, aria %v)", note, aria)
	}
	// Allergies "yes" with another error: the page comes back with the
	// follow-up marked required, and its own error.
	resp := ti.do(t, request{method: "POST", path: formPath, contentType: formType, header: s.header(),
		body: s.formBody(withFields(validForm(), map[string]string{"allergies": "true", "family-name": "\x00"}))})
	if resp.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", resp.status)
	}
	if note, aria := requiredMarks(t, string(resp.body), "allergy-details"); !note || !aria {
		t.Errorf("after allergies=yes: follow-up not marked required (note %v, aria %v)", note, aria)
	}
	// Allergies "no": not required again.
	resp = ti.do(t, request{method: "POST", path: formPath, contentType: formType, header: s.header(),
		body: s.formBody(withFields(validForm(), map[string]string{"allergies": "false", "family-name": "\x00"}))})
	if note, aria := requiredMarks(t, string(resp.body), "allergy-details"); note || aria {
		t.Errorf("after allergies=no: follow-up marked required (note %v, aria %v)", note, aria)
	}
}

// TestLanguages: a form is served in the language ?lang= names, else the
// one Accept-Language prefers among the form's, else the form's own; the
// page says so (<html lang>, Content-Language), offers the others as plain
// links, posts back in the same language, and its errors come from the
// catalogue in that language. The API's errors follow Accept-Language.
func TestLanguages(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	get := func(path, accept string) response {
		h := http.Header{}
		if accept != "" {
			h.Set("Accept-Language", accept)
		}
		resp := ti.do(t, request{method: "GET", path: path, header: h})
		if resp.status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.status)
		}
		return resp
	}
	for _, tc := range []struct{ path, accept, want string }{
		{formPath, "", "en"},
		{formPath + "?lang=es", "", "es"},
		{formPath, "es-MX,es;q=0.9,en;q=0.5", "es"},
		{formPath + "?lang=en", "es", "en"},
		{formPath + "?lang=fr", "de, es;q=0.3", "es"},
		{formPath, "fr", "en"},
		{"/?lang=es", "", "es"},
	} {
		resp := get(tc.path, tc.accept)
		body := string(resp.body)
		if !strings.Contains(body, `<html lang="`+tc.want+`">`) || resp.header.Get("Content-Language") != tc.want {
			t.Errorf("%s with Accept-Language %q: page not in %s (Content-Language %q)", tc.path, tc.accept, tc.want, resp.header.Get("Content-Language"))
		}
	}
	es := string(get(formPath+"?lang=es", "").body)
	for _, want := range []string{
		"<h1>Registro de paciente nuevo</h1>", "¿Tiene alguna alergia?", `value="ASKU"`, "Prefiero no decirlo",
		`<span class="req">(obligatoria)</span>`, "Responda solo si su respuesta a «¿Tiene alguna alergia?» es «Sí».",
		`Año-mes-día, por ejemplo <span class="nowrap">1980-03-27</span>.`, "Formato: nombre@ejemplo.com.", ">Enviar</button>",
		`action="/forms/new-patient?lang=es"`,
		// The switch: each language named in itself; on a form's page a
		// button that posts the form to ?lang=, so what was typed stays.
		`<button type="submit" class="link-button" form="intake-form" formaction="/forms/new-patient?lang=en" formnovalidate name="_lang" value="en" lang="en">English</button>`,
		`<button type="submit" class="link-button" form="intake-form" formaction="/forms/new-patient?lang=es" formnovalidate name="_lang" value="es" lang="es" aria-current="true">español</button>`,
		`<form id="intake-form"`,
	} {
		if !strings.Contains(es, want) {
			t.Errorf("Spanish form lacks %q", want)
		}
	}
	if strings.Contains(es, "Do you have any allergies") || strings.Contains(es, ">Send<") {
		t.Error("Spanish form shows English")
	}
	// Posting back in Spanish: errors in Spanish, beside the fields.
	s, _ := ti.openForm(t, formPath+"?lang=es")
	resp := ti.do(t, request{method: "POST", path: formPath + "?lang=es", contentType: formType, header: s.header(),
		body: s.formBody(withFields(validForm(), map[string]string{"birth-date": "1980-02-30", "family-name": "\x00", "email": "not-an-address"}))})
	body := string(resp.body)
	for _, want := range []string{`<html lang="es">`, "Hay un problema", "Esta pregunta es obligatoria.",
		"Escriba una fecha como año-mes-día, por ejemplo 1980-03-27.", "Escríbalo así: nombre@ejemplo.com."} {
		if !strings.Contains(body, want) {
			t.Errorf("Spanish errors lack %q: %s", want, body)
		}
	}
	// The switch on a half-filled form: drawn again in English with what
	// was typed (and no error: nothing was checked), nothing stored.
	resp = ti.do(t, request{method: "POST", path: formPath + "?lang=en", contentType: formType, header: s.header(),
		body: s.formBody(url.Values{"_lang": {"en"}, "family-name": {"Quorvendahl"}, "allergies": {"true"}})})
	body = string(resp.body)
	if resp.status != http.StatusOK || !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, `value="Quorvendahl"`) ||
		strings.Contains(body, "error-summary") || !strings.Contains(body, "Do you have any allergies?") {
		t.Errorf("switch with answers: %d %.3000s", resp.status, body)
	}
	if note, aria := requiredMarks(t, body, "allergy-details"); !note || !aria {
		t.Error("after the switch, the follow-up that applies is not marked required")
	}
	if n := ti.rows(t); n != 0 {
		t.Errorf("the switch stored %d rows", n)
	}
	// The list of forms switches with links.
	if idx := string(get("/", "").body); !strings.Contains(idx, `<a href="/?lang=es" lang="es" hreflang="es">español</a>`) {
		t.Errorf("index switch: %s", idx)
	}
	// The JSON API: messages in the language Accept-Language asks for.
	h := http.Header{"Accept-Language": {"es"}}
	api := ti.do(t, request{method: "POST", path: submitPath, contentType: jsonType, header: h, body: `{"family-name":"A"}`})
	if api.status != http.StatusUnprocessableEntity || !strings.Contains(string(api.body), `"message":"Esta pregunta es obligatoria."`) {
		t.Errorf("API in Spanish: %d %s", api.status, api.body)
	}
	api = ti.do(t, request{method: "POST", path: submitPath, contentType: jsonType, body: `{"family-name":"A"}`})
	if !strings.Contains(string(api.body), `"message":"This question is required."`) {
		t.Errorf("API by default: %s", api.body)
	}
}

// TestOpenChoiceSuggestionsInTheReadersLanguage: an open-choice box offers
// the options' labels in the page's language, and a picked one is stored as
// the option (the form's own string), not as free text in Spanish.
func TestOpenChoiceSuggestionsInTheReadersLanguage(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	s, page := ti.openForm(t, symptomsForm+"?lang=es")
	if !strings.Contains(string(page.body), `<option value="Buscador">`) {
		t.Fatalf("no Spanish suggestion: %s", page.body)
	}
	resp := ti.do(t, request{method: "POST", path: symptomsForm + "?lang=es", contentType: formType, header: s.header(),
		body: s.formBody(url.Values{"complaint": {"Me duele la cabeza"}, "severity": {"6736007"}, "heard-about": {" buscador "}})})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("status %d: %.2000s", resp.status, resp.body)
	}
	if got := string(ti.lastAnswers(t)["heard-about"]); !strings.Contains(got, `"valueString":"Search engine"`) {
		t.Errorf("heard-about sealed as %s, want the option's own string", got)
	}
}
