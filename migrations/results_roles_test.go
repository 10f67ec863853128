package migrations_test

import (
	"testing"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

const insertResult = `INSERT INTO results (token_hash, sealed_title, sealed, size, birth_date_required, expires_at)
VALUES (decode(repeat('ab', 32), 'hex'), '\x01', '\x02', 1, false, now() + interval '1 day')`

const insertTombstone = `INSERT INTO result_tombstones (token_hash, reason) VALUES (decode(repeat('cd', 32), 'hex'), 'downloaded')`

// The public server's writer role reaches no result: a compromised form
// handler can neither read nor remove what the clinic sent back.
func TestIntakeWriterDeniedOnResults(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "intake", migrations.Intake())
	exec(t, db, insertResult)
	url := pgtest.URLAs(t, db, "airlock_intake_writer")
	runRoleCases(t, url, []roleCase{
		{`SELECT sealed FROM results`, insufficientPrivilege},
		{`SELECT count(*) FROM results`, insufficientPrivilege},
		{`DELETE FROM results`, insufficientPrivilege},
		{`UPDATE results SET failures = 0`, insufficientPrivilege},
		{insertResult, insufficientPrivilege},
		{`SELECT * FROM result_tombstones`, insufficientPrivilege},
		{insertTombstone, insufficientPrivilege},
	})
}

// airlock_intake_results reads a result by its hash, counts wrong answers and
// consumes it; it cannot add or alter a result, and has nothing on submissions.
func TestIntakeResultsRoleGrants(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "intake", migrations.Intake())
	exec(t, db, insertResult)
	exec(t, db, insertSubmission)
	url := pgtest.URLAs(t, db, "airlock_intake_results")
	runRoleCases(t, url, []roleCase{
		{`SELECT sealed_title, birth_date_required, expires_at FROM results WHERE token_hash = decode(repeat('ab', 32), 'hex')`, ""},
		{`UPDATE results SET failures = failures + 1 WHERE token_hash = decode(repeat('ab', 32), 'hex')`, ""},
		{`UPDATE results SET expires_at = now() + interval '1 year'`, insufficientPrivilege},
		{`UPDATE results SET sealed = '\x03'`, insufficientPrivilege},
		{insertResult, insufficientPrivilege},
		{insertTombstone, ""},
		{`DELETE FROM result_tombstones`, insufficientPrivilege},
		{`DELETE FROM results WHERE token_hash = decode(repeat('ab', 32), 'hex') RETURNING sealed`, ""},
		{`SELECT id FROM submissions`, insufficientPrivilege},
		{insertSubmission, insufficientPrivilege},
		{`DELETE FROM submissions`, insufficientPrivilege},
	})
}

// The worker carries, expires and withdraws results, but never reads the
// sealed bytes back out of intake or changes a stored one.
func TestIntakeTransferResultsGrants(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "intake", migrations.Intake())
	url := pgtest.URLAs(t, db, "airlock_intake_transfer")
	runRoleCases(t, url, []roleCase{
		{insertResult, ""},
		{`SELECT token_hash, expires_at FROM results`, ""},
		{`SELECT sealed FROM results`, insufficientPrivilege},
		{`UPDATE results SET failures = 0`, insufficientPrivilege},
		{`DELETE FROM results WHERE expires_at < now() RETURNING token_hash`, ""},
		{insertTombstone, ""},
		{`SELECT reason FROM result_tombstones`, ""},
		{`DELETE FROM result_tombstones WHERE at < now() - interval '90 days'`, ""},
	})
}

func TestClinicalResultsGrants(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	app := pgtest.URLAs(t, db, "airlock_clinical_app")
	runRoleCases(t, app, []roleCase{
		{`SELECT title, state FROM results`, ""},
		{`UPDATE results SET state = 'withdrawn'`, ""},
		{`UPDATE results SET token_hash = '\x00'`, insufficientPrivilege},
		{`DELETE FROM results`, insufficientPrivilege},
	})
	tr := pgtest.URLAs(t, db, "airlock_clinical_transfer")
	runRoleCases(t, tr, []roleCase{
		{`SELECT id, token_hash, sealed_title, sealed, size, birth_date_required, expires_at, state, in_intake FROM results`, ""},
		{`SELECT title FROM results`, insufficientPrivilege},
		{`SELECT content_type FROM results`, insufficientPrivilege},
		{`UPDATE results SET state = 'delivered', in_intake = true, sealed = NULL`, ""},
		{`UPDATE results SET expires_at = now()`, insufficientPrivilege},
		{`DELETE FROM results`, insufficientPrivilege},
	})
}
