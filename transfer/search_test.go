package transfer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/textsearch"
)

// TestPassStoresTheCarriedAnswersSearchWords: transfer delivers each
// submission with its search words (shared/textsearch over the carried
// answers), so clinical's database does not run its text parser on insert.
func TestPassStoresTheCarriedAnswersSearchWords(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	raw := map[string]any{}
	for k, v := range newPatientAnswers {
		raw[k] = v
	}
	raw["allergy-details"] = "Wasp stings; Smith-Jones@example.org said so"
	s := f.submit("new-patient", raw, nil)
	if sum := f.pass(); sum.Moved != 1 {
		t.Fatalf("pass moved %d, want 1", sum.Moved)
	}
	q, a := f.answers("new-patient", raw)
	want := textsearch.AnswerWords(q.Carried(a))
	var got []string
	err := f.clinicalOwner.QueryRow(context.Background(),
		`SELECT tsvector_to_array(search) FROM submissions WHERE intake_id = $1::uuid`, s.SubmissionID).Scan(&got)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("search words %q, want %q", got, want)
	}
	for _, w := range []string{"quillfeather", "ysolde", "jones", "example", "1971", "07"} {
		if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
			t.Errorf("search words %q lack %q", got, w)
		}
	}
}
