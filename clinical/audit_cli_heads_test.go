package clinical_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/cli"
)

// TestCommandsLogTheHeadTheyAppend: a command that appends (here an export)
// logs the chain head after its entry, so cutting that entry off the end
// is caught by `clinical audit verify --head`, and so is emptying the log.
func TestCommandsLogTheHeadTheyAppend(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t)
	_, stderr, err := runClinical(t, f.env, "export", "--format", "ndjson")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	var head string
	for _, line := range strings.Split(stderr, "\n") {
		var l struct{ Msg, Head string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "audit chain head" {
			head = l.Head
		}
	}
	var id, mac string
	if err := f.owner.QueryRow(t.Context(), `SELECT id::text, encode(mac, 'hex') FROM audit_log WHERE action = 'export'`).Scan(&id, &mac); err != nil {
		t.Fatal(err)
	}
	if head != id+":"+mac {
		t.Fatalf("export logged head %q, want its entry %s:%s\n%s", head, id, mac, stderr)
	}
	if out, _, err := runClinical(t, f.env, "audit", "verify", "--head", head); err != nil {
		t.Fatalf("verify with the logged head: %v\n%s", err, out)
	}
	f.exec(t, `DELETE FROM audit_log WHERE action = 'export'`)
	out, _, err := runClinical(t, f.env, "audit", "verify", "--head", head)
	if cli.ExitCode(err) != 1 || !strings.Contains(out, "entry "+id) {
		t.Errorf("tail cut: exit %d (%v) %q, want 1 naming entry %s", cli.ExitCode(err), err, out, id)
	}
	f.exec(t, `DELETE FROM audit_log`)
	out, _, err = runClinical(t, f.env, "audit", "verify", "--head", head)
	if cli.ExitCode(err) != 1 || !strings.Contains(out, "entry "+id) {
		t.Errorf("emptied log: exit %d (%v) %q, want 1 naming entry %s", cli.ExitCode(err), err, out, id)
	}
}
