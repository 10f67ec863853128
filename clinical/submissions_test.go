package clinical

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/forms"
)

var rowLink = regexp.MustCompile(`href="/submissions/([0-9a-f-]{36})"`)

func listed(body string) []string {
	var out []string
	for _, m := range rowLink.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestListSearchFilterSortPage covers the list: search by name, receipt and
// text (by POST only), filters, sort, keyset pages, superseded rows hidden,
// and 422 for every malformed input.
func TestListSearchFilterSortPage(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, u)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	jane := a.insert(t, "new-patient", patient("Doe", "Jane", "ibuprofen twice daily"), day, ReviewNew)
	john := a.insert(t, "new-patient", patient("Doe", "John", ""), day.Add(24*time.Hour), ReviewInReview)
	ann := a.insert(t, "new-patient", patient("Smith", "Ann", ""), day.Add(48*time.Hour), ReviewDone)
	knee := a.insert(t, "symptoms", forms.Answers{"complaint": {str("Swollen knee after running")}}, day.Add(72*time.Hour), ReviewNew)
	old := a.insert(t, "new-patient", patient("Doe", "Jane", "old version"), day.Add(-24*time.Hour), ReviewNew)
	a.owner.Exec(t.Context(), `UPDATE submissions SET superseded_by = $1 WHERE id = $2`, jane.id, old.id)

	search := func(form url.Values) []string {
		t.Helper()
		rec := c.search(form)
		if rec.Code != http.StatusOK {
			t.Fatalf("search %v: %d: %s", form, rec.Code, rec.Body.String())
		}
		return listed(rec.Body.String())
	}
	want := func(name string, got []string, subs ...sub) {
		t.Helper()
		var ids []string
		for _, s := range subs {
			ids = append(ids, s.intakeID)
		}
		if strings.Join(got, ",") != strings.Join(ids, ",") {
			t.Errorf("%s: listed %v, want %v", name, got, ids)
		}
	}
	get := func(path string) []string {
		t.Helper()
		rec := c.get(path)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		return listed(rec.Body.String())
	}
	want("default list, newest first, superseded hidden", get("/submissions"), knee, ann, john, jane)
	want("oldest first", get("/submissions?sort=oldest"), jane, john, ann, knee)
	want("superseded shown on request", get("/submissions?sort=oldest&superseded=1"), old, jane, john, ann, knee)
	want("by form", get("/submissions?form=symptoms"), knee)
	want("by status", get("/submissions?status=in_review"), john)
	want("by form and status", get("/submissions?form=new-patient&status=new"), jane)
	want("date range", get("/submissions?from=2026-04-02&to=2026-04-03"), ann, john)
	want("family name", search(url.Values{"q": {"doe"}}), john, jane)
	want("given and family name, any case", search(url.Values{"q": {"JANE Doe"}}), jane)
	want("name prefix", search(url.Values{"q": {"smi"}}), ann)
	want("text in answers", search(url.Values{"q": {"ibuprofen"}}), jane)
	want("text in another form", search(url.Values{"q": {"knee"}}), knee)
	want("search with filter", search(url.Values{"q": {"doe"}, "status": {"in_review"}}), john)
	want("receipt", search(url.Values{"q": {ann.receipt}}), ann)
	want("receipt typed without dashes", search(url.Values{"q": {strings.ToLower(strings.ReplaceAll(ann.receipt, "-", ""))}}), ann)
	want("no match", search(url.Values{"q": {"zebra"}}))

	// Keyset pages of two, by GET link and by search form.
	for i := 0; i < 3; i++ {
		a.insert(t, "new-patient", patient("Doe", fmt.Sprintf("Kid%d", i), ""), day.Add(time.Duration(100+i)*time.Hour), ReviewNew)
	}
	var all []string
	pages := 0
	next := "/submissions?status=new&limit=2"
	for next != "" {
		pages++
		rec := c.get(next)
		page := listed(rec.Body.String())
		all = append(all, page...)
		m := regexp.MustCompile(`href="(/submissions\?[^"]*cursor=[^"]*)"`).FindStringSubmatch(rec.Body.String())
		next = ""
		if m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
			if strings.Contains(next, "doe") || strings.Contains(next, "Doe") {
				t.Fatalf("next-page link carries patient data: %s", next)
			}
		}
	}
	if got := len(all); got != 5 || all[4] != jane.intakeID || pages < 3 {
		t.Errorf("paging through status=new: %v", all)
	}
	// A search pages by GET links that name its saved search, never its
	// text.
	var searched []string
	rec := c.search(url.Values{"q": {"doe"}, "limit": {"2"}})
	for pages = 0; pages < 10; pages++ {
		searched = append(searched, listed(rec.Body.String())...)
		m := regexp.MustCompile(`href="(/submissions\?[^"]*cursor=[^"]*)"`).FindStringSubmatch(rec.Body.String())
		if m == nil {
			break
		}
		next := strings.ReplaceAll(m[1], "&amp;", "&")
		if !strings.Contains(next, "search=") || strings.Contains(strings.ToLower(next), "doe") {
			t.Fatalf("next page of a search: %s", next)
		}
		rec = c.get(next)
	}
	if len(searched) != 5 || pages != 2 {
		t.Errorf("paging a search: %d rows in %d pages, want 5 in 3", len(searched), pages+1)
	}

	// Malformed input: 422 with a message, never a 500 or an empty list.
	cursor := a.srv.subs.EncodeCursor(Cursor{ReceivedAt: day, ID: 3})
	for _, path := range []string{
		"/submissions?status=lost", "/submissions?form=nope", "/submissions?from=yesterday", "/submissions?to=2026-13-01",
		"/submissions?from=2026-04-05&to=2026-04-01", "/submissions?sort=sideways", "/submissions?cursor=garbage",
		"/submissions?cursor=" + cursor[:len(cursor)-2] + "AA", "/submissions?sort=oldest&cursor=" + cursor,
		"/submissions?q=doe",
	} {
		if rec := c.get(path); rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("GET %s: %d, want 422", path, rec.Code)
		}
	}
	for _, q := range []string{"!!!", "one two three four five six seven eight nine", strings.Repeat("x", 201)} {
		if rec := c.post("/submissions", url.Values{"q": {q}}); rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("search %.20q: %d, want 422", q, rec.Code)
		}
	}
	if rec := c.get("/submissions?cursor=" + cursor); rec.Code != http.StatusOK {
		t.Errorf("a valid cursor: %d", rec.Code)
	}
	// The audit log records what was listed, never what was searched for.
	if text := a.auditText(t); strings.Contains(strings.ToLower(text), "doe") || strings.Contains(text, "ibuprofen") || strings.Contains(text, ann.receipt) {
		t.Errorf("the audit log holds patient content")
	}
	if a.countAudit(t, "submission.list") == 0 {
		t.Errorf("list views are not audited")
	}
}

// TestDetailReviewAttachments covers the detail view (labels from the
// Questionnaire), the review workflow with notes, and attachment downloads.
func TestDetailReviewAttachments(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	doc := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	viewer := a.newUser(t, "view@clinic.example", true, true, RoleViewer)
	html := forms.Value{ValueAttachment: &forms.Attachment{ContentType: "text/html", Data: []byte("<script>alert(1)</script>"), Title: "../../etc/x.html"}}
	png := forms.Value{ValueAttachment: &forms.Attachment{ContentType: "image/png", Data: []byte("\x89PNG..."), Title: "knee.png"}}
	s := a.insert(t, "symptoms", forms.Answers{"complaint": {str("Swollen knee")}, "documents": {png, html}}, a.clock.now(), ReviewNew)

	c := a.client()
	c.login(t, doc)
	rec := c.get("/submissions/" + s.intakeID)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "What is the main problem you would like help with?") || !strings.Contains(body, "Swollen knee") {
		t.Fatalf("detail: %d, labels and answers shown: %v", rec.Code, strings.Contains(body, "Swollen knee"))
	}
	if a.countAudit(t, "submission.view") != 1 {
		t.Errorf("the view is not audited")
	}
	if rec := c.get("/submissions/00000000-0000-4000-8000-999999999999"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown submission: %d", rec.Code)
	}
	if rec := c.get("/submissions/1"); rec.Code != http.StatusNotFound {
		t.Errorf("sequential id in the URL: %d, want 404 (ids are opaque)", rec.Code)
	}

	// Downloads: always an attachment; unsafe types as octet-stream.
	dl := c.get("/submissions/" + s.intakeID + "/attachments/documents/1")
	if dl.Code != http.StatusOK || dl.Header().Get("Content-Type") != "application/octet-stream" ||
		!strings.HasPrefix(dl.Header().Get("Content-Disposition"), "attachment") || strings.Contains(dl.Header().Get("Content-Disposition"), "/") ||
		!strings.Contains(dl.Header().Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("HTML attachment: %d %q %q", dl.Code, dl.Header().Get("Content-Type"), dl.Header().Get("Content-Disposition"))
	}
	dl = c.get("/submissions/" + s.intakeID + "/attachments/documents/0")
	if dl.Header().Get("Content-Type") != "image/png" || dl.Header().Get("Content-Disposition") != `attachment; filename=attachment-1.png` || dl.Body.String() != "\x89PNG..." {
		t.Errorf("PNG attachment: %q %q", dl.Header().Get("Content-Type"), dl.Header().Get("Content-Disposition"))
	}
	for _, p := range []string{"documents/2", "documents/-1", "complaint/0", "nothing/0", "documents/x"} {
		if rec := c.get("/submissions/" + s.intakeID + "/attachments/" + p); rec.Code != http.StatusNotFound {
			t.Errorf("attachment %s: %d, want 404", p, rec.Code)
		}
	}
	if a.countAudit(t, "attachment.download") != 2 {
		t.Errorf("downloads audited %d times, want 2", a.countAudit(t, "attachment.download"))
	}

	// Review: new → in review → done, with a note; bad moves refused.
	move := func(from, to string) int {
		return c.post("/submissions/"+s.intakeID+"/status", url.Values{"from": {from}, "to": {to}}).Code
	}
	if code := move("new", "done"); code != http.StatusUnprocessableEntity {
		t.Errorf("new → done: %d, want 422", code)
	}
	if code := move("new", "in_review"); code != http.StatusSeeOther {
		t.Errorf("new → in review: %d", code)
	}
	if code := move("new", "in_review"); code != http.StatusConflict {
		t.Errorf("stale move: %d, want 409", code)
	}
	if code := move("in_review", "bogus"); code != http.StatusUnprocessableEntity {
		t.Errorf("unknown status: %d, want 422", code)
	}
	if rec := c.post("/submissions/"+s.intakeID+"/notes", url.Values{"body": {"Refer to physio"}}); rec.Code != http.StatusSeeOther {
		t.Errorf("note: %d", rec.Code)
	}
	if rec := c.post("/submissions/"+s.intakeID+"/notes", url.Values{"body": {"  "}}); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("empty note: %d, want 422", rec.Code)
	}
	if code := move("in_review", "done"); code != http.StatusSeeOther {
		t.Errorf("in review → done: %d", code)
	}
	body = c.get("/submissions/" + s.intakeID).Body.String()
	if !strings.Contains(body, "Refer to physio") || !strings.Contains(body, `id="status">Done`) {
		t.Errorf("detail after review lacks the note or the status")
	}

	// The viewer's limited view: answers, no notes, no downloads, no review.
	v := a.client()
	v.login(t, viewer)
	body = v.get("/submissions/" + s.intakeID).Body.String()
	if !strings.Contains(body, "Swollen knee") || strings.Contains(body, "Refer to physio") || strings.Contains(body, "/attachments/") || strings.Contains(body, "/status") {
		t.Errorf("viewer sees more than the limited view")
	}

	// Audit entries hold ids and actions only.
	text := a.auditText(t)
	for _, content := range []string{"Swollen", "knee", "physio", s.receipt, "alert"} {
		if strings.Contains(text, content) {
			t.Errorf("the audit log holds patient content %q", content)
		}
	}
	if head, err := a.srv.audit.Verify(context.Background()); err != nil || head.Entries == 0 {
		t.Errorf("audit chain: %d entries, %v", head.Entries, err)
	}
}

// TestExportFromTheApp: CSV and FHIR NDJSON downloads, filtered like the
// list and audited.
func TestExportFromTheApp(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, u)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	a.insert(t, "new-patient", patient("Doe", "Jane", ""), day, ReviewNew)
	a.insert(t, "new-patient", patient("Doe", "John", ""), day.Add(48*time.Hour), ReviewDone)
	a.insert(t, "symptoms", forms.Answers{"complaint": {str("Cough")}}, day, ReviewNew)

	rec := c.export(url.Values{"format": {"csv"}, "form": {"new-patient"}, "status": {"new"}})
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Disposition"), "attachment; filename=airlock-export-") {
		t.Fatalf("CSV export: %d %q", rec.Code, rec.Header().Get("Content-Disposition"))
	}
	rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil || len(rows) != 2 || !strings.Contains(strings.Join(rows[1], ","), "Jane") {
		t.Errorf("CSV export rows: %v (%v)", rows, err)
	}
	rec = c.export(url.Values{"format": {"ndjson"}, "from": {"2026-04-02"}})
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if rec.Code != http.StatusOK || len(lines) != 1 || !strings.Contains(lines[0], `"resourceType":"QuestionnaireResponse"`) || !strings.Contains(lines[0], "John") {
		t.Errorf("NDJSON export: %d %v", rec.Code, lines)
	}
	if a.countAudit(t, "export") != 2 {
		t.Errorf("exports audited %d times, want 2", a.countAudit(t, "export"))
	}
	for _, form := range []url.Values{{"format": {"xml"}}, {"format": {"csv"}, "status": {"nope"}}, {"format": {"csv"}, "q": {"doe"}}} {
		rec := c.export(form)
		if rec.Code != http.StatusUnprocessableEntity || rec.Header().Get("Content-Disposition") != "" {
			t.Errorf("export %v: %d %q, want 422 and no download", form, rec.Code, rec.Header().Get("Content-Disposition"))
		}
	}
}

// TestStaffAdministration: the two-admin rule for creating, approving and
// changing accounts; an admin sees no patient data.
func TestStaffAdministration(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	alice := a.newUser(t, "alice@clinic.example", true, true, RoleAdmin)
	bob := a.newUser(t, "bob@clinic.example", true, true, RoleAdmin)
	ac, bc := a.client(), a.client()
	ac.login(t, alice)
	bc.login(t, bob)

	rec := ac.post("/admin/staff", url.Values{"email": {"carol@clinic.example"}, "role": {"clinician"}})
	if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `id="create-code"`) || strings.Contains(rec.Body.String(), "otpauth") {
		t.Fatalf("create: %d, want 201 showing the create code and no TOTP secret", rec.Code)
	}
	var carol int64
	a.owner.QueryRow(t.Context(), `SELECT id FROM staff WHERE email = 'carol@clinic.example'`).Scan(&carol)
	approve := func(c *client, id int64) int { return c.post(fmt.Sprintf("/admin/staff/%d/approve", id), nil).Code }
	if code := approve(ac, carol); code != http.StatusForbidden {
		t.Errorf("the creator approved: %d, want 403", code)
	}
	if code := approve(bc, carol); code != http.StatusOK {
		t.Errorf("another admin approves (and is shown the approve code): %d", code)
	}
	if code := approve(bc, carol); code != http.StatusConflict {
		t.Errorf("approve twice: %d, want 409", code)
	}
	// Nobody changes or approves themselves.
	if rec := ac.post(fmt.Sprintf("/admin/staff/%d/roles", alice.id), url.Values{"role": {"admin", "clinician"}}); rec.Code != http.StatusForbidden {
		t.Errorf("own roles: %d, want 403", rec.Code)
	}
	// Granting a role puts the account back to pending, logs it out, and
	// needs the other admin.
	carolUser := &staffUser{id: carol}
	_ = carolUser
	if rec := ac.post(fmt.Sprintf("/admin/staff/%d/roles", bob.id), url.Values{"role": {"admin", "clinician"}}); rec.Code != http.StatusSeeOther {
		t.Errorf("set roles: %d", rec.Code)
	}
	if rec := bc.get("/admin/staff"); rec.Code != http.StatusUnauthorized {
		t.Errorf("changed account still logged in: %d", rec.Code)
	}
	if rec := ac.post(fmt.Sprintf("/admin/staff/%d/roles", bob.id), url.Values{"role": {"superuser"}}); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("unknown role: %d, want 422", rec.Code)
	}
	if rec := ac.post("/admin/staff", url.Values{"email": {"not an email"}, "role": {"viewer"}}); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("bad email: %d, want 422", rec.Code)
	}
	if rec := ac.post("/admin/staff", url.Values{"email": {"carol@clinic.example"}, "role": {"viewer"}}); rec.Code != http.StatusConflict {
		t.Errorf("duplicate email: %d, want 409", rec.Code)
	}
	if rec := ac.post("/admin/staff/999/approve", nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown account: %d, want 404", rec.Code)
	}
	// A pure admin has no patient data.
	if rec := ac.get("/submissions"); rec.Code != http.StatusForbidden {
		t.Errorf("admin reads submissions: %d, want 403", rec.Code)
	}
	for _, action := range []string{"staff.create", "staff.approve", "staff.roles"} {
		if a.countAudit(t, action) == 0 {
			t.Errorf("%s not audited", action)
		}
	}
}

// TestStaffAddCommand: the first admin is active; later accounts, admins
// too, wait for approval; bad flags are usage errors.
func TestStaffAddCommand(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	env := map[string]string{"CLINICAL_DATABASE_URL": a.appURL, "CLINICAL_SECRET_KEY": a.secret.String()}
	run := func(args ...string) (string, error) {
		var out, errb strings.Builder
		err := Run(context.Background(), cliEnv(env, &out, &errb, args...))
		return out.String(), err
	}
	out, err := run("staff", "add", "--email", "Boss@Clinic.example", "--role", "admin")
	if err != nil || !strings.Contains(out, "status:         active") {
		t.Fatalf("first admin: %v\n%s", err, out)
	}
	create := regexp.MustCompile(`create code:\s+(\S+)`).FindStringSubmatch(out)
	approve := regexp.MustCompile(`approve code:\s+(\S+)`).FindStringSubmatch(out)
	if create == nil || approve == nil || strings.Contains(out, "otpauth") || strings.Contains(out, "password:") {
		t.Fatalf("the first admin's enrolment codes are not printed, or something that logs in is:\n%s", out)
	}
	out, err = run("staff", "add", "--email", "second@clinic.example", "--role", "admin")
	if err != nil || !strings.Contains(out, "pending") || !strings.Contains(out, "create code:") || strings.Contains(out, "approve code:") {
		t.Errorf("second admin: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"staff", "add", "--email", "x@clinic.example", "--role", "god"},
		{"staff", "add", "--email", "nope", "--role", "viewer"},
		{"staff", "add", "--email", "boss@clinic.example", "--role", "viewer"},
		{"staff", "remove"},
		{"staff", "add", "--email", "y@clinic.example"},
	} {
		if _, err := run(args...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d, want 2", args, exitCode(err))
		}
	}
	// Nothing printed logs in; the first admin enrols with both codes.
	c := a.client()
	for _, pw := range []string{create[1], approve[1]} {
		if rec := c.post("/login", url.Values{"email": {"boss@clinic.example"}, "password": {pw}}); rec.Code != http.StatusUnauthorized {
			t.Errorf("login with a printed code: %d, want 401", rec.Code)
		}
	}
	rec := c.post("/enrol/start", url.Values{"email": {"boss@clinic.example"}, "create_code": {create[1]}, "approve_code": {approve[1]}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/enrol" {
		t.Errorf("first admin enrolment: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

// TestExportFromTheAppLeavesOutSuperseded: the app's export holds only
// current submissions unless "include superseded" is ticked.
func TestExportFromTheAppLeavesOutSuperseded(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.newUser(t, "doc@clinic.example", true, true, RoleClinician)
	c := a.client()
	c.login(t, u)
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	old := a.insert(t, "new-patient", patient("Doe", "Jane", ""), day, ReviewNew)
	cur := a.insert(t, "new-patient", patient("Doe", "Janet", ""), day.Add(time.Hour), ReviewNew)
	if _, err := a.owner.Exec(t.Context(), `UPDATE submissions SET superseded_by = $1 WHERE id = $2`, cur.id, old.id); err != nil {
		t.Fatal(err)
	}
	rec := c.export(url.Values{"format": {"csv"}})
	rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if rec.Code != http.StatusOK || err != nil || len(rows) != 2 || rows[1][0] != cur.intakeID {
		t.Errorf("default export: %d %v (%v), want only the current submission", rec.Code, rows, err)
	}
	rec = c.export(url.Values{"format": {"ndjson"}, "superseded": {"1"}})
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if rec.Code != http.StatusOK || len(lines) != 2 || !strings.Contains(lines[0], `"status":"amended"`) || !strings.Contains(lines[1], `"status":"completed"`) {
		t.Errorf("export with superseded: %d %v", rec.Code, lines)
	}
	// The list's "Show superseded" box is the export's too: the export
	// button submits the filter form.
	if page := c.get("/submissions?superseded=1").Body.String(); !strings.Contains(page, `id="superseded" name="superseded" type="checkbox" value="1" checked`) ||
		!strings.Contains(page, `form="search" formaction="/export"`) {
		t.Errorf("the list's export does not take the filter form's superseded box")
	}
}
