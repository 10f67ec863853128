package clinical_test

import (
	"bytes"
	"context"
	"errors"
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
	if n, _, err := a.Verify(ctx); err != nil || n != 0 {
		t.Fatalf("empty log: %d entries, %v", n, err)
	}
	entries := appendEntries(t, a, 4)
	n, head, err := a.Verify(ctx)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if n != 4 || !bytes.Equal(head, entries[3].MAC) {
		t.Fatalf("verify: %d entries, head %x; want 4 entries, head %x", n, head, entries[3].MAC)
	}
	for i := 1; i < len(entries); i++ {
		if !bytes.Equal(entries[i].PrevMAC, entries[i-1].MAC) || entries[i].ID <= entries[i-1].ID {
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
	if n, _, err := clinical.NewAudit(d.app, secret).Verify(ctx); err != nil || n != 20 {
		t.Fatalf("after concurrent appends: %d entries, %v; want 20, intact", n, err)
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
			if _, _, err := a.Verify(ctx); err != nil {
				t.Fatalf("intact log: %v", err)
			}
			want := c.tamper(t, entries)
			verifier := a
			if c.audit != nil {
				verifier = c.audit
			}
			_, head, err := verifier.Verify(ctx)
			var brk *clinical.ChainBreak
			if !errors.As(err, &brk) {
				t.Fatalf("verify: %v, want a chain break", err)
			}
			if brk.ID != want {
				t.Errorf("break at entry %d (%s), want entry %d", brk.ID, brk.Reason, want)
			}
			if head != nil {
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
	_, head, err := a.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.exec(t, `DELETE FROM audit_log WHERE id = $1`, entries[2].ID)
	n, cut, err := a.Verify(ctx)
	if err != nil || n != 2 {
		t.Fatalf("truncated chain: %d entries, %v", n, err)
	}
	if bytes.Equal(head, cut) {
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
