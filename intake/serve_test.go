package intake_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

var listeningRE = regexp.MustCompile(`"msg":"intake listening","addr":"([^"]+)".*"metrics":"([^"]*)"`)

// TestServeMetricsListener boots `intake serve` in-process and checks that
// metrics are served on their own listener and not on the public one, and
// that the server stops cleanly.
func TestServeMetricsListener(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	owner := pgtest.NewDB(t, "intake", migrations.Intake())
	env := validEnv(k)
	env["INTAKE_DATABASE_URL"] = pgtest.URLAs(t, owner, "airlock_intake_writer")
	env["INTAKE_ADDR"] = "127.0.0.1:0"
	env["INTAKE_METRICS_ADDR"] = "127.0.0.1:0"

	ctx, stop := context.WithCancel(context.Background())
	stderr := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- intake.Run(ctx, cli.Env{Args: []string{"serve"}, Getenv: getenv(env), Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderr})
	}()
	var public, metrics string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && public == ""; {
		if m := listeningRE.FindStringSubmatch(stderr.String()); m != nil {
			public, metrics = "http://"+m[1], "http://"+m[2]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("intake serve exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if public == "" || metrics == "http://" {
		t.Fatalf("no listening line with a metrics address:\n%s", stderr.String())
	}

	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(public + "/forms/new-patient"); code != http.StatusOK {
		t.Errorf("public form page: %d", code)
	}
	if code := get(public + "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d, want 404", code)
	}
	if code := get(metrics + "/metrics"); code != http.StatusOK {
		t.Errorf("/metrics on the metrics listener: %d, want 200", code)
	}
	if code := get(metrics + "/forms/new-patient"); code != http.StatusNotFound {
		t.Errorf("a form on the metrics listener: %d, want 404", code)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after SIGTERM-like cancel", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(stderr.String(), `"msg":"intake stopped"`) {
		t.Errorf("no clean stop logged")
	}
}
