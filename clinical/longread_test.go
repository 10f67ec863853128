package clinical_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
)

// slowWriter pauses every thousand writes, like a download over a slow
// link, and counts what it took.
type slowWriter struct {
	writes, n int
}

func (s *slowWriter) Write(p []byte) (int, error) {
	if s.writes++; s.writes%1000 == 0 {
		time.Sleep(25 * time.Millisecond)
	}
	s.n += len(p)
	return len(p), nil
}

// TestLongReadsOutlastTheStatementTimeout: an export streams its rows from
// one statement that stays open while they go to the consumer, so with the
// pool's statement timeout a large export to a slow consumer was cut short
// (an NDJSON export of 3M submissions failed at 60 s: "canceling statement
// due to statement timeout"). Here the pool's timeout is 200 ms and the
// consumer more than twice that; both the submissions export and the audit
// export finish whole.
func TestLongReadsOutlastTheStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newClinicalDB(t)
	// More rows than the socket buffers hold, or the server would finish
	// sending before the consumer slows it down.
	const rows = 20_000
	d.exec(t, `INSERT INTO submissions (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers)
SELECT md5('long read ' || i)::uuid, i, 'LONG-' || i, 'symptoms', '1', '0123456789abcdef', now(), now(),
  jsonb_build_object('complaint', jsonb_build_array(jsonb_build_object('valueString', repeat('cough ', 100) || i)))
FROM generate_series(1, $1) AS i`, rows)
	sep := "?"
	if strings.Contains(d.appURL, "?") {
		sep = "&"
	}
	pool, err := pg.Connect(ctx, d.appURL+sep+"statement_timeout=200", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	audit := clinical.NewAudit(pool, newSecretKey(t))
	x := &clinical.Exporter{Pool: pool, Audit: audit, Forms: forms.Builtin()}

	w := &slowWriter{}
	start := time.Now()
	n, err := x.Export(ctx, w, "ndjson", "cli:test", clinical.ExportFilter{})
	if err != nil || n != rows {
		t.Fatalf("export to a slow consumer: %d of %d rows, %v", n, rows, err)
	}
	t.Logf("%d submissions, %d bytes to the slow consumer in %v", n, w.n, time.Since(start).Round(time.Millisecond))

	// As many audit entries, as the owner can write them (their MACs do
	// not matter to an export).
	d.exec(t, `INSERT INTO audit_log (id, seq, at, actor, action, target, detail, prev_mac, mac)
SELECT g, g, now(), 'staff:1', 'submission.list', '', '{"ids":"' || repeat('7', 1000) || '"}', '\x00'::bytea, decode(repeat('ab', 32), 'hex')
FROM generate_series(100, $1 + 99) AS g`, rows) // after the export's own entry
	d.exec(t, `SELECT setval('audit_log_id_seq', $1 + 99)`, rows)
	w = &slowWriter{}
	if n, err := audit.ExportAudit(ctx, w, "cli:test", time.Time{}); err != nil || n < rows {
		t.Fatalf("audit export to a slow consumer: %d entries, %v", n, err)
	}
}
