package clinical

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/ops/opstest"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

const clinicalCmd = "github.com/airlockhq/airlock/clinical/cmd/clinical"

// TestOpsCommands builds the real binary once and runs its operations
// commands: --version, check, healthcheck.
func TestOpsCommands(t *testing.T) {
	t.Parallel()
	opstest.Commands(t, clinicalCmd, "clinical", opstest.Sub{Name: "Check", Run: testCheck}, opstest.Sub{Name: "MetricsListenerAndHealthcheck", Run: testMetricsListenerAndHealthcheck})
}

// testCheck runs the real `clinical check` with the app's login, with
// logins it must refuse, on an old schema and with a bad setting.
func testCheck(t *testing.T, bin string) {
	owner := pgtest.NewDB(t, "clinical", migrations.Clinical())
	secret, err := NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CLINICAL_DATABASE_URL": pgtest.URLAs(t, owner, "airlock_clinical_app"), "CLINICAL_SECRET_KEY": secret.String()}
	res := opstest.Run(t, bin, env, "check")
	if res.Code != 0 || strings.Contains(res.Stdout, "problem:") || !strings.Contains(res.Stdout, "clinical check: all good") {
		t.Fatalf("check with the app login: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	with := func(k, v string) map[string]string {
		out := map[string]string{}
		for a, b := range env {
			out[a] = b
		}
		out[k] = v
		return out
	}
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"superuser owner", with("CLINICAL_DATABASE_URL", owner), []string{
			"login postgres is a superuser", "has UPDATE on audit_log", "has DELETE on audit_log", "has DELETE on submissions"}},
		{"transfer's login", with("CLINICAL_DATABASE_URL", pgtest.URLAs(t, owner, "airlock_clinical_transfer")), []string{
			"is not granted airlock_clinical_app", "lacks SELECT on staff", "lacks SELECT on audit_log", "has INSERT on submissions",
			"lacks EXECUTE on erase_submission(bigint)"}},
	}
	for _, c := range cases {
		res := opstest.Run(t, bin, c.env, "check")
		if res.Code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s%s", c.name, res.Code, res.Stdout, res.Stderr)
		}
		for _, w := range c.want {
			if !regexp.MustCompile(`(?m)^problem: .*` + regexp.QuoteMeta(w)).MatchString(res.Stdout) {
				t.Errorf("%s: no problem line with %q in\n%s", c.name, w, res.Stdout)
			}
		}
		if strings.Contains(res.Stdout+res.Stderr, secret.String()) || strings.Contains(res.Stdout+res.Stderr, pgtest.LoginPassword) {
			t.Errorf("%s: a secret was printed", c.name)
		}
	}
	res = opstest.Run(t, bin, with("CLINICAL_METRICS_ADDR", "nowhere"), "check")
	if res.Code != 2 || !strings.HasPrefix(res.Stderr, "CLINICAL_METRICS_ADDR: ") || strings.Count(res.Stderr, "\n") != 1 {
		t.Errorf("bad setting: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

var metricsListeningRE = regexp.MustCompile(`"msg":"clinical listening","addr":"([^"]+)".*"metrics":"([^"]*)"`)

// testMetricsListenerAndHealthcheck boots `clinical serve` with
// CLINICAL_METRICS_ADDR: /metrics there and not on the app's listener,
// /livez and /readyz on both, and the real `clinical healthcheck`.
func testMetricsListenerAndHealthcheck(t *testing.T, bin string) {
	a := newApp(t)
	env := map[string]string{"CLINICAL_DATABASE_URL": a.appURL, "CLINICAL_SECRET_KEY": a.secret.String(),
		"CLINICAL_ADDR": "127.0.0.1:0", "CLINICAL_METRICS_ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cliEnv(env, io.Discard, logs, "serve")) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var m []string
	for deadline := time.Now().Add(20 * time.Second); m == nil; time.Sleep(20 * time.Millisecond) {
		if m = metricsListeningRE.FindStringSubmatch(logs.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
	}
	app, metrics := "http://"+m[1], "http://"+m[2]
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get(app + "/login")
	for _, base := range []string{app, metrics} {
		for _, p := range []string{"/livez", "/readyz", "/healthz"} {
			if code, _ := get(base + p); code != http.StatusOK {
				t.Errorf("GET %s%s: %d", base, p, code)
			}
		}
	}
	if code, _ := get(app + "/metrics"); code == http.StatusOK {
		t.Errorf("/metrics is served on the staff app's listener")
	}
	if code, body := get(metrics + "/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `airlock_clinical_http_request_duration_seconds_count{code="200",method="GET",route="/login"}`) {
		t.Errorf("/metrics on the metrics listener: %d\n%s", code, body)
	}
	if res := opstest.Run(t, bin, map[string]string{"CLINICAL_METRICS_ADDR": m[2]}, "healthcheck"); res.Code != 0 {
		t.Errorf("healthcheck: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
	if res := opstest.Run(t, bin, nil, "healthcheck", app+"/readyz"); res.Code != 0 {
		t.Errorf("healthcheck URL: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
}

// TestMetricsCountLoginsExportsAndAudit drives the staff app and reads the
// counts back from its /metrics: logins by result, throttles, exports,
// audit appends and the audit head; no label holds an email.
func TestMetricsCountLoginsExportsAndAudit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	cl := a.newUser(t, "clinician@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, cl)
	if rec := c.export(url.Values{"format": {"csv"}}); rec.Code != http.StatusOK {
		t.Fatalf("export: %d", rec.Code)
	}
	other := a.client()
	throttled := false
	for range a.srv.accounts.AccountLimit + 1 {
		rec := other.post("/login", url.Values{"email": {cl.email}, "password": {"wrong password entirely"}, "code": {"000000"}})
		throttled = rec.Code == http.StatusTooManyRequests
	}
	if !throttled {
		t.Fatalf("no 429 after %d wrong logins", a.srv.accounts.AccountLimit+1)
	}

	rec := httptest.NewRecorder()
	a.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	var entries int
	if err := a.owner.QueryRow(t.Context(), `SELECT count(*) FROM audit_log`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`airlock_clinical_logins_total{result="success"} 1`,
		fmt.Sprintf(`airlock_clinical_logins_total{result="failure"} %d`, a.srv.accounts.AccountLimit),
		`airlock_clinical_logins_total{result="throttled"} 1`,
		`airlock_clinical_exports_total{format="csv"} 1`,
		`airlock_clinical_exports_total{format="ndjson"} 0`,
		fmt.Sprintf("airlock_clinical_audit_head_seq %d", entries),
		`airlock_clinical_http_request_duration_seconds_count{code="303",method="POST",route="/login"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Every audit entry since the server started was appended by it.
	if !regexp.MustCompile(`(?m)^airlock_clinical_audit_appends_total [1-9]`).MatchString(body) {
		t.Errorf("no audit appends counted")
	}
	if strings.Contains(body, cl.email) || strings.Contains(body, "clinic.example") {
		t.Errorf("an email in the metrics")
	}
}

// TestMetricsMethodLabelIsBounded: any client that reaches the staff app can
// send made-up methods before logging in; each must not become a new set of
// series (the finding intake had: 5,000 methods, 75,045 series).
func TestMetricsMethodLabelIsBounded(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	for i := range 200 {
		rec := httptest.NewRecorder()
		a.srv.Echo.ServeHTTP(rec, httptest.NewRequest(fmt.Sprintf("MADEUP%d", i), "/login", nil))
	}
	rec := httptest.NewRecorder()
	a.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if strings.Contains(body, "MADEUP") {
		t.Errorf("a made-up method became a label value")
	}
	series := strings.Count(body, "airlock_clinical_http_request_duration_seconds_count{")
	if series == 0 || series > 5 {
		t.Errorf("%d request duration series from 200 made-up methods, want 1 to 5", series)
	}
	if !strings.Contains(body, `method="OTHER"`) {
		t.Errorf("no OTHER method label")
	}
}
