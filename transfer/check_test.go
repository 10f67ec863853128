package transfer_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/ops/opstest"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/transfer"
)

const transferCmd = "github.com/airlockhq/airlock/transfer/cmd/transfer"

// TestOpsCommands builds the real binary once and runs its operations
// commands: --version, check, healthcheck.
func TestOpsCommands(t *testing.T) {
	t.Parallel()
	opstest.Commands(t, transferCmd, "transfer", opstest.Sub{Name: "Check", Run: testCheck}, opstest.Sub{Name: "ReadyAndHealthcheck", Run: testReadyAndHealthcheck})
}

// testCheck runs the real `transfer check`: keys unlocked, both databases
// reached with the worker's logins and their grants confirmed; a wrong
// passphrase or the wrong logins are problems (exit 1), a bad setting exit 2.
func testCheck(t *testing.T, bin string) {
	f := newFixture(t)
	env := f.cliEnv()

	res := opstest.Run(t, bin, env, "check")
	if res.Code != 0 || strings.Contains(res.Stdout, "problem:") || !strings.Contains(res.Stdout, "ok: keys: 1 unlocked") ||
		!strings.Contains(res.Stdout, "transfer check: all good") {
		t.Fatalf("check: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	cases := []struct {
		name    string
		changes map[string]string
		want    []string
	}{
		{"wrong passphrase", map[string]string{"TRANSFER_PASSPHRASE": "wrong horse battery staple"}, []string{"keys: unlock"}},
		{"intake's own login", map[string]string{"INTAKE_DATABASE_URL": pgtest.URLAs(t, f.intakeDB, "airlock_intake_writer")}, []string{
			"intake database: login airlock_test_airlock_intake_writer is not granted airlock_intake_transfer",
			"lacks SELECT on submissions", "has INSERT on submissions"}},
		{"the clinical app's login", map[string]string{"CLINICAL_DATABASE_URL": pgtest.URLAs(t, f.clinicalDB, "airlock_clinical_app")}, []string{
			"clinical database: login airlock_test_airlock_clinical_app is not granted airlock_clinical_transfer",
			"has SELECT on staff", "has SELECT on audit_log", "lacks INSERT on quarantine"}},
		{"superuser", map[string]string{"CLINICAL_DATABASE_URL": f.clinicalDB}, []string{"clinical database: login postgres is a superuser"}},
	}
	for _, c := range cases {
		res := opstest.Run(t, bin, with(env, c.changes), "check")
		if res.Code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s%s", c.name, res.Code, res.Stdout, res.Stderr)
		}
		for _, w := range c.want {
			if !regexp.MustCompile(`(?m)^problem: .*` + regexp.QuoteMeta(w)).MatchString(res.Stdout) {
				t.Errorf("%s: no problem line with %q in\n%s", c.name, w, res.Stdout)
			}
		}
		if strings.Contains(res.Stdout+res.Stderr, testPassphrase) || strings.Contains(res.Stdout+res.Stderr, pgtest.LoginPassword) {
			t.Errorf("%s: a passphrase or password was printed", c.name)
		}
	}

	for _, v := range []string{"TRANSFER_ROW_KEYS", "TRANSFER_KEYS"} {
		res := opstest.Run(t, bin, with(env, map[string]string{v: "not-valid"}), "check")
		if res.Code != 2 || !strings.HasPrefix(res.Stderr, v+": ") || strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("bad %s: exit %d, stderr %q", v, res.Code, res.Stderr)
		}
	}
}

// testReadyAndHealthcheck: `transfer run` serves /livez and /readyz on its
// metrics listener, the real `transfer healthcheck` reads it, and /readyz
// turns 503 when a database goes away.
func testReadyAndHealthcheck(t *testing.T, bin string) {
	f := newFixture(t)
	env := with(f.cliEnv(), map[string]string{"TRANSFER_SCHEDULE": "@every 1h", "TRANSFER_METRICS_ADDR": "127.0.0.1:0"})
	w := startWorker(t, env)
	w.metrics() // the listener answers
	addr := metricsAddrRE.FindStringSubmatch(w.p.stderr.String())[1]
	for _, path := range []string{"/livez", "/readyz", "/healthz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if res := opstest.Run(t, bin, map[string]string{"TRANSFER_METRICS_ADDR": addr}, "healthcheck"); res.Code != 0 {
		t.Errorf("healthcheck: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
	if res := opstest.Run(t, bin, nil, "healthcheck"); res.Code != 2 || !strings.HasPrefix(res.Stderr, "TRANSFER_METRICS_ADDR: ") {
		t.Errorf("healthcheck without an address: exit %d %q", res.Code, res.Stderr)
	}

	// A worker whose database is gone is alive but not ready.
	wk := &transfer.Worker{Mover: f.newMover(nil, nil), Schedule: "@every 1m"}
	srv := httptest.NewServer(wk.Ready())
	defer srv.Close()
	if code := getStatus(t, srv.URL); code != http.StatusOK {
		t.Errorf("readyz of a fresh worker: %d", code)
	}
	wk.Mover.Clinical.Close()
	if code := getStatus(t, srv.URL); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with the clinical database closed: %d, want 503", code)
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
