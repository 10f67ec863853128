package transfer_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/intake"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/airlockhq/airlock/transfer"
)

// onQuery runs do (once) when a statement starting with prefix is about to
// be sent, on the connection that will send it.
type onQuery struct {
	prefix string
	do     func(ctx context.Context, conn *pgx.Conn)
	fired  atomic.Bool
}

func (o *onQuery) TraceQueryStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(d.SQL)), o.prefix) && o.fired.CompareAndSwap(false, true) {
		o.do(ctx, conn)
	}
	return ctx
}

func (o *onQuery) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// passOutcomes reads the outcome column of the operations log, in order.
func (f *fixture) passOutcomes() []string {
	f.t.Helper()
	rows, err := f.clinicalOwner.Query(context.Background(), `SELECT outcome FROM transfer_passes ORDER BY id`)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// SIGTERM (the context ending) in the middle of a batch: the batch finishes,
// clinical commit and intake delete both, and the pass stops after it.
func TestPassFinishesTheBatchInFlightWhenCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var rows []*submitted
	for range 6 {
		rows = append(rows, f.submit("symptoms", symptomsAnswers, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The shutdown arrives as the first batch is being written to clinical.
	stopping := f.newMover(nil, &onQuery{prefix: "insert into submissions", do: func(context.Context, *pgx.Conn) { cancel() }})
	stopping.BatchSize = 2
	sum, err := stopping.Pass(ctx)
	if !errors.Is(err, context.Canceled) || !sum.Interrupted {
		t.Fatalf("pass returned %v (summary %+v), want it interrupted by the cancellation", err, sum)
	}
	if sum.Moved != 2 {
		t.Fatalf("summary %+v, want the batch in flight (2 rows) moved", sum)
	}
	got := f.clinicalRows()
	if len(got) != 2 || f.intakeCount() != 4 {
		t.Fatalf("clinical holds %d, intake %d; want the first batch moved and deleted, the rest waiting", len(got), f.intakeCount())
	}
	for _, s := range rows[:2] {
		if _, ok := got[s.SubmissionID]; !ok {
			t.Errorf("seq %d of the batch in flight not delivered", s.seq)
		}
	}
	if o := f.passOutcomes(); len(o) != 1 || o[0] != "interrupted" {
		t.Errorf("operations log outcomes %v, want [interrupted]", o)
	}
	st, err := transfer.ReadStatus(context.Background(), f.mover.Intake, f.mover.Clinical, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastPassAt != nil {
		t.Errorf("last_pass_at %v after an interrupted pass only, want null", st.LastPassAt)
	}
	if sum := f.pass(); sum.Moved != 4 || sum.Duplicates != 0 {
		t.Fatalf("next pass %+v, want the other 4 moved", sum)
	}
	if len(f.clinicalRows()) != 6 || f.intakeCount() != 0 {
		t.Fatalf("not every row moved exactly once")
	}
}

// terminateBackend ends the server process behind conn, as a database
// restart, failover or network cut would, and waits until it is gone.
func terminateBackend(t *testing.T, admin *pgxpool.Pool, conn *pgx.Conn) {
	ctx := context.Background()
	pid := conn.PgConn().PID()
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Errorf("terminate backend %d: %v", pid, err)
		return
	}
	for range 200 {
		var alive bool
		if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, pid).Scan(&alive); err != nil || !alive {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("backend %d still alive", pid)
}

// A database that goes away mid-pass: the pass fails naming the database,
// nothing is lost or delivered twice, and the next pass of the same worker
// (its pools reconnect) carries on.
func TestPassSurvivesADatabaseGoingAwayMidPass(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		side     string // "intake" or "clinical"
		prefix   string
		naming   string
		moved    bool // whether the first batch reached clinical
		leftRows int
	}{
		{"intake while reading", "intake", "select seq", "intake database", false, 4},
		{"clinical while inserting", "clinical", "insert into submissions", "clinical database", false, 4},
		{"clinical at commit", "clinical", "commit", "clinical database", false, 4},
		{"intake after the clinical commit, before the delete", "intake", "delete from submissions where seq", "intake database", true, 4},
		{"clinical while recording the pass", "clinical", "insert into transfer_passes", "clinical database", true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var rows []*submitted
			for range 4 {
				rows = append(rows, f.submit("new-patient", newPatientAnswers, nil))
			}
			admin := f.intakeOwner
			if c.side == "clinical" {
				admin = f.clinicalOwner
			}
			kill := &onQuery{prefix: c.prefix, do: func(_ context.Context, conn *pgx.Conn) { terminateBackend(t, admin, conn) }}
			var m *transfer.Mover
			if c.side == "intake" {
				m = f.newMover(kill, nil)
			} else {
				m = f.newMover(nil, kill)
			}
			m.BatchSize = 10
			_, err := m.Pass(context.Background())
			if err == nil || !kill.fired.Load() {
				t.Fatalf("pass returned %v with the %s backend killed (fired %v), want an error", err, c.side, kill.fired.Load())
			}
			if !strings.Contains(err.Error(), c.naming) {
				t.Errorf("error %q does not name the %s", err, c.naming)
			}
			if got := len(f.clinicalRows()) > 0; got != c.moved {
				t.Errorf("clinical holds rows after the failure: %v, want %v", got, c.moved)
			}
			if n := f.intakeCount(); n != c.leftRows {
				t.Errorf("intake holds %d rows after the failure, want %d", n, c.leftRows)
			}
			// The same worker's next pass: the pools replace the dead connection.
			sum, err := m.Pass(context.Background())
			if err != nil {
				t.Fatalf("next pass: %v", err)
			}
			got := f.clinicalRows()
			for _, s := range rows {
				if d, ok := got[s.SubmissionID]; !ok || d.succession != s.seq {
					t.Errorf("seq %d not delivered exactly once", s.seq)
				}
			}
			if len(got) != len(rows) || f.intakeCount() != 0 || len(f.quarantined()) != 0 {
				t.Errorf("after the next pass (%+v): clinical %d, intake %d, quarantine %d; want 4, 0, 0",
					sum, len(got), f.intakeCount(), len(f.quarantined()))
			}
		})
	}
}

func TestPassDeletesQuarantinedRowsPastTheirRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.mover.QuarantineRetention = transfer.DefaultQuarantineRetention
	for range 3 {
		s := f.submit("symptoms", symptomsAnswers, nil)
		f.ownerExec(`UPDATE submissions SET form_version = '9' WHERE id = $1::uuid`, s.SubmissionID)
	}
	if sum := f.pass(); sum.Quarantined != 3 || sum.QuarantineExpired != 0 {
		t.Fatalf("first pass %+v, want 3 quarantined", sum)
	}
	// Two were quarantined long ago.
	if _, err := f.clinicalOwner.Exec(ctx, `UPDATE quarantine SET quarantined_at = now() - interval '2161 hours'
WHERE id IN (SELECT id FROM quarantine ORDER BY id LIMIT 2)`); err != nil {
		t.Fatal(err)
	}
	if sum := f.pass(); sum.QuarantineExpired != 2 {
		t.Fatalf("second pass %+v, want 2 quarantined rows expired", sum)
	}
	if n := len(f.quarantined()); n != 1 {
		t.Errorf("quarantine holds %d rows, want 1", n)
	}
	st, err := transfer.ReadStatus(ctx, f.mover.Intake, f.mover.Clinical, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Quarantined != 1 || st.QuarantineExpiredTotal != 2 {
		t.Errorf("status quarantined %d, quarantine_expired_total %d; want 1 and 2", st.Quarantined, st.QuarantineExpiredTotal)
	}
	if n := countRows(t, f.clinicalOwner, `SELECT count(*) FROM transfer_passes WHERE quarantine_expired = 2 AND outcome = 'ok'`); n != 1 {
		t.Errorf("%d pass records with quarantine_expired = 2, want 1", n)
	}
	// Zero keeps quarantined rows for good.
	f.mover.QuarantineRetention = 0
	if _, err := f.clinicalOwner.Exec(ctx, `UPDATE quarantine SET quarantined_at = now() - interval '100000 hours'`); err != nil {
		t.Fatal(err)
	}
	if sum := f.pass(); sum.QuarantineExpired != 0 || len(f.quarantined()) != 1 {
		t.Errorf("pass with no quarantine retention %+v, want nothing deleted", sum)
	}
}

// A row whose checks panic (a bug some odd row meets) stays pending and
// counted; the rows around it move.
func TestPassLeavesARowWhoseChecksPanicPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	broken, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	before := f.submit("symptoms", symptomsAnswers, nil)
	poisoned := f.submit("symptoms", symptomsAnswers, &intake.Sealer{Recipient: broken.Public, RowKey: f.rowKey, Now: time.Now})
	after := f.submit("symptoms", symptomsAnswers, nil)
	f.mover.Keys[broken.Public.ID] = nil // opening under this key panics
	sum := f.pass()
	if sum.Moved != 2 || sum.Failed != 1 || sum.Quarantined != 0 {
		t.Fatalf("summary %+v, want 2 moved and 1 failed", sum)
	}
	got := f.clinicalRows()
	if _, ok := got[before.SubmissionID]; !ok {
		t.Error("the row before the poisoned one was not moved")
	}
	if _, ok := got[after.SubmissionID]; !ok {
		t.Error("the row after the poisoned one was not moved")
	}
	if n := f.intakeCount(); n != 1 {
		t.Fatalf("intake holds %d rows, want the poisoned one", n)
	}
	if !strings.Contains(f.log.String(), `"seq":`+strconv.FormatInt(poisoned.seq, 10)) {
		t.Errorf("the log does not name the poisoned row's seq:\n%s", f.log.String())
	}
	// Fixed (the key is good now), it moves.
	f.mover.Keys[broken.Public.ID] = broken
	if sum := f.pass(); sum.Moved != 1 || sum.Failed != 0 {
		t.Fatalf("pass after the fix %+v", sum)
	}
}

// Rows past retention are never moved, even when the expiry step fails: the
// pass reports the failure, moves the fresh rows and leaves the stale one
// for the next pass to expire.
func TestPassNeverMovesAStaleRowWhenExpiryFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stale := f.submit("symptoms", symptomsAnswers, &intake.Sealer{Recipient: f.key.Public, RowKey: f.rowKey,
		Now: func() time.Time { return time.Now().Add(-721 * time.Hour) }})
	fresh := f.submit("symptoms", symptomsAnswers, nil)
	failing := f.newMover(&crashAt{prefix: "with stale"}, nil)
	sum, err := failing.Pass(context.Background())
	if err == nil || !strings.Contains(err.Error(), "expire") {
		t.Fatalf("pass returned %v, want the failed expiry reported", err)
	}
	if sum.Moved != 1 || sum.Expired != 0 {
		t.Fatalf("summary %+v, want the fresh row moved and nothing expired", sum)
	}
	got := f.clinicalRows()
	if _, ok := got[stale.SubmissionID]; ok {
		t.Fatal("a row past retention was moved")
	}
	if _, ok := got[fresh.SubmissionID]; !ok {
		t.Fatal("the fresh row was not moved")
	}
	if o := f.passOutcomes(); len(o) != 1 || o[0] != "failed" {
		t.Errorf("operations log outcomes %v, want [failed]", o)
	}
	if sum := f.pass(); sum.Expired != 1 || sum.Moved != 0 {
		t.Fatalf("next pass %+v, want the stale row expired", sum)
	}
	if n := f.intakeCount(); n != 0 {
		t.Errorf("intake holds %d rows", n)
	}
}

// TestPassPrunesTheLogOfOrdinaryPasses: the log of passes that only moved
// rows is pruned past the quarantine retention (passes follow each other
// under a steady load, about ten rows a second at 500 submissions/s), while
// failed passes, quarantines and expiries stay; transfer's login can delete
// from the log only through prune_transfer_passes, which never takes
// anything younger than 30 days.
func TestPassPrunesTheLogOfOrdinaryPasses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.mover.QuarantineRetention = transfer.DefaultQuarantineRetention
	if _, err := f.clinicalOwner.Exec(ctx, `INSERT INTO transfer_passes
  (started_at, finished_at, moved, quarantined, duplicates, expired, unknown_key, unknown_form, superseded, quarantine_expired, outcome) VALUES
  (now() - interval '100 days', now() - interval '100 days', 5, 0, 0, 0, 0, 0, 0, 0, 'ok'),
  (now() - interval '100 days', now() - interval '100 days', 7, 0, 0, 0, 0, 0, 0, 0, 'ok'),
  (now() - interval '100 days', now() - interval '100 days', 1, 0, 0, 0, 0, 0, 0, 0, 'failed'),
  (now() - interval '100 days', now() - interval '100 days', 0, 1, 0, 0, 0, 0, 0, 0, 'ok'),
  (now() - interval '100 days', now() - interval '100 days', 0, 0, 0, 3, 0, 0, 0, 0, 'ok'),
  (now() - interval '20 days', now() - interval '20 days', 2, 0, 0, 0, 0, 0, 0, 0, 'ok')`); err != nil {
		t.Fatal(err)
	}
	f.submit("symptoms", symptomsAnswers, nil)
	if sum := f.pass(); sum.Moved != 1 {
		t.Fatalf("pass %+v, want 1 moved", sum)
	}
	var left []string
	rows, err := f.clinicalOwner.Query(ctx, `SELECT outcome || ':' || moved || ':' || quarantined || ':' || expired FROM transfer_passes ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		left = append(left, s)
	}
	if got := strings.Join(left, " "); got != "failed:1:0:0 ok:0:1:0 ok:0:0:3 ok:2:0:0 ok:1:0:0" {
		t.Errorf("passes left: %s; want the old ordinary ones (moved 5, 7) pruned and the rest kept", got)
	}
	// The login itself cannot delete from the log, nor prune younger rows.
	worker, err := pgx.Connect(ctx, pgtest.URLAs(t, f.clinicalDB, "airlock_clinical_transfer"))
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close(ctx)
	if _, err := worker.Exec(ctx, `DELETE FROM transfer_passes`); err == nil {
		t.Error("transfer's login deleted from transfer_passes directly")
	}
	var n int64
	if err := worker.QueryRow(ctx, `SELECT prune_transfer_passes(interval '1 second')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("prune with a 1-second retention: %d rows, %v; want none (30 days at least)", n, err)
	}
}
