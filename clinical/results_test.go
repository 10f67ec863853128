package clinical

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/results"
)

func date(s string) forms.Value { return forms.Value{ValueDate: &s} }

// TestResultsPublishCommand: the command prints one link whose token opens
// the stored result, stores only its hash and the sealed bytes, audits the
// publication, and refuses bad input with exit 2 publishing nothing.
func TestResultsPublishCommand(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ans := patient("Quillfeather", "Ysolde", "")
	ans["birth-date"] = []forms.Value{date("1971-07-04")}
	s := a.insert(t, "new-patient", ans, time.Now(), ReviewNew)
	noDOB := a.insert(t, "symptoms", forms.Answers{"complaint": {str("Knee")}}, time.Now(), ReviewNew)
	env := map[string]string{"CLINICAL_DATABASE_URL": a.appURL, "CLINICAL_SECRET_KEY": a.secret.String(),
		"CLINICAL_INTAKE_URL": "https://forms.example.org/"}
	run := func(args ...string) (string, string, error) {
		var out, errb strings.Builder
		err := Run(context.Background(), cliEnv(env, &out, &errb, args...))
		return out.String(), errb.String(), err
	}
	dir := t.TempDir()
	pdf := []byte("%PDF-1.4\nThe distinctive result Zylophant-4471\n%%EOF\n")
	pdfPath := filepath.Join(dir, "r.pdf")
	os.WriteFile(pdfPath, pdf, 0o600)

	out, _, err := run("results", "publish", "--receipt", s.receipt, "--file", pdfPath, "--title", "Blood test", "--require-birth-date")
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	link := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(link, "https://forms.example.org/r/") {
		t.Fatalf("output %q: want one line, the link", out)
	}
	tok, ok := results.ParseToken(strings.TrimPrefix(link, "https://forms.example.org/r/"))
	if !ok {
		t.Fatalf("link %q holds no token", link)
	}
	var hash, sealedTitle, sealed []byte
	var title, state string
	var expires, published time.Time
	err = a.owner.QueryRow(context.Background(), `SELECT token_hash, title, sealed_title, sealed, state, expires_at, published_at
FROM results WHERE submission_id = $1`, s.id).Scan(&hash, &title, &sealedTitle, &sealed, &state, &expires, &published)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hash, tok.Hash()) || title != "Blood test" || state != ResultPublished {
		t.Errorf("stored hash/title/state wrong: %q %q", title, state)
	}
	if got := expires.Sub(published); got != results.DefaultExpiry {
		t.Errorf("expiry %s, want the default %s", got, results.DefaultExpiry)
	}
	if bytes.Contains(sealed, []byte("Zylophant")) || bytes.Contains(sealed, []byte(tok.String())) {
		t.Error("the stored result holds plaintext or the token")
	}
	if _, err := tok.OpenDocument(sealed, ""); err == nil {
		t.Error("the result opens without the date of birth")
	}
	if _, err := tok.OpenDocument(sealed, "1971-07-05"); err == nil {
		t.Error("the result opens with a wrong date of birth")
	}
	doc, err := tok.OpenDocument(sealed, "1971-07-04")
	if err != nil || !bytes.Equal(doc.Data, pdf) || doc.ContentType != "application/pdf" {
		t.Errorf("open with the date of birth: %v %q", err, doc.ContentType)
	}
	if ti, err := tok.OpenTitle(sealedTitle); err != nil || ti != "Blood test" {
		t.Errorf("title: %q %v", ti, err)
	}
	if n := a.countAudit(t, "result.publish"); n != 1 {
		t.Errorf("%d result.publish audit entries, want 1", n)
	}
	if strings.Contains(a.auditText(t), "Blood test") || strings.Contains(a.auditText(t), tok.String()) {
		t.Error("the audit log holds the title or the token")
	}

	big := filepath.Join(dir, "big.txt")
	os.WriteFile(big, bytes.Repeat([]byte("a"), results.MaxSize+1), 0o600)
	exe := filepath.Join(dir, "prog.bin")
	os.WriteFile(exe, []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 0o600)
	for _, c := range []struct {
		args []string
		want string // the flag the error line names
	}{
		{[]string{"--receipt", testReceipt(99999), "--file", pdfPath}, "--receipt"},
		{[]string{"--receipt", "nonsense", "--file", pdfPath}, "--receipt"},
		{[]string{"--receipt", s.receipt, "--file", filepath.Join(dir, "missing.pdf")}, "--file"},
		{[]string{"--receipt", s.receipt}, "--file"},
		{[]string{"--receipt", s.receipt, "--file", big}, "--file"},
		{[]string{"--receipt", s.receipt, "--file", exe}, "--file"},
		{[]string{"--receipt", s.receipt, "--file", pdfPath, "--expires", "soon"}, "expires"},
		{[]string{"--receipt", s.receipt, "--file", pdfPath, "--expires", "1000000h"}, "--expires"},
		{[]string{"--receipt", s.receipt, "--file", pdfPath, "--title", " "}, "--title"},
		{[]string{"--receipt", noDOB.receipt, "--file", pdfPath, "--require-birth-date"}, "--require-birth-date"},
		{[]string{"--receipt", s.receipt, "--file", pdfPath, "--bogus"}, "bogus"},
	} {
		out, _, err := run(append([]string{"results", "publish"}, c.args...)...)
		if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), c.want) || out != "" {
			t.Errorf("%v: exit %d (%v), output %q; want exit 2 naming %s", c.args, exitCode(err), err, out, c.want)
		}
	}
	var n int
	a.owner.QueryRow(context.Background(), `SELECT count(*) FROM results`).Scan(&n)
	if n != 1 {
		t.Errorf("%d results stored, want only the first", n)
	}
	delete(env, "CLINICAL_INTAKE_URL")
	if _, _, err := run("results", "publish", "--receipt", s.receipt, "--file", pdfPath); exitCode(err) != 2 || !strings.Contains(err.Error(), "CLINICAL_INTAKE_URL") {
		t.Errorf("without CLINICAL_INTAKE_URL: %v", err)
	}
}
