package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/browsertest"
)

// TestAxeFindsViolationsUnderStrictCSP serves two pages under the staff
// app's CSP (no script at all): axe-core still runs, finds the unlabelled
// field and the missing language on the bad page, and nothing on the good.
func TestAxeFindsViolationsUnderStrictCSP(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'none'; base-uri 'none'")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(body))
		}
	}
	mux.HandleFunc("/bad", page(`<!doctype html><html><head><title>Bad</title></head><body><main><h1>Bad</h1><input name="q"></main></body></html>`))
	mux.HandleFunc("/good", page(`<!doctype html><html lang="en"><head><title>Good</title></head><body><main><h1>Good</h1><label for="q">Search</label><input id="q" name="q"></main></body></html>`))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	b := browsertest.New(t, 60*time.Second)
	b.Do("open the bad page", chromedp.Navigate(ts.URL+"/bad"), chromedp.WaitVisible(chromedp.CSS("h1")))
	vs, err := b.Violations()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range vs {
		ids = append(ids, v.ID)
	}
	got := strings.Join(ids, " ")
	if !strings.Contains(got, "html-has-lang") || !strings.Contains(got, "label") {
		t.Errorf("violations on the bad page: %q, want html-has-lang and label", got)
	}
	b.Do("open the good page", chromedp.Navigate(ts.URL+"/good"), chromedp.WaitVisible(chromedp.CSS("h1")))
	b.Axe("the good page")
}
