package clinical_test

import (
	"encoding/csv"
	"strings"
	"testing"
)

// TestExportCSVDefusesFormulasAfterAnySeparator: a spreadsheet that splits
// the CSV on ; TAB | (or a line break inside a quoted cell) instead of the
// comma starts a cell after each of them. No such cell may start with a
// formula trigger, whatever the patient typed (the review's `x;=1+41` and
// `aspirin<TAB>=2+40` became formulas in LibreOffice).
func TestExportCSVDefusesFormulasAfterAnySeparator(t *testing.T) {
	t.Parallel()
	f := newExportFixture(t)
	evil := map[string]string{
		"family-name":     "x;=1+41",
		"given-name":      "a|@SUM(1)",
		"medications":     "aspirin\t=2+40",
		"insurer":         "line one\n-2+3\r+4",
		"allergy-details": `a, +1; "=1+1; ;  =2`,
	}
	for item, v := range evil {
		f.exec(t, `UPDATE submissions SET answers = jsonb_set(answers, ARRAY[$1::text], jsonb_build_array(jsonb_build_object('valueString', $2::text)))
WHERE id = $3`, item, v, f.patient.id)
	}
	stdout, stderr, err := runClinical(t, f.env, "export", "--format", "csv", "--form", "new-patient")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	// Read with the comma, the export's own separator: what changed is
	// exactly an apostrophe before each trigger where a cell may start.
	records, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	row := map[string]string{}
	for i, col := range records[0] {
		row[col] = records[1][i]
	}
	for col, want := range map[string]string{
		"family-name":     "x;'=1+41",
		"given-name":      "a|'@SUM(1)",
		"medications":     "aspirin\t'=2+40",
		"insurer":         "line one\n'-2+3\r'+4",
		"allergy-details": `a, '+1; "'=1+1; ;  '=2`,
	} {
		if row[col] != want {
			t.Errorf("column %s = %q, want %q", col, row[col], want)
		}
	}
	// Split as a spreadsheet told another separator would, ignoring the
	// comma's quoting: no cell starts with a trigger.
	for _, sep := range []string{",", ";", "\t", "|"} {
		for _, line := range strings.FieldsFunc(stdout, func(r rune) bool { return r == '\n' || r == '\r' }) {
			for _, cell := range strings.Split(line, sep) {
				c := strings.TrimLeft(cell, ` "`)
				if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
					t.Errorf("split on %q, a cell starts like a formula: %q (line %q)", sep, cell, line)
				}
			}
		}
	}
}
