package intake_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/forms/formstest"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testMaxBody is INTAKE_MAX_BODY for the handler tests: small, so the 413
// cases need no megabytes, yet roomy enough for a real submission.
const testMaxBody = 4096

// testMaxAttachment is INTAKE_MAX_ATTACHMENT for the handler tests.
const testMaxAttachment = 1024

// lockedBuffer collects the server's log lines while requests run.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testIntake is intake's real router on a real HTTP listener, storing into a
// fresh database through a login that holds only airlock_intake_writer.
type testIntake struct {
	url      string // base URL of the HTTP server
	ownerURL string // the database owner, which may read what the writer cannot
	key      *seal.PrivateKey
	rowKey   seal.RowKey
	pool     *pgxpool.Pool
	logs     *lockedBuffer
	srv      *intake.Server
}

func newTestIntake(t *testing.T) *testIntake {
	t.Helper()
	return newTestIntakeWith(t, nil)
}

// newFormIntake is an intake serving only the Questionnaire in formJSON.
func newFormIntake(t *testing.T, formJSON string) *testIntake {
	t.Helper()
	_, reg := formstest.Registry(t, formJSON)
	return newTestIntakeWith(t, func(c *intake.Config) { c.Forms = reg })
}

// newTestIntakeWith is newTestIntake with the config changed by opts first.
func newTestIntakeWith(t *testing.T, opts func(*intake.Config)) *testIntake {
	t.Helper()
	ctx := context.Background()
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	pool, err := pg.Connect(ctx, pgtest.URLAs(t, owner, "airlock_intake_writer"), 4)
	if err != nil {
		t.Fatalf("connect as writer: %v", err)
	}
	t.Cleanup(pool.Close)
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	rowKey, err := seal.NewRowKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &intake.Config{
		PlainHTTP:     true,
		Recipients:    []seal.PublicKey{key.Public},
		RowKey:        rowKey,
		Forms:         forms.Builtin(),
		RateLimit:     0,
		MaxBody:       testMaxBody,
		MaxAttachment: testMaxAttachment,
	}
	if opts != nil {
		opts(cfg)
	}
	logs := &lockedBuffer{}
	srv := intake.NewServer(cfg, intake.NewStore(pool), slog.New(slog.NewJSONHandler(logs, nil)))
	ts := httptest.NewServer(srv.Echo)
	t.Cleanup(ts.Close)
	return &testIntake{url: ts.URL, ownerURL: owner, key: key, rowKey: rowKey, pool: pool, logs: logs, srv: srv}
}

// rows counts the stored submissions, reading as the owner.
func (ti *testIntake) rows(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ti.ownerURL)
	if err != nil {
		t.Fatalf("connect as owner: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM submissions`).Scan(&n); err != nil {
		t.Fatalf("count submissions: %v", err)
	}
	return n
}

// request is one HTTP request to the test server.
type request struct {
	method      string
	path        string
	contentType string // no Content-Type header when empty
	body        string
	chunked     bool // send without Content-Length (Transfer-Encoding: chunked)
	header      http.Header
}

// response is what came back, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (ti *testIntake) do(t *testing.T, r request) response {
	t.Helper()
	var body io.Reader
	if r.body != "" || r.method == http.MethodPost {
		body = strings.NewReader(r.body)
		if r.chunked {
			// Hide the length: the client then streams the body chunked.
			body = io.MultiReader(body)
		}
	}
	req, err := http.NewRequest(r.method, ti.url+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.chunked {
		req.ContentLength = -1
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// noRedirects answers with a redirect itself, so tests see the 303 of a
// sent form (and follow it with followReceipt, as a browser would).
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// checkSecurityHeaders asserts the headers the brief requires on every response.
func checkSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	hsts := h.Get("Strict-Transport-Security")
	m := regexp.MustCompile(`(?i)(?:^|;)\s*max-age=(\d+)`).FindStringSubmatch(hsts)
	if m == nil {
		t.Errorf("Strict-Transport-Security %q has no max-age", hsts)
	} else if age, _ := strconv.Atoi(m[1]); age < 31536000 {
		t.Errorf("Strict-Transport-Security max-age %d, want at least a year (31536000)", age)
	}

	csp := h.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			directives[strings.ToLower(name)] = strings.TrimSpace(value)
		}
	}
	for _, name := range []string{"object-src", "base-uri", "frame-ancestors"} {
		if directives[name] != "'none'" {
			t.Errorf("Content-Security-Policy %s is %q, want 'none' (policy %q)", name, directives[name], csp)
		}
	}
	if directives["script-src"] == "" && directives["default-src"] == "" {
		t.Errorf("Content-Security-Policy %q restricts no scripts (neither script-src nor default-src)", csp)
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q allows unsafe-inline", csp)
	}

	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := h.Get(name); !strings.EqualFold(got, want) {
			t.Errorf("%s is %q, want %q", name, got, want)
		}
	}
}

// validAnswers is a complete, valid new-patient submission.
func validAnswers() map[string]any {
	return map[string]any{
		"family-name":  "Example",
		"given-name":   "Alex",
		"birth-date":   "1980-02-29",
		"sex-at-birth": "female",
		"allergies":    false,
		"consent":      true,
	}
}

// answersJSON is validAnswers with changes (a nil value deletes the key).
func answersJSON(changes map[string]any) string {
	a := validAnswers()
	for k, v := range changes {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// padTo pads a JSON object with trailing whitespace to exactly n bytes.
func padTo(body string, n int) string {
	if len(body) > n {
		panic("padTo: body already longer than " + strconv.Itoa(n))
	}
	return body + strings.Repeat(" ", n-len(body))
}

const (
	submitPath   = "/api/v1/forms/new-patient/submissions"
	symptomsPath = "/api/v1/forms/symptoms/submissions"
	jsonType     = "application/json"
	fhirType     = "application/fhir+json"
)

// Small files of each kind, recognisable by their first bytes.
var (
	pdfBytes  = []byte("%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
	pngBytes  = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 32)...)
	textBytes = []byte("Temperature log: 38.2, 38.9, 37.5\n")
	gifBytes  = append([]byte("GIF89a"), make([]byte, 32)...)
)

// answersMap is validAnswers with changes (a nil value deletes the key).
func answersMap(changes map[string]any) map[string]any {
	a := validAnswers()
	for k, v := range changes {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return a
}

// attachmentJSON is a FHIR Attachment with inline data.
func attachmentJSON(contentType string, data []byte) map[string]any {
	a := map[string]any{"data": base64.StdEncoding.EncodeToString(data), "title": "scan"}
	if contentType != "" {
		a["contentType"] = contentType
	}
	return a
}

// symptomsJSON is a valid symptoms submission with the given documents.
func symptomsJSON(docs ...map[string]any) string {
	a := map[string]any{"complaint": "Rash on the left arm", "severity": "6736007"}
	if len(docs) > 0 {
		a["documents"] = docs
	}
	b, _ := json.Marshal(a)
	return string(b)
}

// symptomsQR is a symptoms QuestionnaireResponse with one document.
func symptomsQR(doc []byte) string {
	return `{"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"https://airlock.dev/fhir/Questionnaire/symptoms",
	"item":[{"linkId":"complaint","answer":[{"valueString":"Rash"}]},
	{"linkId":"severity","answer":[{"valueCoding":{"system":"http://snomed.info/sct","code":"24484000"}}]},
	{"linkId":"documents","answer":[{"valueAttachment":{"contentType":"application/pdf","data":"` + base64.StdEncoding.EncodeToString(doc) + `"}}]}]}`
}

// questionnaireResponseJSON wraps answers (linkId -> plain answer) into a
// FHIR QuestionnaireResponse with flat items; choice answers become codings.
func questionnaireResponseJSON(answers map[string]any, canonical string) string {
	var items []map[string]any
	for linkID, v := range answers {
		var ans map[string]any
		switch v := v.(type) {
		case bool:
			ans = map[string]any{"valueBoolean": v}
		case int:
			ans = map[string]any{"valueInteger": v}
		case float64:
			ans = map[string]any{"valueDecimal": v}
		case string:
			switch linkID {
			case "sex-at-birth", "smoker":
				ans = map[string]any{"valueCoding": map[string]any{"code": v}}
			case "birth-date":
				ans = map[string]any{"valueDate": v}
			default:
				ans = map[string]any{"valueString": v}
			}
		}
		items = append(items, map[string]any{"linkId": linkID, "answer": []any{ans}})
	}
	qr := map[string]any{"resourceType": "QuestionnaireResponse", "status": "completed", "item": items}
	if canonical != "" {
		qr["questionnaire"] = canonical
	}
	b, _ := json.Marshal(qr)
	return string(b)
}

// receiptRE is the receipt format: 24 characters from an alphabet without
// look-alikes, in groups of four.
var receiptRE = regexp.MustCompile(`^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){5}$`)

// Distinctive submitted values: none may come back in a response or a log line.
const (
	secretName    = "Quorvendahl-Zyx"
	secretDate    = "Zyx-1987-31-02"
	secretOption  = "Zyx-option-quorv"
	secretUnits   = "Zyx-units-quorv"
	secretDetails = "Zyx-peanut-quorv"
	secretUnknown = "Zyx-unknown-quorv"
)

// TestAPI sends one request per case through the real router and checks the
// status, the body's shape, the security headers, and what was stored.
//
// Cloning a database takes about half a second, so the cases share two
// servers: rejected requests run in parallel against one that must never
// store a row, accepted ones in turn against another, counting the rows each
// adds.
func TestAPI(t *testing.T) {
	t.Parallel()
	accepting, rejecting := newTestIntake(t), newTestIntake(t)
	longName := strings.Repeat(secretName, 10) // 150 characters; the limit is 100
	cases := []struct {
		name       string
		req        request
		wantStatus int
		wantFields []string // 422: the fields the errors must name, exactly
		secrets    []string // must appear in neither the response nor the logs
		wantStored int      // rows added
		check      func(t *testing.T, resp response)
	}{
		{
			name:       "GET the Questionnaire",
			req:        request{method: "GET", path: "/api/v1/forms/new-patient"},
			wantStatus: http.StatusOK, check: checkQuestionnaire,
		},
		{
			name:       "health",
			req:        request{method: "GET", path: "/healthz"},
			wantStatus: http.StatusOK,
			check: func(t *testing.T, resp response) {
				if got := string(bytes.TrimSpace(resp.body)); got != `{"status":"ok"}` {
					t.Errorf("body %s, want {\"status\":\"ok\"}", got)
				}
			},
		},
		{
			name:       "valid submission",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(nil)},
			wantStatus: http.StatusCreated, wantStored: 1,
		},
		{
			name:       "content type with charset",
			req:        request{method: "POST", path: submitPath, contentType: "application/json; charset=utf-8", body: answersJSON(nil)},
			wantStatus: http.StatusCreated, wantStored: 1,
		},
		{
			name:       "every question answered",
			wantStatus: http.StatusCreated, wantStored: 1,
			req: request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{
				"email": "a@example.org", "phone": "+44 20 7946 0000", "address": "1 Road\r\nTown",
				"insurance-number": "INS-1", "insurer": "Mutual", "medications": "none",
				"allergies": true, "allergy-details": "dust", "smoker": "never",
				"alcohol-units": 3, "height": 171.5,
			})},
		},
		{
			name:       "body exactly at the limit",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: padTo(answersJSON(nil), testMaxBody)},
			wantStatus: http.StatusCreated, wantStored: 1,
		},
		{
			name:       "body exactly at the limit, chunked",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: padTo(answersJSON(nil), testMaxBody), chunked: true},
			wantStatus: http.StatusCreated, wantStored: 1,
		},

		{
			name:       "FHIR QuestionnaireResponse",
			req:        request{method: "POST", path: submitPath, contentType: fhirType, body: questionnaireResponseJSON(validAnswers(), "https://airlock.dev/fhir/Questionnaire/new-patient")},
			wantStatus: http.StatusCreated, wantStored: 1,
		},
		{
			name:       "FHIR QuestionnaireResponse naming the form version",
			req:        request{method: "POST", path: submitPath, contentType: fhirType + "; charset=utf-8", body: questionnaireResponseJSON(validAnswers(), "https://airlock.dev/fhir/Questionnaire/new-patient|1")},
			wantStatus: http.StatusCreated, wantStored: 1,
		},
		{
			name:       "attachment of an allowed type",
			req:        request{method: "POST", path: symptomsPath, contentType: jsonType, body: symptomsJSON(attachmentJSON("application/pdf", pdfBytes))},
			wantStatus: http.StatusCreated, wantStored: 1,
		},
		{
			name:       "attachments under a false content type, detected as allowed",
			req:        request{method: "POST", path: symptomsPath, contentType: jsonType, body: symptomsJSON(attachmentJSON("image/gif", pngBytes), attachmentJSON("", textBytes))},
			wantStatus: http.StatusCreated, wantStored: 1,
		},
		{
			name:       "attachment in a QuestionnaireResponse",
			req:        request{method: "POST", path: symptomsPath, contentType: fhirType, body: symptomsQR(pdfBytes)},
			wantStatus: http.StatusCreated, wantStored: 1,
		},

		{
			name:       "attachment whose content is not an allowed type",
			req:        request{method: "POST", path: symptomsPath, contentType: jsonType, body: symptomsJSON(attachmentJSON("application/pdf", gifBytes))},
			wantStatus: http.StatusUnprocessableEntity, wantFields: []string{"documents"},
		},
		{
			name:       "HTML posing as a PDF",
			req:        request{method: "POST", path: symptomsPath, contentType: jsonType, body: symptomsJSON(attachmentJSON("application/pdf", []byte("<!DOCTYPE html><html><script>alert(1)</script>")))},
			wantStatus: http.StatusUnprocessableEntity, wantFields: []string{"documents"},
		},
		{
			name:       "second attachment over the size limit",
			req:        request{method: "POST", path: symptomsPath, contentType: jsonType, body: symptomsJSON(attachmentJSON("text/plain", textBytes), attachmentJSON("text/plain", bytes.Repeat([]byte("a"), testMaxAttachment+1)))},
			wantStatus: http.StatusUnprocessableEntity, wantFields: []string{"documents"},
		},
		{
			name:       "FHIR resource of another type",
			req:        request{method: "POST", path: submitPath, contentType: fhirType, body: `{"resourceType":"Patient","name":[{"family":"` + secretName + `"}]}`},
			wantStatus: http.StatusBadRequest, secrets: []string{secretName},
		},
		{
			name:       "FHIR response to another form",
			req:        request{method: "POST", path: submitPath, contentType: fhirType, body: questionnaireResponseJSON(answersMap(map[string]any{"family-name": secretName}), "https://airlock.dev/fhir/Questionnaire/symptoms")},
			wantStatus: http.StatusUnprocessableEntity, wantFields: []string{"questionnaire"}, secrets: []string{secretName},
		},
		{
			name:       "FHIR response with an item twice",
			req:        request{method: "POST", path: submitPath, contentType: fhirType, body: `{"resourceType":"QuestionnaireResponse","item":[{"linkId":"family-name","answer":[{"valueString":"` + secretName + `"}]},{"linkId":"family-name","answer":[{"valueString":"x"}]}]}`},
			wantStatus: http.StatusBadRequest, secrets: []string{secretName},
		},
		{
			name:       "FHIR response with invalid answers",
			req:        request{method: "POST", path: submitPath, contentType: fhirType, body: questionnaireResponseJSON(answersMap(map[string]any{"birth-date": secretDate, "consent": false}), "")},
			wantStatus: http.StatusUnprocessableEntity, wantFields: []string{"birth-date", "consent"}, secrets: []string{secretDate},
		},
		{
			name:       "malformed FHIR JSON",
			req:        request{method: "POST", path: submitPath, contentType: fhirType, body: `{"resourceType":"QuestionnaireResponse","item":[{"linkId":"` + secretName},
			wantStatus: http.StatusBadRequest, secrets: []string{secretName},
		},
		{
			name:       "consent refused",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{"consent": false})},
			wantStatus: http.StatusUnprocessableEntity, wantFields: []string{"consent"},
		},

		{
			name:       "malformed JSON",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: `{"family-name": "` + secretName + `", "given-name": `},
			wantStatus: http.StatusBadRequest, secrets: []string{secretName},
		},
		{
			name:       "trailing data after the object",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{"family-name": secretName}) + ` {"x":1}`},
			wantStatus: http.StatusBadRequest, secrets: []string{secretName},
		},
		{
			name:       "trailing garbage after the object",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(nil) + secretUnknown},
			wantStatus: http.StatusBadRequest, secrets: []string{secretUnknown},
		},
		{
			name:       "a JSON array",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: `[` + answersJSON(map[string]any{"family-name": secretName}) + `]`},
			wantStatus: http.StatusBadRequest, secrets: []string{secretName},
		},
		{
			name:       "a JSON string",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: `"` + secretName + `"`},
			wantStatus: http.StatusBadRequest, secrets: []string{secretName},
		},
		{
			name:       "JSON null",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: `null`},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "empty body",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: ""},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "blank body",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: " \n\t "},
			wantStatus: http.StatusBadRequest,
		},

		{
			name:       "GET unknown form",
			req:        request{method: "GET", path: "/api/v1/forms/x"},
			wantStatus: http.StatusNotFound,
		},
		{
			name:       "POST to unknown form",
			req:        request{method: "POST", path: "/api/v1/forms/x/submissions", contentType: jsonType, body: answersJSON(map[string]any{"family-name": secretName})},
			wantStatus: http.StatusNotFound, secrets: []string{secretName},
		},
		{
			name:       "unknown path",
			req:        request{method: "GET", path: "/api/v1/nothing-here"},
			wantStatus: http.StatusNotFound,
		},

		{
			name:       "one byte over the limit, Content-Length",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: padTo(answersJSON(map[string]any{"family-name": secretName}), testMaxBody+1)},
			wantStatus: http.StatusRequestEntityTooLarge, secrets: []string{secretName},
		},
		{
			name:       "one byte over the limit, chunked",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: padTo(answersJSON(map[string]any{"family-name": secretName}), testMaxBody+1), chunked: true},
			wantStatus: http.StatusRequestEntityTooLarge, secrets: []string{secretName},
		},
		{
			name:       "far over the limit, chunked",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{"address": strings.Repeat(secretName, 3*testMaxBody/len(secretName))}), chunked: true},
			wantStatus: http.StatusRequestEntityTooLarge, secrets: []string{secretName},
		},

		{
			name:       "text/plain",
			req:        request{method: "POST", path: submitPath, contentType: "text/plain", body: answersJSON(map[string]any{"family-name": secretName})},
			wantStatus: http.StatusUnsupportedMediaType, secrets: []string{secretName},
		},
		{
			name:       "no content type",
			req:        request{method: "POST", path: submitPath, body: answersJSON(map[string]any{"family-name": secretName})},
			wantStatus: http.StatusUnsupportedMediaType, secrets: []string{secretName},
		},
		{
			name:       "HTML form encoding",
			req:        request{method: "POST", path: submitPath, contentType: "application/x-www-form-urlencoded", body: "family-name=" + secretName},
			wantStatus: http.StatusUnsupportedMediaType, secrets: []string{secretName},
		},
		{
			name:       "unparsable content type",
			req:        request{method: "POST", path: submitPath, contentType: "application/json; charset", body: answersJSON(nil)},
			wantStatus: http.StatusUnsupportedMediaType,
		},

		{
			name:       "empty object: every required field named",
			req:        request{method: "POST", path: submitPath, contentType: jsonType, body: `{}`},
			wantStatus: http.StatusUnprocessableEntity,
			wantFields: []string{"family-name", "given-name", "birth-date", "sex-at-birth", "allergies", "consent"},
		},
		{
			name:       "invalid answers of several types",
			wantStatus: http.StatusUnprocessableEntity,
			req: request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{
				"family-name":   longName,
				"birth-date":    secretDate,
				"sex-at-birth":  secretOption,
				"alcohol-units": secretUnits,
				"not-a-field":   secretUnknown,
			})},
			wantFields: []string{"family-name", "birth-date", "sex-at-birth", "alcohol-units", "not-a-field"},
			secrets:    []string{secretName, secretDate, secretOption, secretUnits, secretUnknown},
		},
		{
			name:       "answer to a question that does not apply",
			wantStatus: http.StatusUnprocessableEntity,
			req: request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{
				"allergies": false, "allergy-details": secretDetails,
			})},
			wantFields: []string{"allergy-details"},
			secrets:    []string{secretDetails},
		},
		{
			name:       "required follow-up question missing",
			wantStatus: http.StatusUnprocessableEntity,
			req: request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{
				"allergies": true, "family-name": secretName,
			})},
			wantFields: []string{"allergy-details"},
			secrets:    []string{secretName},
		},
		{
			name:       "wrong JSON types",
			wantStatus: http.StatusUnprocessableEntity,
			req: request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{
				"allergies": secretDetails, "consent": "yes", "given-name": []string{secretName, "Two"}, "height": secretUnits,
			})},
			wantFields: []string{"given-name", "allergies", "height", "consent"},
			secrets:    []string{secretName, secretDetails, secretUnits},
		},
		{
			name:       "a display item answered",
			wantStatus: http.StatusUnprocessableEntity,
			req: request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{
				"privacy-notice": secretDetails,
			})},
			wantFields: []string{"privacy-notice"},
			secrets:    []string{secretDetails},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ti, before := accepting, 0
			if tc.wantStored == 0 {
				ti = rejecting
				t.Parallel()
			} else {
				before = ti.rows(t)
			}
			resp := ti.do(t, tc.req)
			if resp.status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.status, tc.wantStatus, resp.body)
			}
			checkSecurityHeaders(t, resp.header)
			if got := ti.rows(t) - before; got != tc.wantStored {
				t.Errorf("%d rows stored, want %d", got, tc.wantStored)
			}
			for _, s := range tc.secrets {
				if bytes.Contains(resp.body, []byte(s)) {
					t.Errorf("response echoes the submitted value %q: %s", s, resp.body)
				}
				if strings.Contains(ti.logs.String(), s) {
					t.Errorf("log holds the submitted value %q: %s", s, ti.logs.String())
				}
			}

			if tc.check != nil {
				tc.check(t, resp)
				return
			}
			if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			switch {
			case tc.wantStatus == http.StatusCreated:
				var body struct {
					Receipt string `json:"receipt"`
				}
				if err := json.Unmarshal(resp.body, &body); err != nil || !receiptRE.MatchString(body.Receipt) {
					t.Errorf("body %s: want {\"receipt\":\"XXXX-...\"} (err %v)", resp.body, err)
				}
			case tc.wantStatus == http.StatusUnprocessableEntity:
				checkFieldErrors(t, resp.body, tc.wantFields)
			default:
				var body struct {
					Error string `json:"error"`
				}
				dec := json.NewDecoder(bytes.NewReader(resp.body))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&body); err != nil || body.Error == "" {
					t.Errorf("error body %s: want {\"error\":\"...\"} (err %v)", resp.body, err)
				}
			}
		})
	}
}

// checkFieldErrors asserts a 422 body is {"errors":[{"field","message"}]}
// naming exactly the wanted fields, each with a message.
func checkFieldErrors(t *testing.T, body []byte, wantFields []string) {
	t.Helper()
	var got struct {
		Errors []struct {
			Field   *string `json:"field"`
			Message *string `json:"message"`
		} `json:"errors"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("422 body %s: %v", body, err)
	}
	named := map[string]bool{}
	for _, e := range got.Errors {
		if e.Field == nil || e.Message == nil || *e.Message == "" {
			t.Errorf("error without field or message in %s", body)
			continue
		}
		named[*e.Field] = true
	}
	for _, f := range wantFields {
		if !named[f] {
			t.Errorf("no error names %q: %s", f, body)
		}
		delete(named, f)
	}
	for f := range named {
		t.Errorf("unexpected error for %q: %s", f, body)
	}
}

// checkQuestionnaire asserts the body is the new-patient Questionnaire
// exactly as loaded.
func checkQuestionnaire(t *testing.T, resp response) {
	t.Helper()
	q, _ := forms.Builtin().Get("new-patient")
	if !bytes.Equal(resp.body, q.Raw) {
		t.Errorf("body is not the Questionnaire as loaded:\n%s", resp.body)
	}
	var got struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	if err := json.Unmarshal(resp.body, &got); err != nil || got.ResourceType != "Questionnaire" || got.ID != "new-patient" {
		t.Errorf("body is not the new-patient Questionnaire (err %v): %+v", err, got)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want a JSON type", ct)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	resp := ti.do(t, request{method: "GET", path: "/healthz"})
	if resp.status != http.StatusOK {
		t.Fatalf("healthz with the database up: status %d: %s", resp.status, resp.body)
	}
	checkSecurityHeaders(t, resp.header)

	for _, path := range []string{"/readyz", "/livez"} {
		if resp := ti.do(t, request{method: "GET", path: path}); resp.status != http.StatusOK {
			t.Errorf("%s with the database up: status %d: %s", path, resp.status, resp.body)
		}
	}

	ti.pool.Close()
	// The process is alive, but not ready.
	if resp := ti.do(t, request{method: "GET", path: "/livez"}); resp.status != http.StatusOK {
		t.Errorf("livez with the pool closed: status %d, want 200", resp.status)
	}
	if resp := ti.do(t, request{method: "GET", path: "/readyz"}); resp.status != http.StatusServiceUnavailable {
		t.Errorf("readyz with the pool closed: status %d, want 503", resp.status)
	}
	resp = ti.do(t, request{method: "GET", path: "/healthz"})
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the pool closed: status %d, want 503: %s", resp.status, resp.body)
	}
	// The log line that says why names the request, as its response does.
	if id := resp.header.Get("X-Request-ID"); id == "" || !strings.Contains(ti.logs.String(), `"request_id":"`+id+`"`) {
		t.Errorf("X-Request-ID %q is not on the request's log line:\n%s", id, ti.logs.String())
	}
	checkSecurityHeaders(t, resp.header)
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil || body.Error == "" {
		t.Errorf("503 body %s: want {\"error\":\"...\"}", resp.body)
	}
}

// TestSealedRows reads the stored rows as the owner and checks what transfer
// will: the MAC under the row key, the envelope under the private key, and
// the binding inside it. Each submission gets its own id and receipt.
func TestSealedRows(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	const n = 3
	before := time.Now()
	receipts := map[string]bool{}
	for i := range n {
		resp := ti.do(t, request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(map[string]any{
			"family-name": secretName + strconv.Itoa(i), "allergies": true, "allergy-details": secretDetails,
		})})
		var created struct {
			Receipt string `json:"receipt"`
		}
		if resp.status != http.StatusCreated || json.Unmarshal(resp.body, &created) != nil {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		receipts[created.Receipt] = true
	}
	after := time.Now()
	if len(receipts) != n {
		t.Fatalf("%d distinct receipts for %d submissions", len(receipts), n)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ti.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id::text, form_id, form_version, key_id, received_at, envelope, mac FROM submissions ORDER BY seq`)
	if err != nil {
		t.Fatalf("read the rows: %v", err)
	}
	type storedRow struct {
		seal.Row
		mac []byte
	}
	var stored []storedRow
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.SubmissionID, &r.FormID, &r.FormVersion, &r.KeyID, &r.ReceivedAt, &r.Envelope, &r.mac); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stored) != n {
		t.Fatalf("%d rows stored, want %d", len(stored), n)
	}

	ids := map[string]bool{}
	for i, r := range stored {
		row := r.Row
		ids[row.SubmissionID] = true
		if row.FormID != "new-patient" || row.FormVersion != "1" || row.KeyID != ti.key.Public.ID.String() {
			t.Errorf("row %d: form %q version %q key %q; want new-patient, 1, %s", i, row.FormID, row.FormVersion, row.KeyID, ti.key.Public.ID)
		}
		if row.ReceivedAt.Before(before.Truncate(time.Microsecond)) || row.ReceivedAt.After(after) {
			t.Errorf("row %d: received_at %v is outside the requests (%v .. %v)", i, row.ReceivedAt, before, after)
		}
		for _, plain := range []string{secretName, secretDetails} {
			if bytes.Contains(row.Envelope, []byte(plain)) {
				t.Errorf("row %d: envelope holds %q in clear", i, plain)
			}
		}
		for receipt := range receipts {
			if bytes.Contains(row.Envelope, []byte(receipt)) {
				t.Errorf("row %d: envelope holds a receipt in clear", i)
			}
		}

		if !seal.VerifyRow([]seal.RowKey{ti.rowKey}, row, r.mac) {
			t.Fatalf("row %d: MAC does not verify under the row key", i)
		}
		otherKey, _ := seal.NewRowKey()
		if seal.VerifyRow([]seal.RowKey{otherKey}, row, r.mac) {
			t.Errorf("row %d: MAC verifies under another row key", i)
		}
		altered := row
		altered.FormID = "symptoms"
		if seal.VerifyRow([]seal.RowKey{ti.rowKey}, altered, r.mac) {
			t.Errorf("row %d: MAC still verifies with form_id changed", i)
		}

		env, err := seal.ParseEnvelope(row.Envelope)
		if err != nil {
			t.Fatalf("row %d: parse envelope: %v", i, err)
		}
		if env.KeyID != ti.key.Public.ID {
			t.Errorf("row %d: envelope key id %s, want %s", i, env.KeyID, ti.key.Public.ID)
		}
		plaintext, err := ti.key.Open(env)
		if err != nil {
			t.Fatalf("row %d: open envelope with the recipient's key: %v", i, err)
		}
		binding := seal.Binding{SubmissionID: row.SubmissionID, FormID: row.FormID, KeyID: row.KeyID}
		payload, err := seal.DecodePayload(plaintext, binding)
		if err != nil {
			t.Fatalf("row %d: decode payload against the row's binding: %v", i, err)
		}
		if !receipts[payload.Receipt] {
			t.Errorf("row %d: sealed receipt %q is none of those returned", i, payload.Receipt)
		}
		delete(receipts, payload.Receipt)
		if payload.FormVersion != row.FormVersion {
			t.Errorf("row %d: sealed form version %q, row says %q", i, payload.FormVersion, row.FormVersion)
		}
		if at, err := time.Parse(time.RFC3339Nano, payload.SubmittedAt); err != nil || !at.Equal(row.ReceivedAt) {
			t.Errorf("row %d: sealed submitted_at %q (err %v), row received_at %v", i, payload.SubmittedAt, err, row.ReceivedAt)
		}
		var answers map[string][]map[string]any
		if err := json.Unmarshal(payload.Answers, &answers); err != nil {
			t.Fatalf("row %d: sealed answers: %v", i, err)
		}
		if got, want := answers["family-name"], secretName+strconv.Itoa(i); len(got) != 1 || got[0]["valueString"] != want {
			t.Errorf("row %d: sealed family-name %v, want %q", i, got, want)
		}
		if got := answers["allergy-details"]; len(got) != 1 || got[0]["valueString"] != secretDetails {
			t.Errorf("row %d: sealed allergy-details %v, want %q", i, got, secretDetails)
		}

		// The binding is what stops a ciphertext being replayed under another row.
		other := binding
		other.SubmissionID = stored[(i+1)%n].SubmissionID
		if _, err := seal.DecodePayload(plaintext, other); err == nil {
			t.Errorf("row %d: payload accepted under another row's submission id", i)
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct submission ids for %d rows", len(ids), n)
	}
	for _, secret := range []string{secretName, secretDetails} {
		if strings.Contains(ti.logs.String(), secret) {
			t.Errorf("log holds the submitted value %q", secret)
		}
	}
}
