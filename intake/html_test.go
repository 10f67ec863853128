package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
)

const (
	formPath      = "/forms/new-patient"
	symptomsForm  = "/forms/symptoms"
	formType      = "application/x-www-form-urlencoded"
	csrfCookie    = "__Host-airlock-csrf"
	receiptCookie = "__Host-airlock-receipt"
)

var (
	csrfFieldRE = regexp.MustCompile(`<input type="hidden" name="_csrf" value="([^"]+)">`)
	receiptHTML = shownCode{regexp.MustCompile(`<p class="receipt" id="receipt">(.*?)</p>`)}
)

// session is a browser's CSRF cookie and the token its form page carried.
type session struct {
	cookie, token string
}

// openForm GETs a form page and returns the session it set up.
func (ti *testIntake) openForm(t *testing.T, path string) (session, response) {
	t.Helper()
	resp := ti.do(t, request{method: "GET", path: path})
	if resp.status != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, resp.status)
	}
	var s session
	for _, c := range (&http.Response{Header: resp.header}).Cookies() {
		if c.Name == csrfCookie {
			s.cookie = c.Value
		}
	}
	m := csrfFieldRE.FindSubmatch(resp.body)
	if s.cookie == "" || m == nil {
		t.Fatalf("GET %s: no CSRF cookie (%q) or token field", path, resp.header.Values("Set-Cookie"))
	}
	s.token = string(m[1])
	return s, resp
}

func (s session) header() http.Header {
	h := http.Header{}
	if s.cookie != "" {
		h.Set("Cookie", csrfCookie+"="+s.cookie)
	}
	return h
}

// formBody encodes fields and the session's token.
func (s session) formBody(fields url.Values) string {
	v := url.Values{}
	for k, vals := range fields {
		v[k] = vals
	}
	if s.token != "" {
		v.Set("_csrf", s.token)
	}
	return v.Encode()
}

// validForm is a complete new-patient submission as a browser sends it.
func validForm() url.Values {
	return url.Values{
		"family-name": {"Example"}, "given-name": {"Alex"}, "birth-date": {"1980-02-29"},
		"sex-at-birth": {"female"}, "allergies": {"false"}, "consent": {"true"},
		"email": {""}, "phone": {""}, "alcohol-units": {""}, "height": {""},
	}
}

func withFields(base url.Values, changes map[string]string) url.Values {
	out := url.Values{}
	for k, v := range base {
		out[k] = slices.Clone(v)
	}
	for k, v := range changes {
		if v == "\x00" {
			delete(out, k)
		} else {
			out.Set(k, v)
		}
	}
	return out
}

// multipartBody builds a multipart/form-data body with fields and files.
type filePart struct {
	field, name string
	data        []byte
}

func multipartBody(t *testing.T, s session, fields url.Values, files ...filePart) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if s.token != "" {
		w.WriteField("_csrf", s.token)
	}
	for k, vals := range fields {
		for _, v := range vals {
			w.WriteField(k, v)
		}
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.field, f.name))
		// Browsers guess from the name; the server must not believe it.
		h.Set("Content-Type", "application/pdf")
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(f.data)
	}
	w.Close()
	return buf.String(), w.FormDataContentType()
}

// TestFormPage checks the HTML form: accessible markup, the CSRF cookie and
// token, no inline script or style, no compression, security headers.
func TestFormPage(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	for _, path := range []string{formPath, symptomsForm} {
		s, resp := ti.openForm(t, path)
		checkSecurityHeaders(t, resp.header)
		body := string(resp.body)
		if ce := resp.header.Get("Content-Encoding"); ce != "" {
			t.Errorf("%s: page with a CSRF token is compressed (%s)", path, ce)
		}
		if cc := resp.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("%s: Cache-Control %q, want no-store", path, cc)
		}
		for _, c := range (&http.Response{Header: resp.header}).Cookies() {
			if c.Name == csrfCookie && (!c.Secure || !c.HttpOnly || c.SameSite == http.SameSiteNoneMode || c.SameSite == http.SameSiteDefaultMode || c.Path != "/" || c.Domain != "") {
				t.Errorf("%s: CSRF cookie attributes %+v", path, c)
			}
		}
		if s.token == s.cookie {
			t.Errorf("the token is the cookie value itself")
		}
		for _, bad := range []string{"<script", " style=", "<style", "javascript:", " on"} {
			if bad == " on" {
				if regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
					t.Errorf("%s: inline event handler", path)
				}
				continue
			}
			if strings.Contains(body, bad) {
				t.Errorf("%s: page contains %q", path, bad)
			}
		}
		checkLabels(t, path, body)
		if !strings.Contains(body, `name="viewport" content="width=device-width, initial-scale=1"`) {
			t.Errorf("%s: no viewport meta for phones", path)
		}
	}

	// A second visit keeps the cookie (and so the token of an open tab
	// stays valid), and renders a form with a token of its own: each
	// rendered form is sent at most once.
	s, _ := ti.openForm(t, formPath)
	resp := ti.do(t, request{method: "GET", path: formPath, header: s.header()})
	if len(resp.header.Values("Set-Cookie")) != 0 {
		t.Errorf("a valid cookie was replaced: %q", resp.header.Values("Set-Cookie"))
	}
	if m := csrfFieldRE.FindSubmatch(resp.body); m == nil || string(m[1]) == s.token {
		t.Errorf("two rendered forms share a token")
	}

	// The stylesheet, the index, and HTML errors.
	css := ti.do(t, request{method: "GET", path: "/static/intake.css"})
	if css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: status %d type %q", css.status, css.header.Get("Content-Type"))
	}
	index := ti.do(t, request{method: "GET", path: "/"})
	if index.status != http.StatusOK || !bytes.Contains(index.body, []byte(`href="/forms/new-patient"`)) || !bytes.Contains(index.body, []byte(`href="/forms/symptoms"`)) {
		t.Errorf("index: status %d, body %s", index.status, index.body)
	}
	for _, path := range []string{"/forms/no-such-form", "/nothing/here"} {
		resp := ti.do(t, request{method: "GET", path: path})
		if resp.status != http.StatusNotFound || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: status %d type %q, want an HTML 404", path, resp.status, resp.header.Get("Content-Type"))
		}
		checkSecurityHeaders(t, resp.header)
	}
	if resp := ti.do(t, request{method: "GET", path: "/metrics"}); resp.status != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: status %d, want 404", resp.status)
	}
}

var (
	controlRE = regexp.MustCompile(`<(input|textarea|select)\b[^>]*>`)
	attrRE    = regexp.MustCompile(`\b(id|type|name)="([^"]*)"`)
	labelRE   = regexp.MustCompile(`<label\b[^>]*\bfor="([^"]*)"`)
)

// checkLabels asserts every visible control has a label tied to it.
func checkLabels(t *testing.T, path, body string) {
	t.Helper()
	labels := map[string]bool{}
	for _, m := range labelRE.FindAllStringSubmatch(body, -1) {
		labels[m[1]] = true
	}
	n := 0
	for _, tag := range controlRE.FindAllString(body, -1) {
		attrs := map[string]string{}
		for _, m := range attrRE.FindAllStringSubmatch(tag, -1) {
			attrs[m[1]] = m[2]
		}
		if attrs["type"] == "hidden" {
			continue
		}
		n++
		if attrs["id"] == "" || !labels[attrs["id"]] {
			t.Errorf("%s: control %s has no label", path, tag)
		}
	}
	if n < 5 {
		t.Errorf("%s: only %d controls found", path, n)
	}
}

// TestFormSubmit posts the HTML form through the real router: rejected
// cases in parallel against a server that must store nothing, accepted
// ones against another.
func TestFormSubmit(t *testing.T) {
	t.Parallel()
	accepting, rejecting := newTestIntake(t), newTestIntake(t)
	// Each accepted case sends its own rendered form: a rendered form
	// stores at most one submission.
	acc, _ := accepting.openForm(t, formPath)
	acc3, _ := accepting.openForm(t, formPath)
	acc4, _ := accepting.openForm(t, symptomsForm)
	rej, _ := rejecting.openForm(t, formPath)
	// The same cookie with a token from another cookie, and the reverse.
	other, _ := rejecting.openForm(t, formPath)

	type formCase struct {
		name       string
		session    session
		body       string
		ctype      string
		path       string
		wantStatus int
		wantStored int
		check      func(t *testing.T, ti *testIntake, resp response)
	}
	cases := []formCase{
		{name: "valid", session: acc, body: acc.formBody(validForm()), wantStatus: http.StatusSeeOther, wantStored: 1, check: checkReceiptPage},
		{
			// FHIR: answers to a question that is not enabled must not be
			// present. Nothing is dropped silently: the error says which
			// answer the question depends on, and the typed text stays.
			name: "a follow-up answered that does not apply is an error naming the answer it depends on", session: rej, wantStatus: http.StatusUnprocessableEntity,
			body: rej.formBody(withFields(validForm(), map[string]string{"allergies": "false", "allergy-details": secretDetails})),
			check: func(t *testing.T, ti *testIntake, resp response) {
				m := regexp.MustCompile(`<p class="error-message" id="(q-\d+)-error"><span class="visually-hidden">Error:</span> ([^<]*)</p>\s*<textarea[^>]*name="allergy-details"[^>]*aria-invalid="true"[^>]*>` + regexp.QuoteMeta(secretDetails)).FindSubmatch(resp.body)
				if m == nil {
					t.Fatalf("no error beside allergy-details, or the typed text is gone: %s", resp.body)
				}
				want := "This question applies only if your answer to “Do you have any allergies?” is “Yes”, so it must stay empty. Clear this answer, or change the answer it depends on."
				if got := html.UnescapeString(string(m[2])); got != want {
					t.Errorf("error %q, want %q", got, want)
				}
			},
		},
		{
			name: "every question, decimal comma", session: acc3, wantStatus: http.StatusSeeOther, wantStored: 1, check: checkReceiptPage,
			body: acc3.formBody(withFields(validForm(), map[string]string{
				"email": "a@example.org", "address": "1 Road\r\nTown", "allergies": "true", "allergy-details": "dust",
				"smoker": "former", "alcohol-units": "+4", "height": "171,5",
			})),
		},
		{
			name: "multipart with a document", session: acc4, path: symptomsForm, wantStatus: http.StatusSeeOther, wantStored: 1,
			check: func(t *testing.T, ti *testIntake, resp response) {
				checkReceiptPage(t, ti, resp)
				answers := ti.lastAnswers(t)
				var docs []forms.Value
				json.Unmarshal(answers["documents"], &docs)
				if len(docs) != 2 {
					t.Fatalf("sealed documents %s", answers["documents"])
				}
				for i, want := range []struct {
					ct    string
					data  []byte
					title string
				}{{"image/png", pngBytes, "photo.pdf"}, {"text/plain", textBytes, "notes.txt"}} {
					a := docs[i].ValueAttachment
					if a == nil || a.ContentType != want.ct || !bytes.Equal(a.Data, want.data) || a.Size != int64(len(want.data)) || len(a.Hash) != 20 || a.Title != want.title {
						t.Errorf("document %d sealed as %+v, want type %s, title %q, size and hash", i, a, want.ct, want.title)
					}
				}
			},
		},

		{name: "no CSRF token", session: session{cookie: rej.cookie}, body: rej.formBody(validForm())[0:0] + (session{}).formBody(validForm()), wantStatus: http.StatusForbidden, check: checkForbiddenPage},
		{name: "no CSRF cookie", session: session{token: rej.token}, body: rej.formBody(validForm()), wantStatus: http.StatusForbidden, check: checkForbiddenPage},
		{name: "token of another cookie", session: session{cookie: other.cookie}, body: rej.formBody(validForm()), wantStatus: http.StatusForbidden, check: checkForbiddenPage},
		{name: "token altered", session: rej, body: (session{token: rej.token[:len(rej.token)-2] + "AA"}).formBody(validForm()), wantStatus: http.StatusForbidden, check: checkForbiddenPage},
		{name: "token of another server key", session: rej, body: acc.formBody(validForm()), wantStatus: http.StatusForbidden, check: checkForbiddenPage},
		{
			name: "honeypot filled", session: rej, wantStatus: http.StatusUnprocessableEntity,
			body: rej.formBody(withFields(validForm(), map[string]string{"contact_website": "http://spam.example"})),
			check: func(t *testing.T, ti *testIntake, resp response) {
				if receiptHTML.Match(resp.body) || !bytes.Contains(resp.body, []byte("looked automated")) {
					t.Errorf("honeypot page: %s", resp.body)
				}
				if bytes.Contains(resp.body, []byte("spam.example")) {
					t.Errorf("honeypot value shown again")
				}
			},
		},
		{
			name: "invalid answers", session: rej, wantStatus: http.StatusUnprocessableEntity,
			body: rej.formBody(withFields(validForm(), map[string]string{
				"family-name": secretName, "given-name": "\x00", "birth-date": secretDate, "consent": "\x00",
				"alcohol-units": secretUnits, "sex-at-birth": secretOption,
			})),
			check: checkInlineErrors,
		},
		{name: "unknown form", session: rej, path: "/forms/nope", body: rej.formBody(validForm()), wantStatus: http.StatusNotFound},
		{name: "JSON to the HTML form", session: rej, ctype: jsonType, body: answersJSON(nil), wantStatus: http.StatusUnsupportedMediaType},
		{name: "over the body limit", session: rej, body: rej.formBody(withFields(validForm(), map[string]string{"address": strings.Repeat("a", testMaxBody)})), wantStatus: http.StatusRequestEntityTooLarge},
		{name: "malformed encoding", session: rej, body: rej.formBody(validForm()) + "&%zz=1", wantStatus: http.StatusBadRequest},
	}

	// Multipart cases against the symptoms form.
	symptoms := url.Values{"complaint": {"Rash on the left arm"}, "severity": {"6736007"}}
	body, ctype := multipartBody(t, acc4, symptoms, filePart{"documents", "photo.pdf", pngBytes}, filePart{"documents", "notes.txt", textBytes})
	cases[3].body, cases[3].ctype = body, ctype
	gifBody, gifType := multipartBody(t, rej, symptoms, filePart{"documents", "report.pdf", gifBytes})
	bigBody, bigType := multipartBody(t, rej, symptoms, filePart{"documents", "big.txt", bytes.Repeat([]byte("a"), testMaxAttachment+1)})
	noTokenBody, noTokenType := multipartBody(t, session{}, symptoms, filePart{"documents", "notes.txt", textBytes})
	hugeBody, hugeType := multipartBody(t, rej, symptoms, filePart{"documents", "a.txt", bytes.Repeat([]byte("a"), testMaxAttachment)}, filePart{"documents", "b.txt", bytes.Repeat([]byte("b"), testMaxAttachment)},
		filePart{"documents", "c.txt", bytes.Repeat([]byte("c"), testMaxAttachment)}, filePart{"documents", "d.txt", bytes.Repeat([]byte("d"), testMaxAttachment)})
	fileErr := func(t *testing.T, ti *testIntake, resp response) {
		if !bytes.Contains(resp.body, []byte(`href="#`)) || !bytes.Contains(resp.body, []byte(`aria-invalid="true"`)) || !bytes.Contains(resp.body, []byte("choose them again")) {
			t.Errorf("no inline file error: %s", resp.body)
		}
		if !regexp.MustCompile(`<p class="error-message" id="q-\d+-error"><span class="visually-hidden">Error:</span> (The file|This type of file)`).Match(resp.body) {
			t.Errorf("the documents field has no error beside it: %s", resp.body)
		}
	}
	cases = append(cases,
		formCase{name: "multipart: type detected from content, not name", session: rej, path: symptomsForm, body: gifBody, ctype: gifType, wantStatus: http.StatusUnprocessableEntity, check: fileErr},
		formCase{name: "multipart: file over the per-file limit", session: rej, path: symptomsForm, body: bigBody, ctype: bigType, wantStatus: http.StatusUnprocessableEntity, check: fileErr},
		formCase{name: "multipart: no CSRF token", session: rej, path: symptomsForm, body: noTokenBody, ctype: noTokenType, wantStatus: http.StatusForbidden, check: checkForbiddenPage},
		formCase{name: "multipart: files over the body limit", session: rej, path: symptomsForm, body: hugeBody, ctype: hugeType, wantStatus: http.StatusRequestEntityTooLarge},
	)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ti, before := accepting, 0
			if tc.wantStored == 0 {
				ti = rejecting
				t.Parallel()
			} else {
				before = ti.rows(t)
			}
			path := tc.path
			if path == "" {
				path = formPath
			}
			ctype := tc.ctype
			if ctype == "" {
				ctype = formType
			}
			resp := ti.do(t, request{method: "POST", path: path, contentType: ctype, body: tc.body, header: tc.session.header()})
			if resp.status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.status, tc.wantStatus, resp.body)
			}
			checkSecurityHeaders(t, resp.header)
			if ct := resp.header.Get("Content-Type"); resp.status != http.StatusSeeOther && !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML page", ct)
			}
			if got := ti.rows(t) - before; got != tc.wantStored {
				t.Errorf("%d rows stored, want %d", got, tc.wantStored)
			}
			for _, s := range []string{secretName, secretDate, secretUnits, secretOption, secretDetails} {
				if strings.Contains(ti.logs.String(), s) {
					t.Errorf("log holds the submitted value %q", s)
				}
			}
			if tc.check != nil {
				tc.check(t, ti, resp)
			}
		})
	}
}

// shownCode reads a receipt or correction code as the page shows it: the
// text of its paragraph, without the markup that keeps each group on one
// line (and lets the line break only between groups).
type shownCode struct{ re *regexp.Regexp }

var markupRE = regexp.MustCompile(`<[^>]*>`)

// FindSubmatch returns the whole match and the code's text, or nil.
func (c shownCode) FindSubmatch(b []byte) [][]byte {
	m := c.re.FindSubmatch(b)
	if m == nil {
		return nil
	}
	text := markupRE.ReplaceAll(m[1], nil)
	if !regexp.MustCompile(`^[A-Z0-9-]+$`).Match(text) {
		return nil
	}
	return [][]byte{m[0], text}
}

// Match reports whether the page shows a code.
func (c shownCode) Match(b []byte) bool { return c.FindSubmatch(b) != nil }

// checkReceiptPage follows a sent form's redirect to its receipt page.
func checkReceiptPage(t *testing.T, ti *testIntake, resp response) {
	t.Helper()
	page := ti.followReceipt(t, resp)
	m := receiptHTML.FindSubmatch(page.body)
	if m == nil || !receiptRE.Match(m[1]) {
		t.Errorf("no receipt on the page: %s", page.body)
	}
}

// followReceipt follows a sent form's 303 to its receipt page with the
// receipt cookie the 303 set, as a browser does.
func (ti *testIntake) followReceipt(t *testing.T, resp response) response {
	t.Helper()
	if resp.status != http.StatusSeeOther {
		t.Fatalf("sent form: status %d, want 303 to the receipt page; body %.2000s", resp.status, resp.body)
	}
	// The receipt page keeps the language the form was sent in (?lang=).
	loc := resp.header.Get("Location")
	if path, _, _ := strings.Cut(loc, "?lang="); !strings.HasPrefix(path, "/forms/") || !strings.HasSuffix(path, "/sent") {
		t.Fatalf("sent form redirects to %q, want /forms/{id}/sent", loc)
	}
	h := http.Header{}
	for _, c := range (&http.Response{Header: resp.header}).Cookies() {
		if c.Name == receiptCookie {
			if !c.Secure || !c.HttpOnly || c.Path != "/" || c.MaxAge <= 0 || c.MaxAge > 3600 {
				t.Errorf("receipt cookie attributes %+v", c)
			}
			h.Set("Cookie", receiptCookie+"="+c.Value)
		}
	}
	if h.Get("Cookie") == "" {
		t.Fatalf("sent form set no receipt cookie: %q", resp.header.Values("Set-Cookie"))
	}
	page := ti.do(t, request{method: "GET", path: loc, header: h})
	if page.status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", loc, page.status, page.body)
	}
	return page
}

func checkForbiddenPage(t *testing.T, _ *testIntake, resp response) {
	t.Helper()
	if !bytes.Contains(resp.body, []byte("security check")) || !bytes.Contains(resp.body, []byte("<h1>")) {
		t.Errorf("403 page does not explain itself: %s", resp.body)
	}
	if bytes.Contains(resp.body, []byte("Example")) {
		t.Errorf("403 page shows a submitted value")
	}
}

var (
	errorMsgRE  = regexp.MustCompile(`(?s)<p class="error-message" id="(q-\d+)-error">(.*?)</p>`)
	summaryRE   = regexp.MustCompile(`(?s)<div class="error-summary".*?</div>`)
	summaryLink = regexp.MustCompile(`<a href="#(q-[\d-]+)">`)
)

// checkInlineErrors asserts the 422 page: a summary linking to each field
// in error, a message beside each, aria-invalid and aria-describedby on the
// control, the typed value kept in its field but in no message.
func checkInlineErrors(t *testing.T, _ *testIntake, resp response) {
	t.Helper()
	body := string(resp.body)
	summary := summaryRE.FindString(body)
	if summary == "" || !strings.Contains(summary, `role="alert"`) {
		t.Fatalf("no error summary: %s", body)
	}
	links := summaryLink.FindAllStringSubmatch(summary, -1)
	msgs := errorMsgRE.FindAllStringSubmatch(body, -1)
	// given-name, birth-date, sex-at-birth, alcohol-units, consent (family-name is valid).
	if len(links) != 5 || len(msgs) != 5 {
		t.Errorf("%d summary links and %d inline messages, want 5 each:\n%s", len(links), len(msgs), body)
	}
	for _, l := range links {
		if !strings.Contains(body, `id="`+l[1]+`"`) {
			t.Errorf("summary links to #%s, which is not on the page", l[1])
		}
	}
	for _, m := range msgs {
		id := m[1]
		ctl := regexp.MustCompile(`<(input|textarea|select|fieldset)\b[^>]*\bid="` + id + `(-1)?"[^>]*>`).FindString(body)
		if !strings.Contains(ctl, `aria-invalid="true"`) && !strings.Contains(ctl, "fieldset") {
			t.Errorf("control %s is not aria-invalid: %s", id, ctl)
		}
		if !regexp.MustCompile(`aria-describedby="[^"]*` + id + `-error`).MatchString(body) {
			t.Errorf("nothing is described by %s-error", id)
		}
	}
	for _, secret := range []string{secretName, secretDate, secretUnits, secretOption} {
		for _, m := range msgs {
			if strings.Contains(m[2], secret) {
				t.Errorf("error message repeats %q: %s", secret, m[2])
			}
		}
		if strings.Contains(summary, secret) {
			t.Errorf("error summary repeats %q", secret)
		}
	}
	// Values are kept in their fields so the patient need not type them again.
	for _, v := range []string{secretName, secretDate, secretUnits} {
		if !strings.Contains(body, `value="`+html.EscapeString(v)+`"`) {
			t.Errorf("the value %q is not kept in its field", v)
		}
	}
	if !regexp.MustCompile(`<input type="radio" id="q-\d+-1" name="allergies" value="true"[^>]*>`).MatchString(body) ||
		!regexp.MustCompile(`name="allergies" value="false" checked`).MatchString(body) {
		t.Errorf("the allergies answer is not kept")
	}
	if !strings.HasPrefix(regexp.MustCompile(`<title>([^<]*)`).FindStringSubmatch(body)[1], "Error:") {
		t.Errorf("page title does not start with Error:")
	}
}

// lastAnswers opens the most recent stored row and returns its answers.
func (ti *testIntake) lastAnswers(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ti.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var row seal.Row
	err = conn.QueryRow(ctx, `SELECT id::text, form_id, key_id, envelope FROM submissions ORDER BY seq DESC LIMIT 1`).
		Scan(&row.SubmissionID, &row.FormID, &row.KeyID, &row.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	env, err := seal.ParseEnvelope(row.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ti.key.Open(env)
	if err != nil {
		t.Fatal(err)
	}
	p, err := seal.DecodePayload(plain, seal.Binding{SubmissionID: row.SubmissionID, FormID: row.FormID, KeyID: row.KeyID})
	if err != nil {
		t.Fatal(err)
	}
	var answers map[string]json.RawMessage
	if err := json.Unmarshal(p.Answers, &answers); err != nil {
		t.Fatal(err)
	}
	return answers
}
