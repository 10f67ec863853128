package transfer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

// Issue 10, finding 11: any intake login, the writer included, can NOTIFY
// the wake-up channel. A flood of empty wake-ups must neither run a pass for
// each (they coalesce and back off while passes find nothing) nor write a
// transfer_passes row for passes that did nothing; a real row still moves.
func TestNotifySpamIsRateLimitedAndNotRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := startWorker(t, with(f.cliEnv(), map[string]string{"TRANSFER_SCHEDULE": "@every 1h"}))
	w.waitLog("pass finished", 1, 20*time.Second) // the start-up pass
	writer := newPool(t, pgtest.URLAs(t, f.intakeDB, "airlock_intake_writer"), nil)
	const spam = 3 * time.Second
	sent := 0
	for start := time.Now(); time.Since(start) < spam; sent++ {
		if _, err := writer.Exec(context.Background(), `NOTIFY airlock_submission`); err != nil {
			t.Fatalf("NOTIFY as the writer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // the wake-up coalesced during the last wait runs
	passes := strings.Count(w.p.stderr.String(), `"msg":"pass finished"`)
	// Waits of 0.2, 0.4, 0.8 and 1.6 s fill the 3 s of spam: at most five
	// passes in it, one after it and two at start-up, however fast the
	// machine. Without the limit a pass runs every 0.2 s (15 or more).
	if passes > 8 {
		t.Errorf("%d NOTIFYs in %v ran %d passes, want at most 8", sent, spam, passes)
	}
	if n := countRows(t, f.clinicalOwner, `SELECT count(*) FROM transfer_passes`); n != 0 {
		t.Errorf("%d passes that did nothing were recorded in transfer_passes", n)
	}
	// The worker's liveness is still visible to `transfer status`.
	if n := countRows(t, f.clinicalOwner, `SELECT count(*) FROM transfer_heartbeat`); n != 1 {
		t.Errorf("no heartbeat after idle passes")
	}

	s := f.submit("symptoms", symptomsAnswers, nil)
	waitFor(t, 30*time.Second, func() bool {
		_, ok := f.clinicalRows()[s.SubmissionID]
		return ok
	}, "a real submission after the spam to reach clinical")
	waitFor(t, 10*time.Second, func() bool {
		return countRows(t, f.clinicalOwner, `SELECT count(*) FROM transfer_passes WHERE moved = 1`) == 1
	}, "the pass that moved it to be recorded")
	t.Logf("%d NOTIFYs in %v: %d passes", sent, spam, passes)
}
