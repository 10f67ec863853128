package transfer_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/transfer"
)

// worker is `transfer run`, running in-process.
type worker struct {
	t      testing.TB
	p      *program
	cancel context.CancelFunc
	done   chan error
	err    error
	exited bool
}

// startWorker starts `transfer run` with env and waits until it listens on
// intake. It is stopped (as by SIGTERM) when the test ends.
func startWorker(t testing.TB, env map[string]string) *worker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{t: t, p: &program{run: transfer.Run, env: env}, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- w.p.exec(ctx, "run") }()
	t.Cleanup(func() { w.stop() })
	w.waitLog("listening for new submissions", 1, time.Minute) // a loaded machine unlocks the key slowly
	return w
}

// stop cancels the worker's context (what SIGTERM does through cli.Main)
// and waits for it to return.
func (w *worker) stop() error {
	w.t.Helper()
	if w.exited {
		return w.err
	}
	w.cancel()
	select {
	case w.err = <-w.done:
		w.exited = true
	case <-time.After(30 * time.Second):
		w.t.Fatalf("transfer run did not stop within 30s of its context ending:\n%s", w.p.stderr.String())
	}
	return w.err
}

// waitLog waits until the worker's log holds msg at least n times.
func (w *worker) waitLog(msg string, n int, timeout time.Duration) {
	w.t.Helper()
	waitFor(w.t, timeout, func() bool {
		select {
		case err := <-w.done:
			w.exited, w.err = true, err
			w.t.Fatalf("transfer run exited: %v\n%s", err, w.p.stderr.String())
		default:
		}
		return strings.Count(w.p.stderr.String(), `"msg":"`+msg) >= n
	}, "the worker log to say %q %d times; log:\n%s", msg, n, w.p.stderr.String)
}

var metricsAddrRE = regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`)

// metrics scrapes the worker's /metrics.
func (w *worker) metrics() string {
	w.t.Helper()
	m := metricsAddrRE.FindStringSubmatch(w.p.stderr.String())
	if m == nil {
		w.t.Fatalf("no metrics address in the log:\n%s", w.p.stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// waitFor polls cond every 10 ms until it holds or timeout passes; what
// names the awaited state for the failure message, with args that may be
// funcs returning strings (evaluated at failure).
func waitFor(t testing.TB, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			for i, a := range args {
				if f, ok := a.(func() string); ok {
					args[i] = f()
				}
			}
			t.Fatalf("timed out after %v waiting for "+what, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricValue finds one unlabelled sample in a Prometheus text exposition.
func metricValue(t testing.TB, exposition, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(exposition)
	if m == nil {
		t.Fatalf("metric %s not exposed:\n%s", name, exposition)
	}
	return m[1]
}

func TestRunMovesEachNewSubmissionOnItsNotifyAndStopsCleanly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// An hour between scheduled passes: only the NOTIFY wake-ups (and the
	// pass at start-up) can move anything in this test.
	env := with(f.cliEnv(), map[string]string{"TRANSFER_SCHEDULE": "@every 1h", "TRANSFER_METRICS_ADDR": "127.0.0.1:0"})
	waiting := f.submit("symptoms", symptomsAnswers, nil) // before the worker starts
	w := startWorker(t, env)
	waitFor(t, 10*time.Second, func() bool { return f.intakeCount() == 0 }, "the start-up pass to move the waiting row")

	// Each row is moved by the wake-up its NOTIFY causes (the schedule is an
	// hour away). The latency target (2 s) is measured by
	// BenchmarkTimeToClinic; here the bound is loose, for loaded machines.
	var rows []*submitted
	var slowest time.Duration
	for i := range 5 {
		var s *submitted
		if i%2 == 0 {
			s = f.submit("new-patient", newPatientAnswers, nil)
		} else {
			s = f.submit("symptoms", symptomsAnswers, nil)
		}
		start := time.Now()
		waitFor(t, 10*time.Second, func() bool {
			_, ok := f.clinicalRows()[s.SubmissionID]
			return ok
		}, "submission %d to reach clinical", i)
		slowest = max(slowest, time.Since(start))
		rows = append(rows, s)
	}
	t.Logf("slowest of 5 submissions reached clinical in %v", slowest)
	// A burst is one pass or a few, not one per insert.
	for range 20 {
		rows = append(rows, f.submit("symptoms", symptomsAnswers, nil))
	}
	waitFor(t, 10*time.Second, func() bool { return f.intakeCount() == 0 }, "the burst to be moved")
	rows = append(rows, waiting)
	if got := f.clinicalRows(); len(got) != len(rows) {
		t.Fatalf("clinical holds %d submissions, want %d", len(got), len(rows))
	}

	// The counters are updated when a pass returns, just after its delete.
	var metrics string
	waitFor(t, 5*time.Second, func() bool {
		metrics = w.metrics()
		return metricValue(t, metrics, "airlock_transfer_moved_total") == "26"
	}, "airlock_transfer_moved_total to reach 26")
	for name, want := range map[string]string{
		"airlock_transfer_status_up":     "1",
		"airlock_transfer_pending":       "0",
		"airlock_transfer_unknown_key":   "0",
		"airlock_transfer_quarantined":   "0",
		"airlock_transfer_expired_total": "0",
	} {
		if got := metricValue(t, metrics, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	for _, name := range []string{"airlock_transfer_last_succession", "airlock_transfer_oldest_pending_seconds",
		"airlock_transfer_pass_duration_seconds_count", "airlock_transfer_last_pass_timestamp_seconds"} {
		metricValue(t, metrics, name)
	}
	for _, s := range rows {
		if strings.Contains(metrics, s.receipt) || strings.Contains(metrics, s.SubmissionID) {
			t.Fatal("the metrics name a submission")
		}
	}

	if err := w.stop(); err != nil {
		t.Fatalf("transfer run returned %v on shutdown, want nil (exit 0)", err)
	}
	log := w.p.stderr.String()
	passes := strings.Count(log, `"msg":"pass finished"`)
	if passes < 6 || passes > 20 {
		t.Errorf("%d passes for 6 wake-ups and a burst of 20 inserts, want the burst debounced", passes)
	}
	if !strings.Contains(log, `"msg":"transfer worker stopped"`) {
		t.Errorf("no clean stop in the log")
	}
	checkClean(t, "the worker log", log, rows...)
}

func TestRunListensAgainAfterTheConnectionDrops(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := startWorker(t, with(f.cliEnv(), map[string]string{"TRANSFER_SCHEDULE": "@every 1h"}))
	// The server ends the LISTEN connection (a restart, a failover, a
	// network cut): the worker must reconnect by itself.
	var killed int
	if err := f.intakeOwner.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name = 'airlock-transfer-listen' AND datname = current_database()`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN connections (%v), want 1", killed, err)
	}
	w.waitLog("intake LISTEN connection lost", 1, 10*time.Second)
	w.waitLog("listening for new submissions", 2, 10*time.Second)
	s := f.submit("new-patient", newPatientAnswers, nil)
	waitFor(t, 10*time.Second, func() bool {
		_, ok := f.clinicalRows()[s.SubmissionID]
		return ok
	}, "a submission after the reconnect to reach clinical without a scheduled pass")
}

func TestRunSchedulePassesWithoutNotifications(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := startWorker(t, with(f.cliEnv(), map[string]string{"TRANSFER_SCHEDULE": "@every 2s"}))
	// No NOTIFY arrives (as when the LISTEN connection is down): the
	// schedule alone moves the row. Let the start-up wake-ups pass first.
	f.ownerExec(`ALTER TABLE submissions DISABLE TRIGGER submissions_notify`)
	w.waitLog("pass finished", 1, 10*time.Second)
	time.Sleep(3 * transfer.DefaultDebounce)
	s := f.submit("symptoms", symptomsAnswers, nil)
	waitFor(t, 10*time.Second, func() bool {
		_, ok := f.clinicalRows()[s.SubmissionID]
		return ok
	}, "a scheduled pass to move the row")
}

func TestRunRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := f.cliEnv()
	f.submit("symptoms", symptomsAnswers, nil)
	cases := []struct {
		name    string
		changes map[string]string
		code    int
		naming  string
	}{
		{"schedule malformed", map[string]string{"TRANSFER_SCHEDULE": "every minute"}, 2, "TRANSFER_SCHEDULE"},
		{"schedule with six fields", map[string]string{"TRANSFER_SCHEDULE": "0 * * * * *"}, 2, "TRANSFER_SCHEDULE"},
		{"quarantine retention malformed", map[string]string{"TRANSFER_QUARANTINE_RETENTION": "90 days"}, 2, "TRANSFER_QUARANTINE_RETENTION"},
		{"metrics address malformed", map[string]string{"TRANSFER_METRICS_ADDR": "localhost"}, 2, "TRANSFER_METRICS_ADDR"},
		{"wrong passphrase", map[string]string{"TRANSFER_PASSPHRASE": "wrong horse battery staple"}, 1, env["TRANSFER_KEYS"]},
		{"intake unreachable", map[string]string{"INTAKE_DATABASE_URL": unreachable}, 1, "intake database"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p := &program{run: transfer.Run, env: with(env, c.changes)}
			err := p.exec(ctx, "run")
			if code := cli.ExitCode(err); code != c.code || ctx.Err() != nil {
				t.Fatalf("exit code %d (%v), want %d at once", code, err, c.code)
			}
			if !strings.Contains(err.Error(), c.naming) {
				t.Errorf("error %q does not name %s", err, c.naming)
			}
			if n := f.intakeCount(); n != 1 {
				t.Errorf("intake holds %d rows, want the row untouched", n)
			}
		})
	}
}

// A database whose schema is older than the binary is refused before
// anything moves, by `once` and by `run`.
func TestOutdatedSchemaIsRefused(t *testing.T) {
	t.Parallel()
	for _, side := range []string{"intake", "clinical"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.submit("symptoms", symptomsAnswers, nil)
			owner := f.intakeOwner
			if side == "clinical" {
				owner = f.clinicalOwner
			}
			if _, err := owner.Exec(context.Background(), `UPDATE schema_migrations SET version = version - 1`); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"once", "run"} {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				p := &program{run: transfer.Run, env: f.cliEnv()}
				err := p.exec(ctx, cmd)
				cancel()
				if code := cli.ExitCode(err); code != 1 {
					t.Fatalf("%s: exit code %d (%v), want 1", cmd, code, err)
				}
				if msg := err.Error(); !strings.Contains(msg, side+" database") || !strings.Contains(msg, "older than this binary") {
					t.Errorf("%s: error %q does not say the %s schema is outdated", cmd, msg, side)
				}
			}
			if n := f.intakeCount(); n != 1 {
				t.Errorf("intake holds %d rows, want the row untouched", n)
			}
		})
	}
}

func TestHelpListsRunAndEverySetting(t *testing.T) {
	t.Parallel()
	p, err := runTransfer(t, map[string]string{}, "--help")
	if cli.ExitCode(err) != 0 {
		t.Fatalf("--help: %v", err)
	}
	help := p.stdout.String()
	if !regexp.MustCompile(`(?m)^  transfer run `).MatchString(help) {
		t.Errorf("--help does not list `transfer run` (deploy/dev/run.sh looks for it):\n%s", help)
	}
	for _, name := range []string{"INTAKE_DATABASE_URL", "CLINICAL_DATABASE_URL", "TRANSFER_KEYS", "TRANSFER_PASSPHRASE",
		"TRANSFER_ROW_KEYS", "TRANSFER_RETENTION", "TRANSFER_QUARANTINE_RETENTION", "TRANSFER_BATCH_SIZE",
		"TRANSFER_FORMS_DIR", "TRANSFER_SCHEDULE", "TRANSFER_METRICS_ADDR"} {
		if !strings.Contains(help, name) {
			t.Errorf("--help does not mention %s", name)
		}
	}
}
