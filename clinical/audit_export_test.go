package clinical_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/cli"
)

// auditExportLines runs `clinical audit export` with args and decodes each
// stdout line, failing unless every line is one JSON object.
func auditExportLines(t *testing.T, env map[string]string, args ...string) (lines []map[string]any, raw []string, stderr string) {
	t.Helper()
	stdout, stderr, err := runClinical(t, env, append([]string{"audit", "export"}, args...)...)
	if err != nil {
		t.Fatalf("audit export %v: %v\n%s", args, err, stderr)
	}
	if stdout != "" && !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("output does not end with a newline: %q", stdout)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", line, err)
		}
		lines = append(lines, m)
		raw = append(raw, line)
	}
	return lines, raw, stderr
}

// TestAuditExportWritesTheStoredEntriesAndIsAudited: every entry comes out
// once, oldest first, with exactly the stored columns; the export appends
// its own entry first and ends with it; the chain still verifies, and the
// command logs the head it appended.
func TestAuditExportWritesTheStoredEntriesAndIsAudited(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t)
	ctx := context.Background()
	audit := clinical.NewAudit(f.app, f.secret)
	// What staff do to the three patients' rows: ids and actions only.
	for _, e := range []struct{ actor, action, target string }{
		{"anonymous", "login.failure", "staff:7"},
		{"staff:7", "login.success", "staff:7"},
		{"staff:7", "submission.view", "submission:1"},
	} {
		if _, err := audit.Append(ctx, e.actor, e.action, e.target, map[string]any{"stage": "password"}); err != nil {
			t.Fatal(err)
		}
	}
	// An export of the patients' data adds its own entry.
	if _, stderr, err := runClinical(t, f.env, "export", "--format", "ndjson"); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}

	lines, raw, stderr := auditExportLines(t, f.env, "--format", "ndjson")
	if got := f.count(t, `SELECT count(*) FROM audit_log`); len(lines) != got {
		t.Fatalf("%d lines, want every one of the %d entries (the export's own included)", len(lines), got)
	}
	// Each line is exactly the stored row.
	rows, err := f.owner.Query(ctx, `SELECT id, seq, at, actor, action, target, detail, encode(mac, 'hex') FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var id, seq int64
		var at time.Time
		var actor, action, target, detail, mac string
		if err := rows.Scan(&id, &seq, &at, &actor, &action, &target, &detail, &mac); err != nil {
			t.Fatal(err)
		}
		l := lines[i]
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range l {
				if !yield(k) {
					return
				}
			}
		})
		if want := []string{"action", "actor", "at", "detail", "id", "mac", "seq", "target"}; !slices.Equal(keys, want) {
			t.Errorf("line %d has keys %v, want exactly the stored columns %v", i, keys, want)
		}
		var gotDetail any
		var wantDetail any
		b, _ := json.Marshal(l["detail"])
		json.Unmarshal(b, &gotDetail)
		json.Unmarshal([]byte(detail), &wantDetail)
		gotAt, _ := time.Parse(time.RFC3339Nano, l["at"].(string))
		if l["id"] != float64(id) || l["seq"] != float64(seq) || !gotAt.Equal(at) || l["actor"] != actor ||
			l["action"] != action || l["target"] != target || l["mac"] != mac || string(b) != compactJSON(t, detail) {
			t.Errorf("line %d is %s, want the stored entry id %d seq %d at %s %s %s %s %s mac %s", i, raw[i], id, seq, at, actor, action, target, detail, mac)
		}
		i++
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}

	// The export is audited: its entry is the newest, by the operator,
	// and the last line.
	last := lines[len(lines)-1]
	if last["action"] != "audit.export" || !strings.HasPrefix(last["actor"].(string), "cli") {
		t.Errorf("last line %s, want the export's own audit.export entry by cli:<user>", raw[len(raw)-1])
	}
	if d, _ := last["detail"].(map[string]any); d["format"] != "ndjson" || len(d) != 1 {
		t.Errorf("export entry detail %v, want {format: ndjson}", last["detail"])
	}
	if n := f.count(t, `SELECT count(*) FROM audit_log WHERE action = 'audit.export'`); n != 1 {
		t.Errorf("%d audit.export entries, want 1", n)
	}
	// No patient content: the fixture's names, answers and receipts appear
	// nowhere in the export.
	all := strings.Join(raw, "\n")
	for _, s := range []string{"Later", "Lee", "HYPERLINK", "Peanuts", "Headache", "1990-05-17", f.patient.receipt, f.patient.intakeID} {
		if strings.Contains(all, s) {
			t.Errorf("the audit export holds %q, patient data", s)
		}
	}
	// The command logs the head it appended, and the chain verifies with it.
	var head string
	for line := range strings.SplitSeq(stderr, "\n") {
		var l struct{ Msg, Head string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "audit chain head" {
			head = l.Head
		}
	}
	if want := fmt.Sprintf("%.0f:%s", last["id"], last["mac"]); head != want {
		t.Errorf("logged head %q, want the export's entry %s", head, want)
	}
	if out, _, err := runClinical(t, f.env, "audit", "verify", "--head", head); err != nil {
		t.Errorf("verify after the export: %v\n%s", err, out)
	}
	// A second export holds the first export's entry and its own.
	again, _, _ := auditExportLines(t, f.env, "--format", "ndjson")
	if len(again) != len(lines)+1 || again[len(again)-1]["action"] != "audit.export" || again[len(again)-2]["id"] != last["id"] {
		t.Errorf("second export: %d lines, want %d ending with both exports' entries", len(again), len(lines)+1)
	}
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("stored detail %q is not JSON: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestAuditExportSince: --since keeps the entries recorded at or after it
// (and the export's own), and says so in the export's entry.
func TestAuditExportSince(t *testing.T) {
	t.Parallel()
	d := newClinicalDB(t)
	secret := newSecretKey(t)
	env := d.env(secret)
	ctx := context.Background()
	audit := clinical.NewAudit(d.app, secret)
	var ids []int64
	for i := range 4 {
		e, err := audit.Append(ctx, "anonymous", "login.failure", "", map[string]any{"reason": "password", "n": i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	// The first two were recorded last year (the owner can move them; the
	// export does not verify, and the test does not need it to).
	d.exec(t, `UPDATE audit_log SET at = '2025-06-01T00:00:00Z' WHERE id = ANY($1)`, ids[:2])
	lines, raw, _ := auditExportLines(t, env, "--format", "ndjson", "--since", "2026-01-01T00:00:00Z")
	var got []float64
	for _, l := range lines {
		got = append(got, l["id"].(float64))
	}
	if len(lines) != 3 || got[0] != float64(ids[2]) || got[1] != float64(ids[3]) || lines[2]["action"] != "audit.export" {
		t.Fatalf("--since 2026: %s, want entries %d, %d and the export's own", strings.Join(raw, "\n"), ids[2], ids[3])
	}
	if det, _ := lines[2]["detail"].(map[string]any); det["since"] != "2026-01-01T00:00:00Z" {
		t.Errorf("export entry detail %v, want since 2026-01-01T00:00:00Z", lines[2]["detail"])
	}
	// An offset is a time like any other: 2025-06-01T02:00:00+02:00 is midnight UTC.
	lines, _, _ = auditExportLines(t, env, "--format", "ndjson", "--since", "2025-06-01T02:00:00+02:00")
	if len(lines) != 4+2 {
		t.Errorf("--since the old entries' instant: %d lines, want all 4, the first export's entry and its own", len(lines))
	}
}

// TestAuditExportBadFlags: exit 2, one line naming the flag, and nothing
// appended or written.
func TestAuditExportBadFlags(t *testing.T) {
	t.Parallel()
	d := newClinicalDB(t)
	env := d.env(newSecretKey(t))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday", "--format", "ndjson"}, "--since"},
		{[]string{"--format", "ndjson", "--since", "2026-01-31"}, "--since"},
		{[]string{"--format", "csv"}, "--format"},
		{nil, "--format"},
		{[]string{"--format", "ndjson", "--until", "2026-01-31T00:00:00Z"}, "-until"},
		{[]string{"--format", "ndjson", "extra"}, `"extra"`},
	} {
		stdout, _, err := runClinical(t, env, append([]string{"audit", "export"}, tc.args...)...)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if cli.ExitCode(err) != 2 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || stdout != "" {
			t.Errorf("%v: exit %d, %q, stdout %q; want exit 2, one line naming %s", tc.args, cli.ExitCode(err), msg, stdout, tc.want)
		}
	}
	if n := d.count(t, `SELECT count(*) FROM audit_log`); n != 0 {
		t.Errorf("bad flags appended %d audit entries", n)
	}
	// A missing secret key names the variable, as every command does.
	delete(env, "CLINICAL_SECRET_KEY")
	if _, _, err := runClinical(t, env, "audit", "export", "--format", "ndjson"); cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), "CLINICAL_SECRET_KEY") {
		t.Errorf("no secret key: exit %d, %v; want 2 naming CLINICAL_SECRET_KEY", cli.ExitCode(err), err)
	}
}

// heapWatcher samples the live heap every few milliseconds while an
// export runs, keeping the highest sample.
type heapWatcher struct {
	mu   sync.Mutex
	peak uint64
	stop chan struct{}
	done chan struct{}
}

func watchHeap() *heapWatcher {
	h := &heapWatcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			h.sample()
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapWatcher) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.mu.Lock()
	h.peak = max(h.peak, m.HeapAlloc)
	h.mu.Unlock()
}

// Peak stops sampling (after one last sample) and returns the highest.
func (h *heapWatcher) Peak() uint64 {
	close(h.stop)
	<-h.done
	h.sample()
	return h.peak
}

// countingWriter counts the bytes written to it.
type countingWriter struct{ n int }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// TestAuditExportStreamsInConstantMemory: an audit log of about 40 MiB goes
// out while the live heap grows by a small fraction of it; an export that
// gathered the entries first would hold them all. Not parallel, so the
// heap is this test's.
func TestAuditExportStreamsInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 40 MiB audit log")
	}
	d := newClinicalDB(t)
	secret := newSecretKey(t)
	const entries, detailBytes = 20000, 2000
	// Rows as the owner can write them (their MACs do not matter here).
	d.exec(t, `INSERT INTO audit_log (id, seq, at, actor, action, target, detail, prev_mac, mac)
SELECT g, g, now(), 'staff:1', 'submission.list', '', '{"ids":"' || repeat('7', $1) || '"}', '\x00'::bytea, decode(repeat('ab', 32), 'hex')
FROM generate_series(1, $2) AS g`, detailBytes, entries)
	d.exec(t, `SELECT setval('audit_log_id_seq', $1)`, entries)

	pool := openPool(t, d.appURL)
	audit := clinical.NewAudit(pool, secret)
	// Collect often, so the heap measures what is live rather than
	// garbage waiting for the next cycle.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	w := &countingWriter{}
	heap := watchHeap()
	n, err := audit.ExportAudit(context.Background(), w, "cli:test", time.Time{})
	peak := heap.Peak()
	if err != nil {
		t.Fatal(err)
	}
	if n != entries+1 || w.n < entries*detailBytes {
		t.Fatalf("%d entries, %d bytes written; want %d entries, at least %d bytes", n, w.n, entries+1, entries*detailBytes)
	}
	growth := int64(peak) - int64(before.HeapAlloc)
	t.Logf("%d entries, %.1f MiB written; live heap grew by at most %.1f MiB", n, float64(w.n)/(1<<20), float64(growth)/(1<<20))
	if limit := int64(w.n / 4); growth > limit {
		t.Errorf("the live heap grew by %d bytes while %d were written: the export holds the log in memory", growth, w.n)
	}
}
