package migrations_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// exec runs sql as the login and returns the SQLSTATE, or "" on success.
func exec(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return ""
}

const insufficientPrivilege = "42501"

type roleCase struct {
	sql  string
	want string // "" allowed, or the SQLSTATE
}

func runRoleCases(t *testing.T, url string, cases []roleCase) {
	t.Helper()
	for _, c := range cases {
		if got := exec(t, url, c.sql); got != c.want {
			t.Errorf("%s: got SQLSTATE %q, want %q", c.sql, got, c.want)
		}
	}
}

const insertSubmission = `INSERT INTO submissions (id, form_id, form_version, key_id, received_at, envelope, mac)
VALUES (gen_random_uuid(), 'f', '1', '0123456789abcdef', now(), '\x01', decode(repeat('00', 32), 'hex'))`

func TestIntakeWriterCanOnlyInsert(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "intake", migrations.Intake())
	exec(t, db, insertSubmission) // a row for the denials below to aim at
	url := pgtest.URLAs(t, db, "airlock_intake_writer")
	runRoleCases(t, url, []roleCase{
		{insertSubmission, ""},
		{`SELECT envelope FROM submissions`, insufficientPrivilege},
		{`SELECT count(*) FROM submissions`, insufficientPrivilege},
		{`UPDATE submissions SET envelope = '\x02'`, insufficientPrivilege},
		{`DELETE FROM submissions`, insufficientPrivilege},
		{`TRUNCATE submissions`, insufficientPrivilege},
		{insertSubmission + ` RETURNING envelope`, insufficientPrivilege},
		{`CREATE TABLE public.stash (x int)`, insufficientPrivilege},
	})
}

func TestIntakeTransferCannotInsertOrUpdate(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "intake", migrations.Intake())
	exec(t, db, insertSubmission)
	url := pgtest.URLAs(t, db, "airlock_intake_transfer")
	runRoleCases(t, url, []roleCase{
		{`SELECT envelope, mac FROM submissions`, ""},
		{insertSubmission, insufficientPrivilege},
		{`UPDATE submissions SET envelope = '\x02'`, insufficientPrivilege},
		{`TRUNCATE submissions`, insufficientPrivilege},
		{`DELETE FROM submissions`, ""},
	})
}

func TestClinicalAppAuditIsAppendOnly(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	exec(t, db, `INSERT INTO audit_log VALUES (nextval('audit_log_id_seq'), now(), 'a', 'b', '', '{}', '\\x', '\\x')`)
	url := pgtest.URLAs(t, db, "airlock_clinical_app")
	runRoleCases(t, url, []roleCase{
		{`SELECT * FROM audit_log`, ""},
		// Appends go through audit_next/audit_append (audit_roles_test.go).
		{`INSERT INTO audit_log VALUES (nextval('audit_log_id_seq'), now(), 'a', 'b', '', '{}', '\\x', '\\x')`, insufficientPrivilege},
		{`INSERT INTO audit_log (id, seq, at, actor, action, target, detail, prev_mac, mac) VALUES (9223372036854775807, 1, now(), 'a', 'b', '', '{}', '\\x', '\\x')`, insufficientPrivilege},
		{`SELECT nextval('audit_log_id_seq')`, insufficientPrivilege},
		{`UPDATE audit_log SET actor = 'x'`, insufficientPrivilege},
		{`DELETE FROM audit_log`, insufficientPrivilege},
		{`TRUNCATE audit_log`, insufficientPrivilege},
		{`SELECT * FROM quarantine`, insufficientPrivilege},
		{`UPDATE submissions SET answers = '{}'`, insufficientPrivilege},
		{`DELETE FROM submissions`, insufficientPrivilege},
	})
}

func TestClinicalTransferCannotTouchAudit(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	url := pgtest.URLAs(t, db, "airlock_clinical_transfer")
	runRoleCases(t, url, []roleCase{
		{`SELECT intake_id, succession FROM submissions`, ""},
		{`SELECT answers FROM submissions`, insufficientPrivilege},
		{`SELECT * FROM audit_log`, insufficientPrivilege},
		{`INSERT INTO audit_log VALUES (1, now(), 'a', 'b', '', '{}', '\\x', '\\x')`, insufficientPrivilege},
		{`UPDATE submissions SET status = 'done'`, insufficientPrivilege},
		{`DELETE FROM submissions`, insufficientPrivilege},
		{`SELECT * FROM quarantine`, ""},
	})
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	for name, set := range map[string]func() fs.FS{"intake": migrations.Intake, "clinical": migrations.Clinical} {
		db := pgtest.NewDB(t, name, set())
		for range 2 {
			v, err := pg.Migrate(db, set())
			if err != nil {
				t.Fatalf("%s: migrate again: %v", name, err)
			}
			want, _ := pg.LatestVersion(set())
			if v != want {
				t.Fatalf("%s: version %d, want %d", name, v, want)
			}
		}
	}
}

func TestClinicalAppStaffTablesGrants(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	exec(t, db, `INSERT INTO staff (email, roles, status, password_hash, totp_secret_enc) VALUES ('a@b.c', '{admin}', 'active', 'h', '\x00')`)
	exec(t, db, `INSERT INTO submissions (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers)
VALUES (gen_random_uuid(), 1, 'R', 'f', '1', 'k', now(), now(), '{"n":[{"valueString":"Jane"}]}')`)
	url := pgtest.URLAs(t, db, "airlock_clinical_app")
	runRoleCases(t, url, []roleCase{
		{`SELECT * FROM staff`, ""},
		{`INSERT INTO staff (email, roles, status, password_hash, totp_secret_enc) VALUES ('x@b.c', '{viewer}', 'pending', 'h', '\x00')`, ""},
		{`UPDATE staff SET status = 'disabled', roles = '{viewer}' WHERE email = 'x@b.c'`, ""},
		{`UPDATE staff SET email = 'evil@b.c'`, insufficientPrivilege},
		{`UPDATE staff SET created_at = now()`, insufficientPrivilege},
		{`DELETE FROM staff`, insufficientPrivilege},
		{`TRUNCATE staff`, insufficientPrivilege},
		{`INSERT INTO staff_sessions VALUES (sha256('t'), 1, 'full', now(), now())`, ""},
		{`UPDATE staff_sessions SET last_seen_at = now()`, ""},
		{`UPDATE staff_sessions SET created_at = now()`, insufficientPrivilege},
		{`UPDATE staff_sessions SET stage = 'full'`, insufficientPrivilege},
		{`DELETE FROM staff_sessions`, ""},
		{`INSERT INTO login_failures (account_key, addr_key) VALUES ('\x01', '\x02')`, ""},
		{`DELETE FROM login_failures`, ""},
		{`INSERT INTO submission_notes (submission_id, staff_id, body) VALUES (1, 1, 'n')`, ""},
		{`UPDATE submission_notes SET body = 'x'`, insufficientPrivilege},
		{`DELETE FROM submission_notes`, insufficientPrivilege},
		{`UPDATE submissions SET status = 'in_review', status_changed_at = now()`, ""},
		{`UPDATE submissions SET superseded_by = NULL, correction_accepted_at = NULL, correction_accepted_by = NULL`, ""},
		{`UPDATE submissions SET receipt = 'X'`, insufficientPrivilege},
		{`DELETE FROM submissions`, insufficientPrivilege},
		// Erasure and retention go only through their functions, and only
		// with their audit entry (audit_roles_test.go).
		{`SELECT * FROM retention_delete_audited()`, insufficientPrivilege},
		{`SELECT erase_submission(1)`, insufficientPrivilege},
		// The audit log is still append-only.
		{`UPDATE audit_log SET actor = 'x'`, insufficientPrivilege},
		{`DELETE FROM audit_log`, insufficientPrivilege},
	})
}

func TestClinicalTransferCannotTouchStaffTables(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	url := pgtest.URLAs(t, db, "airlock_clinical_transfer")
	runRoleCases(t, url, []roleCase{
		{`SELECT * FROM staff`, insufficientPrivilege},
		{`INSERT INTO staff (email, roles, status, password_hash, totp_secret_enc) VALUES ('x@b.c', '{admin}', 'active', 'h', '\x00')`, insufficientPrivilege},
		{`UPDATE staff SET status = 'active'`, insufficientPrivilege},
		{`SELECT * FROM staff_sessions`, insufficientPrivilege},
		{`INSERT INTO staff_sessions VALUES (sha256('t'), 1, 'full', now(), now())`, insufficientPrivilege},
		{`SELECT * FROM login_failures`, insufficientPrivilege},
		{`DELETE FROM login_failures`, insufficientPrivilege},
		{`SELECT * FROM submission_notes`, insufficientPrivilege},
		{`INSERT INTO submission_notes (submission_id, staff_id, body) VALUES (1, 1, 'n')`, insufficientPrivilege},
		{`SELECT erase_submission(1)`, insufficientPrivilege},
		{`SELECT * FROM retention_delete_audited()`, insufficientPrivilege},
		{`SELECT * FROM audit_next()`, insufficientPrivilege},
		{`SELECT search FROM submissions`, insufficientPrivilege},
	})
}

// Migration 000010: the worker may mark supersession and delete quarantined
// rows past their retention, and nothing more than that.
func TestClinicalTransferOpsGrants(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	exec(t, db, `INSERT INTO submissions (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers)
VALUES (gen_random_uuid(), 1, 'R1', 'f', '1', 'k', now(), now(), '{}'), (gen_random_uuid(), 2, 'R2', 'f', '1', 'k', now(), now(), '{}')`)
	exec(t, db, `INSERT INTO quarantine (digest, reason, intake_seq, intake_id, form_id, form_version, key_id, received_at, envelope, mac)
VALUES ('\x01', 'mac', 1, gen_random_uuid(), 'f', '1', 'k', now(), '\x01', '\x02')`)
	exec(t, db, `INSERT INTO transfer_passes (started_at, finished_at, moved, quarantined, duplicates, expired, unknown_key)
VALUES (now(), now(), 1, 0, 0, 0, 0)`)
	url := pgtest.URLAs(t, db, "airlock_clinical_transfer")
	runRoleCases(t, url, []roleCase{
		{`SELECT id, receipt, form_id, superseded_by, corrects_receipt, submitted_at, corrects_id, correction_verified FROM submissions`, ""},
		// Migration 000030: it links corrections; only a clinician's acceptance supersedes.
		{`UPDATE submissions SET corrects_id = (SELECT id FROM submissions WHERE receipt = 'R1'), correction_verified = true WHERE receipt = 'R2'`, ""},
		{`UPDATE submissions SET superseded_by = NULL`, insufficientPrivilege},
		{`UPDATE submissions SET correction_accepted_at = now()`, insufficientPrivilege},
		{`INSERT INTO correction_codes (submission_id, code_hash) SELECT id, sha256('c') FROM submissions WHERE receipt = 'R1'`, ""},
		{`SELECT submission_id, code_hash, corrects_code_hash FROM correction_codes`, ""},
		{`UPDATE correction_codes SET code_hash = sha256('x')`, insufficientPrivilege},
		{`DELETE FROM correction_codes`, insufficientPrivilege},
		{`DELETE FROM quarantine WHERE quarantined_at < now() - interval '1 day'`, ""},
		{`SELECT answers FROM submissions`, insufficientPrivilege},
		{`SELECT status FROM submissions`, insufficientPrivilege},
		{`UPDATE submissions SET answers = '{}'`, insufficientPrivilege},
		{`UPDATE submissions SET receipt = 'X'`, insufficientPrivilege},
		{`UPDATE submissions SET corrects_receipt = 'R2'`, insufficientPrivilege},
		{`UPDATE submissions SET status = 'archived'`, insufficientPrivilege},
		{`UPDATE submissions SET succession = 9`, insufficientPrivilege},
		{`DELETE FROM submissions`, insufficientPrivilege},
		{`TRUNCATE submissions`, insufficientPrivilege},
		{`UPDATE quarantine SET reason = 'x'`, insufficientPrivilege},
		{`TRUNCATE quarantine`, insufficientPrivilege},
		{`UPDATE transfer_passes SET expired = 0`, insufficientPrivilege},
		{`DELETE FROM transfer_passes`, insufficientPrivilege},
		{`TRUNCATE transfer_passes`, insufficientPrivilege},
		{`DELETE FROM quarantine`, ""},
	})
}

// The staff app reads the correction columns and sets supersession when a
// clinician accepts a correction, but it cannot link a correction (only
// transfer verifies the code) and cannot read the code hashes at all.
func TestClinicalAppCannotLinkCorrectionsOrReadCodes(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	url := pgtest.URLAs(t, db, "airlock_clinical_app")
	runRoleCases(t, url, []roleCase{
		{`SELECT superseded_by, superseded_at, corrects_receipt, corrects_id, correction_verified, correction_accepted_at FROM submissions`, ""},
		{`UPDATE submissions SET superseded_at = now()`, ""},
		{`UPDATE submissions SET corrects_receipt = 'X'`, insufficientPrivilege},
		{`UPDATE submissions SET corrects_id = NULL`, insufficientPrivilege},
		{`UPDATE submissions SET correction_verified = true`, insufficientPrivilege},
		{`SELECT * FROM correction_codes`, insufficientPrivilege},
		{`SELECT code_hash FROM correction_codes`, insufficientPrivilege},
		{`INSERT INTO correction_codes (submission_id) VALUES (1)`, insufficientPrivilege},
		{`DELETE FROM quarantine`, insufficientPrivilege},
	})
}

// The record of delivered ids outlives erasure: the worker may only add to
// it, the app may not touch it, and erasing a submission keeps its id.
func TestDeliveredIdsOutliveErasure(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	exec(t, db, `INSERT INTO submissions (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers)
VALUES ('00000000-0000-4000-8000-000000000001', 1, 'R1', 'f', '1', 'k', now(), now(), '{}')`)
	exec(t, db, `INSERT INTO delivered (intake_id) VALUES ('00000000-0000-4000-8000-000000000001')`)
	transfer := pgtest.URLAs(t, db, "airlock_clinical_transfer")
	runRoleCases(t, transfer, []roleCase{
		{`SELECT intake_id FROM delivered`, ""},
		{`INSERT INTO delivered (intake_id) VALUES (gen_random_uuid())`, ""},
		{`DELETE FROM delivered`, insufficientPrivilege},
		{`UPDATE delivered SET delivered_at = now()`, insufficientPrivilege},
		{`TRUNCATE delivered`, insufficientPrivilege},
	})
	app := pgtest.URLAs(t, db, "airlock_clinical_app")
	runRoleCases(t, app, []roleCase{
		{auditedErase(`(SELECT id FROM submissions WHERE receipt = 'R1')`), ""},
		{`SELECT intake_id FROM delivered`, insufficientPrivilege},
		{`DELETE FROM delivered`, insufficientPrivilege},
	})
	if got := exec(t, db, `DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM delivered WHERE intake_id = '00000000-0000-4000-8000-000000000001') THEN
    RAISE EXCEPTION 'erasure removed the delivered id';
  END IF;
END $$`); got != "" {
		t.Fatalf("the delivered id is gone after erasure (SQLSTATE %s)", got)
	}
}
