package intake

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
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
