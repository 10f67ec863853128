package clinical

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
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

// postFile sends the publish form as a browser does (multipart, with the
// session's CSRF token).
func (c *client) postFile(path string, fields map[string]string, data []byte) *httptest.ResponseRecorder {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("csrf", c.csrf())
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if data != nil {
		fw, _ := w.CreateFormFile("file", "scan.pdf")
		fw.Write(data)
	}
	w.Close()
	req := httptest.NewRequest(http.MethodPost, path, &body)
	req.RemoteAddr = c.addr
	req.Header.Set("Content-Type", w.FormDataContentType())
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	c.a.srv.Echo.ServeHTTP(rec, req)
	return rec
}

var linkRE = regexp.MustCompile(`<code id="result-link"[^>]*>([^<]+)</code>`)

// TestPublishAndWithdrawInTheApp: a clinician publishes from the submission
// page and sees the link once with its QR code; the page lists each result's
// state; an unused link can be withdrawn once; each step is audited; a
// viewer can do neither; bad input is a 422 naming the field and publishes
// nothing.
func TestPublishAndWithdrawInTheApp(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.srv.intakeURL = "https://forms.example.org"
	ans := patient("Quillfeather", "Ysolde", "")
	ans["birth-date"] = []forms.Value{date("1971-07-04")}
	s := a.insert(t, "new-patient", ans, time.Now(), ReviewNew)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	viewer := a.newUser(t, "view@clinic.example", true, true, RoleViewer)
	c := a.client()
	c.login(t, doc)
	page := c.get("/submissions/" + s.intakeID)
	if !strings.Contains(page.Body.String(), `id="publish-result"`) || !strings.Contains(page.Body.String(), `id="result-dob"`) {
		t.Fatalf("the submission page offers no publish form with the date of birth option:\n%s", page.Body.String())
	}
	pdf := []byte("%PDF-1.4\nresult\n%%EOF\n")
	fields := map[string]string{"title": "Blood test", "expires_days": "14", "require_birth_date": "1"}
	rec := c.postFile("/submissions/"+s.intakeID+"/results", fields, pdf)
	if rec.Code != http.StatusOK {
		t.Fatalf("publish: %d\n%s", rec.Code, rec.Body.String())
	}
	m := linkRE.FindStringSubmatch(rec.Body.String())
	if m == nil || !strings.HasPrefix(m[1], "https://forms.example.org/r/") {
		t.Fatalf("no link on the page:\n%s", rec.Body.String())
	}
	tok, ok := results.ParseToken(strings.TrimPrefix(m[1], "https://forms.example.org/r/"))
	if !ok {
		t.Fatalf("link %q holds no token", m[1])
	}
	if !strings.Contains(rec.Body.String(), `<svg`) || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("the link page has no QR code or may be cached")
	}
	var sealed []byte
	a.owner.QueryRow(context.Background(), `SELECT sealed FROM results WHERE token_hash = $1`, tok.Hash()).Scan(&sealed)
	if d, err := tok.OpenDocument(sealed, "1971-07-04"); err != nil || !bytes.Equal(d.Data, pdf) {
		t.Errorf("the stored result does not open with the link's token and the date of birth: %v", err)
	}
	// The link is shown only once: the submission page never holds it.
	page = c.get("/submissions/" + s.intakeID)
	if strings.Contains(page.Body.String(), tok.String()) || !strings.Contains(page.Body.String(), "Published, waiting for transfer") {
		t.Errorf("submission page: holds the token, or lacks the state")
	}

	for _, bad := range []struct {
		fields map[string]string
		data   []byte
		want   string
	}{
		{map[string]string{"title": "X", "expires_days": "14"}, nil, "File"},
		{map[string]string{"title": "X", "expires_days": "14"}, []byte("\x7fELF\x02\x01\x01\x00\x00"), "File"},
		{map[string]string{"title": "X", "expires_days": "14"}, bytes.Repeat([]byte("a"), results.MaxSize+1), "File"},
		{map[string]string{"title": "", "expires_days": "14"}, pdf, "Title"},
		{map[string]string{"title": "X", "expires_days": "400"}, pdf, "Expires"},
	} {
		rec := c.postFile("/submissions/"+s.intakeID+"/results", bad.fields, bad.data)
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), bad.want+":") {
			t.Errorf("%v: %d, want 422 naming %s", bad.fields, rec.Code, bad.want)
		}
	}
	var n int
	a.owner.QueryRow(context.Background(), `SELECT count(*) FROM results`).Scan(&n)
	if n != 1 {
		t.Errorf("%d results stored after bad input, want 1", n)
	}

	var rid int64
	a.owner.QueryRow(context.Background(), `SELECT id FROM results`).Scan(&rid)
	v := a.client()
	v.login(t, viewer)
	if rec := v.postFile("/submissions/"+s.intakeID+"/results", fields, pdf); rec.Code != http.StatusForbidden {
		t.Errorf("viewer publish: %d, want 403", rec.Code)
	}
	withdraw := fmt.Sprintf("/submissions/%s/results/%d/withdraw", s.intakeID, rid)
	if rec := v.post(withdraw, nil); rec.Code != http.StatusForbidden {
		t.Errorf("viewer withdraw: %d, want 403", rec.Code)
	}
	if rec := c.post(withdraw, nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("withdraw: %d\n%s", rec.Code, rec.Body.String())
	}
	if rec := c.post(withdraw, nil); rec.Code != http.StatusConflict {
		t.Errorf("second withdrawal: %d, want 409", rec.Code)
	}
	if !strings.Contains(c.get("/submissions/"+s.intakeID).Body.String(), "Withdrawn") {
		t.Errorf("the submission page does not show the withdrawal")
	}
	if a.countAudit(t, "result.publish") != 1 || a.countAudit(t, "result.withdraw") != 1 {
		t.Errorf("audit: %d publish, %d withdraw entries, want 1 each", a.countAudit(t, "result.publish"), a.countAudit(t, "result.withdraw"))
	}
}
