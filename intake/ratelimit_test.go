package intake_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/intake"
)

// postEmpty sends a submission that is always rejected (422), so rate-limit
// tests store nothing whatever the limit lets through.
func postEmpty(t *testing.T, ti *testIntake, forwardedFor string) response {
	t.Helper()
	h := http.Header{}
	if forwardedFor != "" {
		h.Set("X-Forwarded-For", forwardedFor)
	}
	return ti.do(t, request{method: "POST", path: submitPath, contentType: jsonType, body: `{}`, header: h})
}

// exhaust sends submissions until the limit answers 429 and returns how
// many got through and the 429 response.
func exhaust(t *testing.T, ti *testIntake, forwardedFor string) (int, response) {
	t.Helper()
	for n := 0; n < 100; n++ {
		resp := postEmpty(t, ti, forwardedFor)
		if resp.status == http.StatusTooManyRequests {
			return n, resp
		}
		if resp.status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
	}
	t.Fatal("no 429 after 100 submissions")
	return 0, response{}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// One a minute: nothing refills while the test runs, however slow.
	ti := newTestIntakeWith(t, func(c *intake.Config) { c.RateLimit = 1 })
	n, resp := exhaust(t, ti, "")
	if n != intake.RateBurst {
		t.Errorf("%d submissions before 429, want the burst of %d", n, intake.RateBurst)
	}
	checkSecurityHeaders(t, resp.header)
	ra, err := strconv.Atoi(resp.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 61 {
		t.Errorf("Retry-After %q, want whole seconds from 1 to 60", resp.header.Get("Retry-After"))
	}
	if !strings.Contains(string(resp.body), `"error"`) {
		t.Errorf("429 body %s, want {\"error\":...}", resp.body)
	}
	// The HTML form answers 429 with a page; reading forms is not limited.
	page := ti.do(t, request{method: "POST", path: formPath, contentType: formType, body: "a=b"})
	if page.status != http.StatusTooManyRequests || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") || page.header.Get("Retry-After") == "" {
		t.Errorf("HTML POST: status %d type %q", page.status, page.header.Get("Content-Type"))
	}
	for range 5 {
		if resp := ti.do(t, request{method: "GET", path: formPath}); resp.status != http.StatusOK {
			t.Fatalf("GET after the limit: status %d", resp.status)
		}
	}
	// The peer is not a trusted proxy: X-Forwarded-For changes nothing.
	for i := range 3 {
		if resp := postEmpty(t, ti, fmt.Sprintf("198.51.100.%d", i)); resp.status != http.StatusTooManyRequests {
			t.Errorf("X-Forwarded-For from an untrusted peer escaped the limit: status %d", resp.status)
		}
	}
	if rows := ti.rows(t); rows != 0 {
		t.Errorf("%d rows stored", rows)
	}
}

// TestRateLimitTrustedProxy: behind a trusted proxy each client (the
// rightmost untrusted X-Forwarded-For address) has its own bucket, and
// addresses a client prepends itself are ignored.
func TestRateLimitTrustedProxy(t *testing.T) {
	t.Parallel()
	ti := newTestIntakeWith(t, func(c *intake.Config) {
		c.RateLimit = 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	if n, _ := exhaust(t, ti, "203.0.113.7"); n != intake.RateBurst {
		t.Errorf("client A: %d before 429", n)
	}
	// A spoofed left-most entry does not make a new client...
	if resp := postEmpty(t, ti, "192.0.2.99, 203.0.113.7"); resp.status != http.StatusTooManyRequests {
		t.Errorf("spoofed X-Forwarded-For escaped the limit: status %d", resp.status)
	}
	// ...nor does an extra trusted hop to the right.
	if resp := postEmpty(t, ti, "203.0.113.7, 10.1.2.3"); resp.status != http.StatusTooManyRequests {
		t.Errorf("client A behind two proxies escaped the limit: status %d", resp.status)
	}
	// Another client has its own bucket.
	if resp := postEmpty(t, ti, "203.0.113.8"); resp.status != http.StatusUnprocessableEntity {
		t.Errorf("client B: status %d, want 422", resp.status)
	}
	// IPv6 clients share a bucket per /64.
	if n, _ := exhaust(t, ti, "2001:db8:1:2::1"); n != intake.RateBurst {
		t.Errorf("IPv6 client: %d before 429", n)
	}
	if resp := postEmpty(t, ti, "2001:db8:1:2::ffff"); resp.status != http.StatusTooManyRequests {
		t.Errorf("another address in the same /64 escaped the limit: status %d", resp.status)
	}
	if resp := postEmpty(t, ti, "2001:db8:1:3::1"); resp.status != http.StatusUnprocessableEntity {
		t.Errorf("another /64: status %d, want 422", resp.status)
	}
	// No client address is ever logged.
	for _, addr := range []string{"203.0.113.7", "203.0.113.8", "192.0.2.99", "2001:db8", "127.0.0.1"} {
		if strings.Contains(ti.logs.String(), addr) {
			t.Errorf("log holds the client address %s", addr)
		}
	}
}

// TestGlobalCeiling: many clients together meet the global ceiling.
func TestGlobalCeiling(t *testing.T) {
	t.Parallel()
	ti := newTestIntakeWith(t, func(c *intake.Config) {
		c.RateLimit = 1
		c.RateLimitGlobal = 1 // burst max(20, 0) = 20, and nothing refills during the test
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	limited := 0
	for i := range 30 {
		if resp := postEmpty(t, ti, fmt.Sprintf("198.51.100.%d", i)); resp.status == http.StatusTooManyRequests {
			limited++
			if resp.header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		}
	}
	if limited != 10 {
		t.Errorf("%d of 30 single submissions from different clients limited, want 10 over the global burst of 20", limited)
	}
}

// TestMetrics: the metrics handler counts submissions by form and status,
// and carries nothing a client chose (no unknown form ids, no addresses).
func TestMetrics(t *testing.T) {
	t.Parallel()
	ti := newTestIntake(t)
	ti.do(t, request{method: "POST", path: submitPath, contentType: jsonType, body: answersJSON(nil)})
	ti.do(t, request{method: "POST", path: submitPath, contentType: jsonType, body: `{}`})
	ti.do(t, request{method: "POST", path: "/api/v1/forms/Zq-made-up/submissions", contentType: jsonType, body: `{}`})
	ti.do(t, request{method: "POST", path: formPath, contentType: formType, body: "a=b"})

	srv := newMetricsServer(t, ti)
	resp, err := http.Get(srv + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`airlock_intake_submissions_total{channel="api",form="new-patient",status="201"} 1`,
		`airlock_intake_submissions_total{channel="api",form="new-patient",status="422"} 1`,
		`airlock_intake_submissions_total{channel="api",form="unknown",status="404"} 1`,
		`airlock_intake_submissions_total{channel="html",form="new-patient",status="403"} 1`,
		`airlock_intake_csrf_failures_total 1`,
		`airlock_intake_http_request_duration_seconds_bucket{code="201",method="POST",route="/api/v1/forms/:id/submissions"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "Zq-made-up") || strings.Contains(body, "127.0.0.1") {
		t.Errorf("metrics carry a client-chosen value")
	}
}

// newMetricsServer serves the metrics handler on its own listener, as
// `intake serve` does with INTAKE_METRICS_ADDR.
func newMetricsServer(t *testing.T, ti *testIntake) string {
	t.Helper()
	ts := httptest.NewServer(ti.srv.MetricsHandler())
	t.Cleanup(ts.Close)
	return ts.URL
}
