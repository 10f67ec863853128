package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/forms"
)

// TestReadJSONBody: the body is read whole (trimmed) whatever its announced
// length says and however the reader splits it, and the size limit's error
// passes through for handleError to answer 413.
func TestReadJSONBody(t *testing.T) {
	t.Parallel()
	long := `{"a":"` + strings.Repeat("x", 3000) + `"}`
	huge := `{"a":"` + strings.Repeat("y", maxPresized+100) + `"}`
	for _, tc := range []struct {
		name   string
		r      io.Reader
		length int64
		want   string
	}{
		{"announced", strings.NewReader(" " + long + "\n"), int64(len(long) + 2), long},
		{"unknown length", strings.NewReader(long), -1, long},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader(long)), int64(len(long)), long},
		{"data and EOF together", iotest.DataErrReader(strings.NewReader(long)), int64(len(long)), long},
		{"announced too short", strings.NewReader(long), 10, long},
		{"announced over the presized bound", strings.NewReader(huge), int64(len(huge)), huge},
		{"empty", strings.NewReader(""), 0, ""},
	} {
		got, err := readJSONBody(bodyReader{tc.r, tc.length})
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %d bytes, %v; want %d bytes", tc.name, len(got), err, len(tc.want))
		}
	}

	rec := httptest.NewRecorder()
	limited := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(long)), 100)
	var mbe *http.MaxBytesError
	if _, err := readJSONBody(bodyReader{limited, int64(len(long))}); !errors.As(err, &mbe) {
		t.Errorf("over the limit: got %v, want *http.MaxBytesError", err)
	}
}

// keepingReader hands out body in small chunks and keeps every buffer it
// was asked to fill, so a test can look at intake's own buffers afterwards.
type keepingReader struct {
	body []byte
	kept [][]byte
}

func (k *keepingReader) Read(p []byte) (int, error) {
	if len(k.body) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 700)], k.body)
	k.body = k.body[n:]
	k.kept = append(k.kept, p[:n])
	return n, nil
}

// TestBodyBuffersAreCleared: once a JSON body is decoded (or refused), the
// buffers intake read it into hold none of it, grown ones included: Go
// frees memory without wiping it, and a root attacker reading the live
// process must find as little as possible of submissions already sealed
// (BenchmarkIntakeMemoryResidue measures what remains).
func TestBodyBuffersAreCleared(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("SECRET", 200)
	answers := `{"family-name":"` + secret + `"}`
	response := `{"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"family-name","answer":[{"valueString":"` + secret + `"}]}]}`
	q, _ := forms.Builtin().Get("new-patient")
	for _, tc := range []struct {
		name   string
		body   string
		length int64
		decode func(bodyReader) error
	}{
		{"answers", answers, int64(len(answers)), func(b bodyReader) error { _, err := decodeAnswers(b, 10); return err }},
		{"answers, length unknown (buffer grown)", answers, -1, func(b bodyReader) error { _, err := decodeAnswers(b, 10); return err }},
		{"malformed answers", answers[:len(answers)-1], -1, func(b bodyReader) error { _, err := decodeAnswers(b, 10); return err }},
		{"QuestionnaireResponse", response, -1, func(b bodyReader) error { _, err := decodeQuestionnaireResponse(b, q); return err }},
	} {
		r := &keepingReader{body: []byte(tc.body)}
		tc.decode(bodyReader{r, tc.length})
		for _, p := range r.kept {
			if bytes.Contains(p, []byte("SECRET")) {
				t.Errorf("%s: a buffer the body was read into still holds it after decoding", tc.name)
				break
			}
		}
	}
}

// TestReadJSONBodyOneAllocation: a body of an announced length is read into
// one buffer of that size, not grown from 512 bytes as io.ReadAll does.
func TestReadJSONBodyOneAllocation(t *testing.T) {
	body := bytes.Repeat([]byte("a"), 1500)
	r := bytes.NewReader(body)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		if _, err := readJSONBody(bodyReader{r, int64(len(body))}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations to read a 1500-byte body, want 1", allocs)
	}
}

// TestSecurityHeadersShared: the header values every response shares are
// never changed through one response: adding to or replacing a header in
// one leaves the next response's headers (and the shared values) as they
// were.
func TestSecurityHeadersShared(t *testing.T) {
	t.Parallel()
	e := echo.New()
	var recs []*httptest.ResponseRecorder
	for i := range 2 {
		h := securityHeaders(func(c echo.Context) error {
			c.Response().Header().Add("Cache-Control", fmt.Sprintf("private-%d", i))
			c.Response().Header().Set("X-Frame-Options", "SAMEORIGIN")
			return nil
		})
		rec := httptest.NewRecorder()
		if err := h(e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	for i, rec := range recs {
		if got, want := rec.Header().Values("Cache-Control"), []string{"no-store", fmt.Sprintf("private-%d", i)}; !slices.Equal(got, want) {
			t.Errorf("response %d: Cache-Control %q, want %q", i, got, want)
		}
	}
	if got := securityHeaderValues.Values("Cache-Control"); !slices.Equal(got, []string{"no-store"}) {
		t.Errorf("shared Cache-Control became %q", got)
	}
	if got := securityHeaderValues.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("shared X-Frame-Options became %q", got)
	}
}

// TestReceiptResponseBytes: the 201 body is byte for byte what the map of
// the two fields encoded to, so no client sees a change.
func TestReceiptResponseBytes(t *testing.T) {
	t.Parallel()
	got, err := json.Marshal(receiptResponse{CorrectionCode: "ABCD-EFGH-JKLM-NPQR", Receipt: "R<&>"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(map[string]string{"receipt": "R<&>", "correction_code": "ABCD-EFGH-JKLM-NPQR"})
	if !bytes.Equal(got, want) {
		t.Errorf("got %s, want %s", got, want)
	}
}

// FuzzDecodeAnswersAgreesWithJSON: decodeAnswers (jsonread, falling back
// to encoding/json) gives exactly the map json.Unmarshal gives, or refuses
// exactly what it refuses.
func FuzzDecodeAnswersAgreesWithJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":"x\ny","c":[1,{"d":null}],"a":true}`, ` {"a" : "\u0026"} `,
		"{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{"\u00e9":1}`, `{"a":1}x`, `{"a":1,}`, `{"a":01}`,
		`{"a":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(bytes.TrimSpace(body)) == 0 || bytes.TrimSpace(body)[0] != '{' {
			return // refused before either decoder runs
		}
		got, err := decodeAnswers(bodyReader{bytes.NewReader(body), int64(len(body))}, 8)
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(bytes.TrimSpace(body), &want)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: decodeAnswers error %v, json.Unmarshal error %v", body, err, wantErr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d names, json.Unmarshal %d", body, len(got), len(want))
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || !bytes.Equal(g, v) {
				t.Fatalf("%q: %q = %q, json.Unmarshal %q", body, k, g, v)
			}
		}
	})
}

// TestDecodeAnswersOnePass: the benchmark's 1.5 KB body is read by
// jsonread, without encoding/json's copy of every value.
func TestDecodeAnswersOnePass(t *testing.T) {
	body := []byte(`{"family-name":"Lindqvist-Okonkwo","given-name":"Marguerite","address":"Flat 4\nNorthbridge",` +
		`"allergy-details":"A\u0026E","alcohol-units":6,"height":168.5,"consent":true,"meds":["a","b"]}`)
	raw := map[string]json.RawMessage{}
	if err := readAnswerObject(body, raw); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(body)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		if _, err := decodeAnswers(bodyReader{r, int64(len(body))}, 8); err != nil {
			t.Fatal(err)
		}
	})
	viaUnmarshal := testing.AllocsPerRun(100, func() {
		raw := make(map[string]json.RawMessage, 8)
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= viaUnmarshal {
		t.Errorf("%v allocations to read and decode 8 answers; json.Unmarshal alone makes %v", allocs, viaUnmarshal)
	}
}
