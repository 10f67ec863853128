package clinical

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/textsearch"
)

// TestSearchWordSemantics pins what a text search finds: a typed word
// matches a word of the answers (cut the same way on both sides: runs of
// letters and digits, lower-cased), a word of three or more characters as a
// prefix, shorter ones exactly, and every typed word must match. It checks a
// row stored with its words made in Go (as transfer stores it) and one
// inserted without them (the database's fallback trigger).
func TestSearchWordSemantics(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	date := "1980-05-17"
	answers := forms.Answers{
		"family-name": {str("Smith-Jones")},
		"given-name":  {str("Zoë")},
		"email":       {str("ann@example.org")},
		"birth-date":  {{ValueDate: &date}},
		"severity":    {{ValueCoding: &forms.Coding{System: "http://snomed.info/sct", Code: "6736007", Display: "Moderate"}}},
		"scan":        {{ValueAttachment: &forms.Attachment{Title: "knee_xray.pdf"}}},
		"note":        {str("Pneumonoultramicroscopicsilicovolcanoconiosis" + strings.Repeat("q", 40) + "tail")},
	}
	day := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	inGo := a.insert(t, "new-patient", answers, day, ReviewNew)
	// The same answers inserted without words: the fallback computes them.
	b, _ := json.Marshal(answers)
	var bySQL int64
	if err := a.owner.QueryRow(ctx, `INSERT INTO submissions
  (intake_id, succession, receipt, form_id, form_version, key_id, submitted_at, received_at, answers)
VALUES ('00000000-0000-4000-8000-999999999999', 999999, $1, 'new-patient', '1', '0123456789abcdef', $2, $2, $3) RETURNING id`,
		testReceipt(999999), day.Add(time.Hour), b).Scan(&bySQL); err != nil {
		t.Fatal(err)
	}
	other := a.insert(t, "new-patient", patient("Smithers", "Jo", "ibuprofen"), day.Add(2*time.Hour), ReviewNew)
	both := []int64{bySQL, inGo.id}
	tests := []struct {
		q    string
		want []int64
	}{
		{"smith", []int64{bySQL, inGo.id, other.id}},
		{"jones", both},
		{"Smith-Jones", both},
		{"SMITH jones", both},
		{"zoë", both},
		{"ZOË", both},
		{"example", both},
		{"ann@example.org", both},
		{"1980-05-17", both},
		{"05", both},
		{"moder", both},
		{"xray", both},
		{"knee_xray.pdf", both},
		{"smithers", []int64{other.id}},
		{"jo", []int64{other.id}}, // two letters: the whole word only
		{"mith", nil},             // a prefix, never the middle of a word
		{"smithy", nil},           // longer than the word
		{"zo", nil},               // two letters, not a whole word
		{"smith ibuprofen", []int64{other.id}},
		{"6736007", nil}, // a code is not text; its display is
		{"snomed", nil},
	}
	for _, tt := range tests {
		page, err := a.srv.subs.List(ctx, ListFilter{Text: tt.q, Oldest: true})
		if err != nil {
			t.Fatalf("search %q: %v", tt.q, err)
		}
		var got []int64
		for _, r := range page.Rows {
			got = append(got, r.ID)
		}
		want := slices.Clone(tt.want)
		slices.Sort(want)
		slices.Sort(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("search %q found %v, want %v", tt.q, got, want)
		}
	}
}

// TestSearchWordsAgreeWithTheFallback: the database's fallback for a row
// inserted without words (submission_words, migration 000100) cuts answers
// as textsearch does in Go, for the scripts names here are written in.
func TestSearchWordsAgreeWithTheFallback(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	for _, text := range []string{
		"Smith-Jones", "O'Brien", "ann@example.org", "1980-05-17", "Zoë Müller", "Ngāti Porou",
		"Łukasz Żółć", "Ødegård Åsa", "Дмитрий Иванов", "Παπαδόπουλος", "ibuprofen 1,5 mg; twice daily.",
		"knee_xray.pdf", "   ", "", strings.Repeat("Ab", 40) + " " + strings.Repeat("Ab", 33),
	} {
		answers := forms.Answers{"a": {str(text)}, "b": {str("second item")}}
		b, _ := json.Marshal(answers)
		var got []string
		if err := a.owner.QueryRow(context.Background(), `SELECT tsvector_to_array(submission_words($1))`, b).Scan(&got); err != nil {
			t.Fatal(err)
		}
		want := textsearch.AnswerWords(answers)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%q: the database's words %q, Go's %q", text, got, want)
		}
	}
}
