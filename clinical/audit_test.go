package clinical_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/cli"
)

// appendEntries writes n entries through the staff app's login and returns them.
func appendEntries(t *testing.T, a *clinical.Audit, n int) []*clinical.Entry {
	t.Helper()
	var out []*clinical.Entry
	for i := range n {
		e, err := a.Append(context.Background(), "staff:"+strconv.Itoa(i), "view", "submission:"+strconv.Itoa(100+i),
			map[string]any{"step": i})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestAuditChainVerifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newClinicalDB(t)
	a := clinical.NewAudit(d.app, newSecretKey(t))

	// An empty log is intact.
	if head, err := a.Verify(ctx); err != nil || head.Entries != 0 || head.String() != "" {
		t.Fatalf("empty log: %+v, %v", head, err)
	}
	entries := appendEntries(t, a, 4)
	head, err := a.Verify(ctx)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if head.Entries != 4 || head.ID != entries[3].ID || head.Seq != 4 || !bytes.Equal(head.MAC, entries[3].MAC) {
		t.Fatalf("verify: head %+v; want 4 entries, head %d:%x", head, entries[3].ID, entries[3].MAC)
	}
	if head.String() != headArg(entries[3]) {
		t.Errorf("head written %q, want %q", head.String(), headArg(entries[3]))
	}
	for i := 1; i < len(entries); i++ {
		if !bytes.Equal(entries[i].PrevMAC, entries[i-1].MAC) || entries[i].ID <= entries[i-1].ID || entries[i].Seq != entries[i-1].Seq+1 {
			t.Fatalf("entry %d does not follow entry %d", entries[i].ID, entries[i-1].ID)
		}
	}
}

func TestAuditAppendsFromManySessionsStayOneChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newClinicalDB(t)
	secret := newSecretKey(t)
	var wg sync.WaitGroup
	for i := range 4 { // four app instances, each with its own Audit
		a := clinical.NewAudit(d.app, secret)
		wg.Go(func() {
			for j := range 5 {
				if _, err := a.Append(ctx, "staff:"+strconv.Itoa(i), "view", "", map[string]int{"j": j}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if head, err := clinical.NewAudit(d.app, secret).Verify(ctx); err != nil || head.Entries != 20 || head.Seq != 20 {
		t.Fatalf("after concurrent appends: %+v, %v; want 20 entries, intact", head, err)
	}
}

// Every edit, deletion, insertion or reordering by someone who can write the
// table (the database owner, a restored backup) but does not hold
// CLINICAL_SECRET_KEY is found, at the first entry it touches.
func TestAuditVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newClinicalDB(t)
	secret := newSecretKey(t)
	a := clinical.NewAudit(d.app, secret)

	cases := []struct {
		name string
		// tamper changes the log of entries (ids in e) and returns the id
		// Verify must name.
		tamper func(t *testing.T, e []*clinical.Entry) int64
		audit  *clinical.Audit // nil: a
	}{
		{"actor edited", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `UPDATE audit_log SET actor = 'staff:someone-else' WHERE id = $1`, e[2].ID)
			return e[2].ID
		}, nil},
		{"action edited", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `UPDATE audit_log SET action = 'login' WHERE id = $1`, e[1].ID)
			return e[1].ID
		}, nil},
		{"target edited", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `UPDATE audit_log SET target = 'submission:1' WHERE id = $1`, e[3].ID)
			return e[3].ID
		}, nil},
		{"detail edited", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `UPDATE audit_log SET detail = '{"step": 1}' WHERE id = $1`, e[1].ID)
			return e[1].ID
		}, nil},
		{"time moved by a microsecond", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `UPDATE audit_log SET at = at + interval '1 microsecond' WHERE id = $1`, e[0].ID)
			return e[0].ID
		}, nil},
		{"last entry edited", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `UPDATE audit_log SET actor = 'nobody' WHERE id = $1`, e[4].ID)
			return e[4].ID
		}, nil},
		{"middle entry deleted", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `DELETE FROM audit_log WHERE id = $1`, e[2].ID)
			return e[3].ID
		}, nil},
		{"first entry deleted", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `DELETE FROM audit_log WHERE id = $1`, e[0].ID)
			return e[1].ID
		}, nil},
		{"entry deleted and the next relinked", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `DELETE FROM audit_log WHERE id = $1`, e[2].ID)
			d.exec(t, `UPDATE audit_log SET prev_mac = $2 WHERE id = $1`, e[3].ID, e[1].MAC)
			return e[3].ID
		}, nil},
		{"forged entry appended", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `INSERT INTO audit_log (id, at, actor, action, target, detail, prev_mac, mac)
VALUES ($1, now(), 'staff:0', 'view', '', '{}', $2, $3)`, e[4].ID+1, e[4].MAC, bytes.Repeat([]byte{7}, 32))
			return e[4].ID + 1
		}, nil},
		{"forged entry placed first", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `INSERT INTO audit_log (id, at, actor, action, target, detail, prev_mac, mac)
VALUES (0, now(), 'staff:0', 'view', '', '{}', $1, $2)`, make([]byte, 32), bytes.Repeat([]byte{7}, 32))
			return 0
		}, nil},
		{"genuine entry copied under a new id", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `INSERT INTO audit_log (id, at, actor, action, target, detail, prev_mac, mac)
SELECT $2, at, actor, action, target, detail, $3, mac FROM audit_log WHERE id = $1`, e[1].ID, e[4].ID+1, e[4].MAC)
			return e[4].ID + 1
		}, nil},
		{"two entries swapped", func(t *testing.T, e []*clinical.Entry) int64 {
			d.exec(t, `UPDATE audit_log SET id = -1 WHERE id = $1`, e[1].ID)
			d.exec(t, `UPDATE audit_log SET id = $1 WHERE id = $2`, e[1].ID, e[2].ID)
			d.exec(t, `UPDATE audit_log SET id = $1 WHERE id = -1`, e[2].ID)
			return e[1].ID
		}, nil},
		{"verified under another secret key", func(t *testing.T, e []*clinical.Entry) int64 {
			return e[0].ID
		}, clinical.NewAudit(d.app, newSecretKey(t))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each case starts from a fresh, intact log of five entries.
			d.exec(t, `TRUNCATE audit_log`)
			entries := appendEntries(t, a, 5)
			if _, err := a.Verify(ctx); err != nil {
				t.Fatalf("intact log: %v", err)
			}
			want := c.tamper(t, entries)
			verifier := a
			if c.audit != nil {
				verifier = c.audit
			}
			head, err := verifier.Verify(ctx)
			var brk *clinical.ChainBreak
			if !errors.As(err, &brk) {
				t.Fatalf("verify: %v, want a chain break", err)
			}
			if brk.ID != want {
				t.Errorf("break at entry %d (%s), want entry %d", brk.ID, brk.Reason, want)
			}
			if head.MAC != nil || head.Entries != 0 {
				t.Errorf("a broken chain returned a head")
			}
			if !strings.Contains(brk.Error(), "entry "+strconv.FormatInt(want, 10)) {
				t.Errorf("error %q does not name entry %d", brk.Error(), want)
			}
		})
	}
}

// Cutting entries off the end leaves a shorter chain that verifies on its
// own; it is caught only against a head recorded earlier (which the app
// writes to its JSON log), so the head must change.
func TestAuditTruncationChangesTheHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newClinicalDB(t)
	a := clinical.NewAudit(d.app, newSecretKey(t))
	entries := appendEntries(t, a, 3)
	head, err := a.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.exec(t, `DELETE FROM audit_log WHERE id = $1`, entries[2].ID)
	cut, err := a.Verify(ctx)
	if err != nil || cut.Entries != 2 {
		t.Fatalf("truncated chain: %+v, %v", cut, err)
	}
	if bytes.Equal(head.MAC, cut.MAC) {
		t.Fatal("the head did not change when the last entry was cut off")
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	d := newClinicalDB(t)
	secret := newSecretKey(t)
	entries := appendEntries(t, clinical.NewAudit(d.app, secret), 3)
	env := d.env(secret)

	stdout, _, err := runClinical(t, env, "audit", "verify")
	if code := cli.ExitCode(err); code != 0 {
		t.Fatalf("intact chain: exit %d (%v)", code, err)
	}
	if !strings.Contains(stdout, "intact: 3 entries") {
		t.Errorf("intact chain printed %q", stdout)
	}

	otherEnv := d.env(newSecretKey(t))
	_, _, err = runClinical(t, otherEnv, "audit", "verify")
	if code := cli.ExitCode(err); code != 1 || !strings.Contains(err.Error(), "entry "+strconv.FormatInt(entries[0].ID, 10)) {
		t.Errorf("another secret key: exit %d (%v), want 1 naming entry %d", code, err, entries[0].ID)
	}

	d.exec(t, `UPDATE audit_log SET detail = '{}' WHERE id = $1`, entries[1].ID)
	stdout, _, err = runClinical(t, env, "audit", "verify")
	if code := cli.ExitCode(err); code != 1 {
		t.Fatalf("edited chain: exit %d (%v), want 1", code, err)
	}
	name := "entry " + strconv.FormatInt(entries[1].ID, 10)
	if !strings.Contains(err.Error(), name) || !strings.Contains(stdout, name) {
		t.Errorf("edited chain: error %q, stdout %q; want both to name %s", err, stdout, name)
	}

	for _, c := range []struct {
		name   string
		env    map[string]string
		args   []string
		naming string
	}{
		{"no secret key", map[string]string{"CLINICAL_DATABASE_URL": d.appURL}, []string{"audit", "verify"}, "CLINICAL_SECRET_KEY"},
		{"malformed secret key", map[string]string{"CLINICAL_DATABASE_URL": d.appURL, "CLINICAL_SECRET_KEY": "c2hvcnQ="}, []string{"audit", "verify"}, "CLINICAL_SECRET_KEY"},
		{"no database", map[string]string{"CLINICAL_SECRET_KEY": secret.String()}, []string{"audit", "verify"}, "CLINICAL_DATABASE_URL"},
		{"no subcommand", env, []string{"audit"}, "audit verify"},
	} {
		_, _, err := runClinical(t, c.env, c.args...)
		if code := cli.ExitCode(err); code != 2 || !strings.Contains(err.Error(), c.naming) {
			t.Errorf("%s: exit %d (%v), want 2 naming %s", c.name, code, err, c.naming)
		}
	}
}

// headArg is an entry in the form the app logs it and --head takes: ID:MACHEX.
func headArg(e *clinical.Entry) string { return fmt.Sprintf("%d:%x", e.ID, e.MAC) }

// The database owner can cut the newest entries and let the app carry on:
// the chain that is left verifies on its own, because nothing in the
// database survives its owner. The heads the app logged catch it.
func TestAuditVerifyAgainstLoggedHeads(t *testing.T) {
	t.Parallel()
	d := newClinicalDB(t)
	secret := newSecretKey(t)
	env := d.env(secret)
	entries := appendEntries(t, clinical.NewAudit(d.app, secret), 4)
	verify := func(heads ...*clinical.Entry) (string, error) {
		args := []string{"audit", "verify"}
		for _, h := range heads {
			args = append(args, "--head", headArg(h))
		}
		stdout, _, err := runClinical(t, env, args...)
		return stdout, err
	}
	wantBreak := func(what string, stdout string, err error, id int64) {
		t.Helper()
		name := "entry " + strconv.FormatInt(id, 10)
		if code := cli.ExitCode(err); code != 1 || !strings.Contains(err.Error(), name) || !strings.Contains(stdout, name) {
			t.Errorf("%s: exit %d (%v), stdout %q; want 1 naming %s", what, code, err, stdout, name)
		}
	}

	stdout, err := verify(entries[1], entries[3])
	if code := cli.ExitCode(err); code != 0 || !strings.Contains(stdout, "intact: 4 entries") {
		t.Fatalf("heads on the chain: exit %d (%v), stdout %q", code, err, stdout)
	}
	upper := strings.ToUpper(headArg(entries[3]))
	if _, _, err := runClinical(t, env, "audit", "verify", "--head", upper); err != nil {
		t.Errorf("a head in upper-case hex: %v", err)
	}

	// The newest entry is cut off and a restarted app appends the next one.
	d.exec(t, `DELETE FROM audit_log WHERE id = $1`, entries[3].ID)
	appendEntries(t, clinical.NewAudit(d.app, secret), 1)
	if _, err := verify(entries[1]); err != nil {
		t.Errorf("a head from before the cut: %v", err)
	}
	stdout, err = verify(entries[1], entries[3])
	wantBreak("tail cut, chain continued", stdout, err, entries[3].ID)

	// The same, with the id sequence set back so the next entry takes the
	// cut entry's id: that id now has another MAC.
	d.exec(t, `DELETE FROM audit_log WHERE id > $1`, entries[2].ID)
	d.exec(t, `SELECT setval('audit_log_id_seq', $1)`, entries[2].ID)
	again := appendEntries(t, clinical.NewAudit(d.app, secret), 1)
	if again[0].ID != entries[3].ID {
		t.Fatalf("the reset sequence gave id %d, want %d", again[0].ID, entries[3].ID)
	}
	stdout, err = verify(entries[3])
	wantBreak("tail cut, id reused", stdout, err, entries[3].ID)

	// Cut and not continued.
	d.exec(t, `DELETE FROM audit_log WHERE id > $1`, entries[1].ID)
	stdout, err = verify(entries[2])
	wantBreak("tail cut", stdout, err, entries[2].ID)

	for _, bad := range []string{"", "12", "x:" + strings.Repeat("00", 32), "0:" + strings.Repeat("00", 32),
		"-3:" + strings.Repeat("00", 32), "3:" + strings.Repeat("00", 31), "3:" + strings.Repeat("zz", 32)} {
		_, _, err := runClinical(t, env, "audit", "verify", "--head", bad)
		if code := cli.ExitCode(err); code != 2 || !strings.Contains(err.Error(), "--head") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--head %q: exit %d (%v), want 2 and one line naming --head", bad, code, err)
		}
	}
	help, _, _ := runClinical(t, env, "--help")
	if !strings.Contains(help, "--head ID:MACHEX") {
		t.Errorf("--help does not show --head")
	}
}

// Entry numbers (seq) are dense: a skipped id (a rolled-back append, a
// crash) is no gap, and seq is covered by the MAC.
func TestAuditSeqIsDenseAndCovered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newClinicalDB(t)
	secret := newSecretKey(t)
	a := clinical.NewAudit(d.app, secret)
	appendEntries(t, a, 2)
	d.exec(t, `SELECT nextval('audit_log_id_seq') FROM generate_series(1, 40)`) // ids a crash or rollbacks skip
	appendEntries(t, a, 2)
	rows, err := d.owner.Query(ctx, `SELECT seq FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	if rows.Err() != nil || fmt.Sprint(seqs) != "[1 2 3 4]" {
		t.Fatalf("seqs %v (%v), want [1 2 3 4]", seqs, rows.Err())
	}
	if _, _, err := runClinical(t, d.env(secret), "audit", "verify"); err != nil {
		t.Fatalf("skipped ids: %v, want intact", err)
	}
	var last int64
	if err := d.owner.QueryRow(ctx, `SELECT max(id) FROM audit_log`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	d.exec(t, `UPDATE audit_log SET seq = 7 WHERE id = $1`, last)
	_, _, err = runClinical(t, d.env(secret), "audit", "verify")
	if code := cli.ExitCode(err); code != 1 || !strings.Contains(err.Error(), "entry "+strconv.FormatInt(last, 10)) {
		t.Errorf("seq edited: exit %d (%v), want 1 naming entry %d", code, err, last)
	}
}
