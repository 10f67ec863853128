package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
)

// memoryStore stands in for Postgres in the fuzz tests.
type memoryStore struct{ rows atomic.Int64 }

func (m *memoryStore) StoreSubmission(context.Context, *SealedRow) error {
	m.rows.Add(1)
	return nil
}
func (m *memoryStore) Ping(context.Context) error { return nil }

func newFuzzServer(f testing.TB) (*Server, *memoryStore) {
	key, err := seal.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	rowKey, _ := seal.NewRowKey()
	cfg := &Config{
		PlainHTTP: true, Recipients: []seal.PublicKey{key.Public}, RowKey: rowKey, Forms: forms.Builtin(),
		MaxBody: 64 << 10, MaxAttachment: 8 << 10,
	}
	srv := NewServer(cfg, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	store := &memoryStore{}
	srv.store = store
	return srv, store
}

// FuzzDecodeAnswers posts arbitrary bodies to the JSON API, as plain
// answers and as a FHIR QuestionnaireResponse: the server never panics,
// never answers 5xx, always answers JSON, and stores only what it accepts.
func FuzzDecodeAnswers(f *testing.F) {
	for _, seed := range []string{
		`{"family-name":"A","given-name":"B","birth-date":"1980-02-29","sex-at-birth":"female","allergies":false,"consent":true}`,
		`{}`, `[]`, `null`, `"x"`, `{"a":1} {}`, `{"family-name":["A","B"]}`, `{"height":1e999,"alcohol-units":1.0}`,
		`{"documents":[{"contentType":"application/pdf","data":"JVBERi0xLjcK"}],"complaint":"x","severity":"6736007"}`,
		`{"documents":{"data":"R0lGODlh","size":6,"hash":"x"}}`,
		`{"resourceType":"QuestionnaireResponse","item":[{"linkId":"family-name","answer":[{"valueString":"A"}]}]}`,
		`{"resourceType":"QuestionnaireResponse","questionnaire":"x","item":[{"linkId":"g","item":[{"linkId":"g"}]}]}`,
		`{"resourceType":"QuestionnaireResponse","item":[{"linkId":"height","answer":[{"valueDecimal":"1e5"},{"valueInteger":2}]}]}`,
		"{\"address\":\"\\ud800\",\"family-name\":\"\\u0000\"}",
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(1))
		f.Add([]byte(seed), uint8(2))
	}
	srv, store := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		path, ctype := "/api/v1/forms/new-patient/submissions", "application/json"
		if mode&1 == 1 {
			ctype = "application/fhir+json"
		}
		if mode&2 == 2 {
			path = "/api/v1/forms/symptoms/submissions"
		}
		before := store.rows.Load()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		srv.Echo.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusCreated, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("response is not JSON: %s", rec.Body)
		}
		stored := store.rows.Load() - before
		if (rec.Code == http.StatusCreated) != (stored == 1) {
			t.Fatalf("status %d but %d rows stored", rec.Code, stored)
		}
	})
}

// FuzzFormDecoding posts arbitrary form bodies (URL-encoded and multipart)
// with a valid CSRF token to the HTML form: never a panic or 5xx, always a
// page, and nothing stored unless the receipt page is shown.
func FuzzFormDecoding(f *testing.F) {
	for _, seed := range []string{
		"family-name=A&given-name=B&birth-date=1980-02-29&sex-at-birth=female&allergies=false&consent=true",
		"", "a", "%zz", "family-name=%00", "consent=false&consent=true", "height=1,5&alcohol-units=+3&allergies=maybe",
		"contact_website=x", "allergies=true&allergy-details=" + strings.Repeat("x", 3000), "_csrf=&_csrf=x",
	} {
		f.Add(seed, false)
	}
	f.Add("--B\r\nContent-Disposition: form-data; name=\"complaint\"\r\n\r\nx\r\n--B\r\nContent-Disposition: form-data; name=\"documents\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.7\r\n--B--\r\n", true)
	f.Add("--B\r\nContent-Disposition: form-data; name=\"documents\"; filename=\"../../etc/passwd\"\r\n\r\nGIF89a\r\n--B--\r\n", true)
	f.Add("--B\r\n\r\n--B--", true)

	srv, store := newFuzzServer(f)
	cookie := strings.Repeat("A", 43)
	token := srv.csrf.token(cookie)
	f.Fuzz(func(t *testing.T, body string, multipartBody bool) {
		path, ctype := "/forms/new-patient", "application/x-www-form-urlencoded"
		if multipartBody {
			path, ctype = "/forms/symptoms", "multipart/form-data; boundary=B"
			body = "--B\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n" + token + "\r\n" + body
		} else {
			body = "_csrf=" + url.QueryEscape(token) + "&" + body
		}
		before := store.rows.Load()
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.AddCookie(&http.Cookie{Name: csrfCookie, Value: cookie})
		rec := httptest.NewRecorder()
		srv.Echo.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusSeeOther, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if rec.Code != http.StatusSeeOther && !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("status %d answered %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		stored := store.rows.Load() - before
		if (rec.Code == http.StatusSeeOther) != (stored == 1) {
			t.Fatalf("status %d but %d rows stored", rec.Code, stored)
		}
		if rec.Code == http.StatusForbidden && !multipartBody {
			// The token comes first, so url.Values.Get finds it.
			t.Fatalf("valid token refused")
		}
	})
}
