package transfer_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

// TestWithdrawalDuringACrashedCarryTakesEffect: transfer put a result into
// intake and died before recording that in clinical, and a clinician
// withdrew the link in between. The next pass must take the link out of
// intake (and leave a tombstone, so it answers 410), not leave a withdrawn
// link live until it expires, and must not report it downloaded.
func TestWithdrawalDuringACrashedCarryTakesEffect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.submit("new-patient", newPatientAnswers, nil)
	if sum := f.pass(); sum.Moved != 1 {
		t.Fatalf("pass %+v, want 1 moved", sum)
	}
	hash := sha256.Sum256([]byte("a token this test never needs"))
	expires := time.Now().Add(time.Hour)
	var subID, resID int64
	if err := f.clinicalOwner.QueryRow(ctx, `SELECT id FROM submissions`).Scan(&subID); err != nil {
		t.Fatal(err)
	}
	if err := f.clinicalOwner.QueryRow(ctx, `INSERT INTO results (submission_id, token_hash, title, content_type,
  sealed_title, sealed, size, birth_date_required, published_by, published_at, expires_at, state_at)
VALUES ($1, $2, 'Blood test', 'application/pdf', '\x01', '\x02', 1, false, 'staff:1', now(), $3, now()) RETURNING id`,
		subID, hash[:], expires).Scan(&resID); err != nil {
		t.Fatal(err)
	}
	// The carry's INSERT into intake happened; its UPDATE of clinical did not.
	if _, err := f.intakeOwner.Exec(ctx, `INSERT INTO results (token_hash, sealed_title, sealed, size, birth_date_required, expires_at)
VALUES ($1, '\x01', '\x02', 1, false, $2)`, hash[:], expires); err != nil {
		t.Fatal(err)
	}

	secret, err := clinical.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	app := newPool(t, pgtest.URLAs(t, f.clinicalDB, "airlock_clinical_app"), nil)
	if err := clinical.NewResults(app, time.Now).Withdraw(ctx, subID, resID, "staff:1", clinical.NewAudit(app, secret)); err != nil {
		t.Fatal(err)
	}
	f.pass()
	f.pass()

	if n := countRows(t, f.intakeOwner, `SELECT count(*) FROM results WHERE token_hash = $1`, hash[:]); n != 0 {
		t.Errorf("the withdrawn link is still live in intake")
	}
	if n := countRows(t, f.intakeOwner, `SELECT count(*) FROM result_tombstones WHERE token_hash = $1 AND reason = 'withdrawn'`, hash[:]); n != 1 {
		t.Errorf("no withdrawn tombstone: the link would answer 404, not 410")
	}
	var state string
	if err := f.clinicalOwner.QueryRow(ctx, `SELECT state FROM results WHERE id = $1`, resID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != "withdrawn" {
		t.Errorf("clinical shows the result %q, want withdrawn", state)
	}
}
