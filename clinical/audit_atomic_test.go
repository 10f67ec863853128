package clinical

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// failOn makes the database refuse writes to table (for the given audit
// actions, on audit_log), as a full disk, a constraint or a crash would:
// the change or its audit entry fails half-way.
func failOn(t *testing.T, a *app, table, when string) {
	t.Helper()
	a.ownerExec(t, `CREATE OR REPLACE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`)
	a.ownerExec(t, `DROP TRIGGER IF EXISTS test_refuse ON audit_log`)
	a.ownerExec(t, `DROP TRIGGER IF EXISTS test_refuse ON submissions`)
	a.ownerExec(t, `DROP TRIGGER IF EXISTS test_refuse ON submission_notes`)
	a.ownerExec(t, `DROP TRIGGER IF EXISTS test_refuse ON staff`)
	if table != "" {
		events := "INSERT OR UPDATE OR DELETE"
		if when != "" {
			events = "INSERT"
		}
		a.ownerExec(t, `CREATE TRIGGER test_refuse BEFORE `+events+` ON `+table+` FOR EACH ROW `+when+` EXECUTE FUNCTION test_refuse()`)
	}
}

// TestAuditedChangesAreAtomic: a status change, a note, an erasure, a role
// change and a staff creation commit with their audit entry or not at all,
// whichever of the two fails.
func TestAuditedChangesAreAtomic(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	adm := a.newUser(t, "admin@clinic.example", true, true, RoleAdmin)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	other := a.newUser(t, "other@clinic.example", true, true, RoleViewer)
	s := a.insert(t, "symptoms", patient("Doe", "Jane", ""), a.clock.now(), ReviewNew)
	cd := a.client()
	cd.login(t, doc)
	ca := a.client()
	ca.login(t, adm)
	admin, err := a.srv.accounts.Get(t.Context(), adm.id)
	if err != nil {
		t.Fatal(err)
	}
	one := func(sql string, args ...any) string {
		t.Helper()
		var v string
		if err := a.owner.QueryRow(t.Context(), sql, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return v
	}
	state := func() string {
		return one(`SELECT (SELECT status FROM submissions WHERE id = $1) || ' notes:' || (SELECT count(*) FROM submission_notes) ||
  ' subs:' || (SELECT count(*) FROM submissions) || ' roles:' || (SELECT array_to_string(roles, ',') FROM staff WHERE id = $2) ||
  ' new-staff:' || (SELECT count(*) FROM staff WHERE email = 'new@clinic.example')`, s.id, other.id)
	}
	entries := func() string {
		return one(`SELECT count(*)::text FROM audit_log WHERE action IN ('submission.status', 'submission.note', 'submission.erase', 'staff.roles', 'staff.create')`)
	}
	before, beforeEntries := state(), entries()
	if before != "new notes:0 subs:1 roles:viewer new-staff:0" {
		t.Fatalf("start: %s, %s entries", before, beforeEntries)
	}
	attempt := func() {
		t.Helper()
		if rec := cd.post("/submissions/"+s.intakeID+"/status", url.Values{"from": {"new"}, "to": {"in_review"}}); rec.Code != http.StatusInternalServerError {
			t.Errorf("status change: %d, want 500", rec.Code)
		}
		if rec := cd.post("/submissions/"+s.intakeID+"/notes", url.Values{"body": {"Call back"}}); rec.Code != http.StatusInternalServerError {
			t.Errorf("note: %d, want 500", rec.Code)
		}
		if rec := ca.post("/admin/erase", url.Values{"receipt": {s.receipt}, "confirm": {"yes"}}); rec.Code != http.StatusInternalServerError {
			t.Errorf("erase: %d, want 500", rec.Code)
		}
		if err := a.srv.accounts.SetRoles(t.Context(), admin, other.id, []string{RoleClinician}); err == nil {
			t.Errorf("role change succeeded")
		}
		if _, err := a.srv.accounts.Create(t.Context(), admin.Actor(), &admin.ID, "new@clinic.example", []string{RoleViewer}, false); err == nil {
			t.Errorf("staff creation succeeded")
		}
	}

	// The audit entry fails: no change stays.
	failOn(t, a, "audit_log", `WHEN (NEW.action IN ('submission.status', 'submission.note', 'submission.erase', 'staff.roles', 'staff.create'))`)
	attempt()
	if got := state(); got != before {
		t.Errorf("audit entries refused, yet changes committed: %s, want %s", got, before)
	}
	// The change fails: no entry stays.
	failOn(t, a, "", "")
	for _, table := range []string{"submissions", "submission_notes", "staff"} {
		a.ownerExec(t, `CREATE TRIGGER test_refuse BEFORE INSERT OR UPDATE OR DELETE ON `+table+` FOR EACH ROW EXECUTE FUNCTION test_refuse()`)
	}
	attempt()
	failOn(t, a, "", "")
	if got := entries(); got != beforeEntries {
		t.Errorf("changes refused, yet audit entries recording them committed: %s, was %s", got, beforeEntries)
	}
	if got := state(); got != before {
		t.Errorf("state %s, want %s", got, before)
	}
}

// TestAuditVerifyPageHoldsTheAppsHead: the admin page's Verify checks the
// chain against the newest entry this process appended or saw, so a tail
// cut (or the whole log emptied) after the app saw it shows as broken there
// too, not only in `clinical audit verify --head`.
func TestAuditVerifyPageHoldsTheAppsHead(t *testing.T) {
	t.Parallel()
	for _, cut := range []string{
		`DELETE FROM audit_log WHERE seq > (SELECT max(seq) - 2 FROM audit_log)`,
		`DELETE FROM audit_log`,
	} {
		a := newApp(t)
		adm := a.newUser(t, "admin@clinic.example", true, true, RoleAdmin)
		c := a.client()
		c.login(t, adm)
		for range 3 {
			if _, err := a.srv.audit.Append(t.Context(), "staff:1", "view", "submission:1", map[string]any{}); err != nil {
				t.Fatal(err)
			}
		}
		if rec := c.post("/admin/audit/verify", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Audit chain intact") {
			t.Fatalf("intact log: %d\n%s", rec.Code, rec.Body.String())
		}
		a.ownerExec(t, cut)
		for range 2 { // the first Verify appends audit.view after the cut
			rec := c.post("/admin/audit/verify", nil)
			if body := rec.Body.String(); rec.Code != http.StatusOK || strings.Contains(body, "Audit chain intact") || !strings.Contains(body, "broken") {
				t.Errorf("%s: verify page: %d, shows intact or no break", cut, rec.Code)
			}
		}
	}
}
