package ops

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRequestIDOnEveryLogLine: each request gets its own id in the response
// header and on the lines logged with its context; a client's id is ignored.
func TestRequestIDOnEveryLogLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(WithRequestID(slog.NewJSONHandler(&buf, nil))).With("service", "test")
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "one")
		log.WarnContext(r.Context(), "two")
	}))
	seen := map[string]bool{}
	for range 3 {
		buf.Reset()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set(RequestIDHeader, "client-chosen\nfake line")
		h.ServeHTTP(rec, req)
		id := rec.Header().Get(RequestIDHeader)
		if len(id) != 24 || seen[id] {
			t.Fatalf("request id %q: want 24 hex digits, new each time", id)
		}
		seen[id] = true
		dec := json.NewDecoder(&buf)
		lines := 0
		for dec.More() {
			var line map[string]any
			if err := dec.Decode(&line); err != nil {
				t.Fatal(err)
			}
			lines++
			if line["request_id"] != id || line["service"] != "test" {
				t.Errorf("log line %v: want request_id %s and the logger's own attributes", line, id)
			}
		}
		if lines != 2 {
			t.Errorf("%d log lines, want 2", lines)
		}
	}
	buf.Reset()
	log.Info("outside a request")
	if bytes.Contains(buf.Bytes(), []byte("request_id")) {
		t.Errorf("a line outside any request has a request id: %s", buf.String())
	}
}
