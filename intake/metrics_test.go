package intake_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsLabelsAreBounded: made-up methods and paths from the public
// side add no series: methods collapse to a fixed set (OTHER for the rest)
// and paths to route templates.
func TestMetricsLabelsAreBounded(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	paths := []string{"/", submitPath, formPath, "/forms/made-up-1", "/api/v1/forms/zz9/submissions", "/no/such/path/x1", "/static/x2.css"}
	client := &http.Client{}
	for i := range 300 {
		method := fmt.Sprintf("MADEUP%03d", i)
		switch i % 10 {
		case 0:
			method = "GET"
		case 1:
			method = "PUT"
		}
		path := paths[i%len(paths)] + fmt.Sprintf("?n=%d", i)
		req, err := http.NewRequest(method, ti.url+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get(newMetricsServer(t, ti) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	series := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "airlock_intake_http_request_duration_seconds_count{") {
			continue
		}
		series++
		if strings.Contains(line, "MADEUP") || strings.Contains(line, "made-up") || strings.Contains(line, "zz9") ||
			strings.Contains(line, "x1") || strings.Contains(line, "x2") || strings.Contains(line, `method="PUT"`) {
			t.Errorf("a client-chosen label: %s", line)
		}
	}
	// 7 paths x (GET, OTHER) x a few status codes; 300 distinct methods
	// made 300+ before.
	if series == 0 || series > 30 {
		t.Errorf("%d request duration series from 300 requests with 270 made-up methods, want at most 30:\n%s", series, b)
	}
	if !strings.Contains(string(b), `method="OTHER"`) {
		t.Errorf("no OTHER method label")
	}
}
