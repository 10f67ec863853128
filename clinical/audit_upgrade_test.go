package clinical

import (
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

// migrationsBefore is the clinical migration set without version v and
// what follows it.
func migrationsBefore(t *testing.T, v int) fs.FS {
	t.Helper()
	set := fstest.MapFS{}
	files, err := fs.ReadDir(migrations.Clinical(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		n, err := strconv.Atoi(strings.SplitN(f.Name(), "_", 2)[0])
		if err != nil || n >= v {
			continue
		}
		b, err := fs.ReadFile(migrations.Clinical(), f.Name())
		if err != nil {
			t.Fatal(err)
		}
		set[f.Name()] = &fstest.MapFile{Data: b}
	}
	return set
}

// TestAuditEntriesFromBeforeNumbering: a log written before migration 000012
// (MACs without seq) is numbered by the migration and still verifies; the
// chain continues from it with numbered entries; and an old-style entry
// after a numbered one, or a renumbered old entry, is a break.
func TestAuditEntriesFromBeforeNumbering(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ownerURL := pgtest.NewDB(t, "clinical_before_audit_seq", migrationsBefore(t, 12))
	owner, err := pg.Connect(ctx, ownerURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := owner.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	secret, err := NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := NewAudit(nil, secret)
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	prev := genesis
	var old []*Entry
	for _, id := range []int64{1, 2, 5} { // ids 3 and 4 were lost to rolled-back appends
		e := &Entry{ID: id, At: at.Add(time.Duration(id) * time.Minute), Actor: "staff:1", Action: "view",
			Target: "submission:" + strconv.FormatInt(id, 10), Detail: `{}`, PrevMAC: prev}
		e.MAC = signer.macV1(e)
		exec(`INSERT INTO audit_log (id, at, actor, action, target, detail, prev_mac, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.ID, e.At, e.Actor, e.Action, e.Target, e.Detail, e.PrevMAC, e.MAC)
		prev = e.MAC
		old = append(old, e)
	}
	exec(`SELECT setval('audit_log_id_seq', 5)`)
	if _, err := pg.Migrate(ownerURL, migrations.Clinical()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	var seqs string
	if err := owner.QueryRow(ctx, `SELECT string_agg(seq::text, ',' ORDER BY id) FROM audit_log`).Scan(&seqs); err != nil || seqs != "1,2,3" {
		t.Fatalf("migrated numbers %q (%v), want 1,2,3", seqs, err)
	}

	app, err := pgxpool.New(ctx, pgtest.URLAs(t, ownerURL, "airlock_clinical_app"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	a := NewAudit(app, secret)
	if head, err := a.Verify(ctx, Anchor{ID: 5, MAC: old[2].MAC}); err != nil || head.Entries != 3 || head.ID != 5 {
		t.Fatalf("old entries after the migration: %+v, %v", head, err)
	}
	e, err := a.Append(ctx, "staff:2", "view", "", map[string]int{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 4 {
		t.Errorf("first numbered entry is number %d, want 4", e.Seq)
	}
	head, err := a.Verify(ctx)
	if err != nil || head.Entries != 4 || head.ID != e.ID {
		t.Fatalf("after the first numbered entry: %+v, %v", head, err)
	}

	wantBreak := func(what string, id int64, reason string) {
		t.Helper()
		_, err := a.Verify(ctx)
		brk, ok := err.(*ChainBreak)
		if !ok || brk.ID != id || !strings.Contains(brk.Reason, reason) {
			t.Errorf("%s: %v, want a break at entry %d mentioning %q", what, err, id, reason)
		}
	}
	// An entry signed the old way cannot follow a numbered one.
	late := &Entry{ID: e.ID + 1, Seq: 5, At: at.Add(time.Hour), Actor: "staff:1", Action: "view", Detail: `{}`, PrevMAC: e.MAC}
	late.MAC = signer.macV1(late)
	exec(`INSERT INTO audit_log (id, seq, at, actor, action, target, detail, prev_mac, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		late.ID, late.Seq, late.At, late.Actor, late.Action, late.Target, late.Detail, late.PrevMAC, late.MAC)
	wantBreak("old-style entry after a numbered one", late.ID, "MAC")
	exec(`DELETE FROM audit_log WHERE id = $1`, late.ID)

	// Old entries' numbers are not under their MACs, but their place is.
	exec(`UPDATE audit_log SET seq = 9 WHERE id = 2`)
	wantBreak("old entry renumbered", 2, "numbered 9")
	exec(`UPDATE audit_log SET seq = 2 WHERE id = 2`)

	exec(`UPDATE audit_log SET seq = NULL WHERE id = $1`, e.ID)
	wantBreak("numbered entry without its number", e.ID, "MAC")
	exec(`UPDATE audit_log SET seq = 4 WHERE id = $1`, e.ID)
	if _, err := a.Verify(ctx); err != nil {
		t.Errorf("restored: %v", err)
	}
}
