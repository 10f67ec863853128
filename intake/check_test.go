package intake_test

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/ops/opstest"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

const intakeCmd = "github.com/airlockhq/airlock/intake/cmd/intake"

func ownerExec(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestOpsCommands builds the real binary once and runs its operations
// commands: --version, check, healthcheck.
func TestOpsCommands(t *testing.T) {
	t.Parallel()
	opstest.Commands(t, intakeCmd, "intake", opstest.Sub{Name: "Check", Run: testCheck}, opstest.Sub{Name: "Healthcheck", Run: testHealthcheck})
}

// testCheck runs the real `intake check` against a real database with the
// right login, the wrong ones, an old schema and bad settings.
func testCheck(t *testing.T, bin string) {
	k := newTestKeys(t)
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	env := validEnv(k)
	env["INTAKE_DATABASE_URL"] = pgtest.URLAsRoles(t, owner, "intake_web", "airlock_intake_writer", "airlock_intake_results")

	res := opstest.Run(t, bin, env, "check")
	if res.Code != 0 || strings.Contains(res.Stdout, "problem:") || !strings.Contains(res.Stdout, "intake check: all good") {
		t.Fatalf("check with intake's login: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
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
		want []string // problem lines that must appear
	}{
		{"superuser owner", with("INTAKE_DATABASE_URL", owner), []string{
			"is a superuser", "has SELECT on submissions", "has DELETE on submissions"}},
		{"transfer's login", with("INTAKE_DATABASE_URL", pgtest.URLAs(t, owner, "airlock_intake_transfer")), []string{
			"lacks INSERT on submissions", "has SELECT on submissions", "has DELETE on submissions", "is not granted airlock_intake_writer"}},
		{"writer role only", with("INTAKE_DATABASE_URL", pgtest.URLAs(t, owner, "airlock_intake_writer")), []string{
			"is not granted airlock_intake_results", "lacks SELECT on results"}},
		{"unreachable", with("INTAKE_DATABASE_URL", "postgres://intake:pw@127.0.0.1:1/intake?sslmode=disable&connect_timeout=2"), []string{
			"intake database (INTAKE_DATABASE_URL): cannot connect"}},
	}
	for _, c := range cases {
		res := opstest.Run(t, bin, c.env, "check")
		if res.Code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s", c.name, res.Code, res.Stdout)
		}
		for _, w := range c.want {
			if !regexp.MustCompile(`(?m)^problem: .*` + regexp.QuoteMeta(w)).MatchString(res.Stdout) {
				t.Errorf("%s: no problem line with %q in\n%s", c.name, w, res.Stdout)
			}
		}
		if strings.Contains(res.Stdout+res.Stderr, "pw@") {
			t.Errorf("%s: the database URL's password was printed", c.name)
		}
	}

	// A schema older than the binary is a problem.
	ownerExec(t, owner, `UPDATE schema_migrations SET version = 0`)
	res = opstest.Run(t, bin, env, "check")
	if res.Code != 1 || !strings.Contains(res.Stdout, "problem: intake database: database schema is older than this binary") {
		t.Errorf("old schema: exit %d\n%s", res.Code, res.Stdout)
	}

	// A bad setting is exit 2 with one line naming it.
	res = opstest.Run(t, bin, with("INTAKE_RATE_LIMIT", "lots"), "check")
	if res.Code != 2 || !strings.HasPrefix(res.Stderr, "INTAKE_RATE_LIMIT: ") || strings.Count(res.Stderr, "\n") != 1 {
		t.Errorf("bad setting: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// testHealthcheck serves intake with a metrics listener and runs the real
// `intake healthcheck` against /readyz there: the container healthcheck.
func testHealthcheck(t *testing.T, bin string) {
	env := serveEnv(t)
	env["INTAKE_METRICS_ADDR"] = "127.0.0.1:0"
	public, metrics, _, _ := startServe(t, env, "http://")
	for _, base := range []string{public, "http://" + metrics} {
		for _, path := range []string{"/livez", "/readyz", "/healthz"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s%s: %d", base, path, resp.StatusCode)
			}
		}
	}

	// Default URL: /readyz on INTAKE_METRICS_ADDR (given the port it got).
	res := opstest.Run(t, bin, map[string]string{"INTAKE_METRICS_ADDR": metrics}, "healthcheck")
	if res.Code != 0 || !strings.Contains(res.Stdout, "ok http://"+metrics+"/readyz") {
		t.Errorf("healthcheck: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
	_, port, _ := net.SplitHostPort(metrics)
	res = opstest.Run(t, bin, map[string]string{"INTAKE_METRICS_ADDR": ":" + port}, "healthcheck")
	if res.Code != 0 {
		t.Errorf("healthcheck on a wildcard address: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
	res = opstest.Run(t, bin, nil, "healthcheck", public+"/readyz")
	if res.Code != 0 {
		t.Errorf("healthcheck URL: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
	// Nothing listening, or not 200: exit 1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, u := range []string{"http://" + closed + "/readyz", public + "/no-such-page"} {
		if res := opstest.Run(t, bin, nil, "healthcheck", u); res.Code != 1 {
			t.Errorf("healthcheck %s: exit %d, want 1", u, res.Code)
		}
	}
	// No address and no URL: exit 2 naming the variable.
	res = opstest.Run(t, bin, nil, "healthcheck")
	if res.Code != 2 || !strings.HasPrefix(res.Stderr, "INTAKE_METRICS_ADDR: ") {
		t.Errorf("healthcheck without an address: exit %d %q", res.Code, res.Stderr)
	}
}
