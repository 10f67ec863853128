package migrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

const checkViolation = "23514"

// appendAs is a DO block that appends one audit entry the way the app does
// (audit_next, then audit_append with what it returned), with tweak
// applied to the arguments (a PL/pgSQL expression list prefix such as
// "n.next_id + 1000000, n.next_seq"); "" appends honestly.
func appendAs(action, target, idSeq, prev string) string {
	if idSeq == "" {
		idSeq = "n.next_id, n.next_seq"
	}
	if prev == "" {
		prev = "n.prev_mac"
	}
	return fmt.Sprintf(`DO $$ DECLARE n record; BEGIN
  SELECT * INTO n FROM audit_next();
  PERFORM audit_append(%s, now(), 'staff:1', '%s', '%s', '{}', %s, decode(repeat('ab', 32), 'hex'));
END $$`, idSeq, action, target, prev)
}

// TestClinicalAppAppendsOnlyThroughAuditFunctions: the app's login appends
// through audit_next/audit_append, which fix the entry's id, number and
// previous MAC; it cannot insert a row of its choosing (one with a huge id
// wedged every later append).
func TestClinicalAppAppendsOnlyThroughAuditFunctions(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	url := pgtest.URLAs(t, db, "airlock_clinical_app")
	runRoleCases(t, url, []roleCase{
		{appendAs("view", "", "", ""), ""},
		{appendAs("view", "", "", ""), ""},
		{appendAs("view", "", "9223372036854775807, n.next_seq", ""), checkViolation},
		{appendAs("view", "", "n.next_id - 1, n.next_seq", ""), checkViolation},
		{appendAs("view", "", "n.next_id, n.next_seq + 1", ""), checkViolation},
		{appendAs("view", "", "n.next_id, 1", ""), checkViolation},
		{appendAs("view", "", "", "decode(repeat('00', 32), 'hex')"), checkViolation},
		{`SELECT audit_append(9223372036854775807, 3, now(), 'a', 'b', '', '{}', '\x00', '\x00')`, checkViolation},
		{appendAs("view", "", "", ""), ""},
	})
	var got string
	if err := queryOwner(t, db, `SELECT string_agg(seq::text, ',' ORDER BY id) FROM audit_log`, &got); err != nil {
		t.Fatal(err)
	}
	if got != "1,2,3" {
		t.Errorf("entries numbered %q, want 1,2,3", got)
	}
}

// TestClinicalDeletionFunctionsNeedTheirAuditEntry: erase_submission and
// retention_delete_audited delete nothing unless the same transaction has
// just appended the audit entry that records exactly that deletion.
func TestClinicalDeletionFunctionsNeedTheirAuditEntry(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, "clinical", migrations.Clinical())
	for i := 1; i <= 4; i++ {
		exec(t, db, fmt.Sprintf(`INSERT INTO submissions (id, intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers, status)
VALUES (%d, gen_random_uuid(), %d, 'R%d', 'f', '1', 'k', now(), now() - interval '400 days', '{}', 'done')`, i, i, i))
	}
	url := pgtest.URLAs(t, db, "airlock_clinical_app")
	erase := func(audit string, id int) string {
		return fmt.Sprintf(`DO $$ BEGIN %s IF NOT erase_submission(%d) THEN RAISE EXCEPTION 'nothing erased'; END IF; END $$`, audit, id)
	}
	entry := func(action, target, detail string) string {
		return fmt.Sprintf(`DECLARE_ME PERFORM audit_append(n.next_id, n.next_seq, now(), 'staff:1', '%s', '%s', '%s', n.prev_mac, decode(repeat('ab', 32), 'hex'));`,
			action, target, detail)
	}
	withEntry := func(body, audit string) string {
		// audit holds DECLARE_ME where audit_next's row is read.
		return fmt.Sprintf(`DO $$ DECLARE n record; BEGIN %s %s END $$`,
			strings.ReplaceAll(audit, "DECLARE_ME", "SELECT * INTO n FROM audit_next();"), body)
	}
	retention := `PERFORM count(*) FROM retention_delete_audited();`
	cutoff := `2100-01-01T00:00:00Z`
	runRoleCases(t, url, []roleCase{
		{erase("", 1), insufficientPrivilege},
		{withEntry(`PERFORM erase_submission(1);`, entry("submission.erase", "submission:2", "{}")), insufficientPrivilege},
		{withEntry(`PERFORM erase_submission(1);`, entry("submission.view", "submission:1", "{}")), insufficientPrivilege},
		// The entry must be the newest: one appended before another is not enough.
		{withEntry(`PERFORM erase_submission(1);`, entry("submission.erase", "submission:1", "{}")+" "+entry("view", "", "{}")), insufficientPrivilege},
		{withEntry(`IF NOT erase_submission(1) THEN RAISE EXCEPTION 'nothing erased'; END IF;`, entry("submission.erase", "submission:1", "{}")), ""},
		{`SELECT * FROM retention_delete_audited()`, insufficientPrivilege},
		{`SELECT retention_delete_done(now(), 10)`, "42883"}, // the old unaudited form is gone
		{withEntry(retention, entry("retention.delete", "", `{"cutoff":"`+cutoff+`","ids":[2]}`)+" "+entry("view", "", "{}")), insufficientPrivilege},
		// An id that is not due: nothing at all is deleted.
		{withEntry(retention, entry("retention.delete", "", `{"cutoff":"2000-01-01T00:00:00Z","ids":[2,3]}`)), "40001"},
		{withEntry(retention, entry("retention.delete", "", `{"cutoff":"`+cutoff+`","ids":[2,3]}`)), ""},
	})
	var left string
	if err := queryOwner(t, db, `SELECT string_agg(id::text, ',' ORDER BY id) FROM submissions`, &left); err != nil {
		t.Fatal(err)
	}
	if left != "4" {
		t.Errorf("submissions left %q, want 4", left)
	}
}

// queryOwner scans one value as the database owner.
func queryOwner(t *testing.T, url, sql string, dest any) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest)
}

// auditedErase is a DO block that erases the submission idExpr names the way
// the app does: its submission.erase entry first, in the same transaction.
func auditedErase(idExpr string) string {
	return fmt.Sprintf(`DO $$ DECLARE n record; sub bigint := %s; BEGIN
  SELECT * INTO n FROM audit_next();
  PERFORM audit_append(n.next_id, n.next_seq, now(), 'staff:1', 'submission.erase', 'submission:' || sub, '{}', n.prev_mac, decode(repeat('ab', 32), 'hex'));
  IF NOT erase_submission(sub) THEN RAISE EXCEPTION 'nothing erased'; END IF;
END $$`, idExpr)
}
