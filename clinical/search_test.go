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
// inserted without words (submission_words, migrations 000100 and 000101)
// cuts answers as textsearch does in Go, repeating groups included, for the
// scripts names here are written in.
func TestSearchWordsAgreeWithTheFallback(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	for _, text := range []string{
		"Smith-Jones", "O'Brien", "ann@example.org", "1980-05-17", "Zoë Müller", "Ngāti Porou",
		"Łukasz Żółć", "Ødegård Åsa", "Дмитрий Иванов", "Παπαδόπουλος", "ibuprofen 1,5 mg; twice daily.",
		"knee_xray.pdf", "   ", "", strings.Repeat("Ab", 40) + " " + strings.Repeat("Ab", 33),
	} {
		date := "2020-01-02"
		answers := forms.Answers{"a": {str(text)}, "b": {str("second item")},
			// A repeating group: its instances carry answers of their own.
			"meds": {{Instance: forms.Answers{"name": {str("Aspirin " + text)}, "since": {{ValueDate: &date}}}},
				{Instance: forms.Answers{"severity": {{ValueCoding: &forms.Coding{Code: "24484000", Display: "Severe"}}}}}}}
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

// TestSearchPlansFindTheSameRows: a text search through the index, through
// the index on its rarer words only, and walking in page order return the
// same rows, page by page, with filters and either sort.
func TestSearchPlansFindTheSameRows(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	day := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	drugs := []string{"ibuprofen daily", "metformin twice daily", "ibuprofen as needed"}
	for i := range 40 {
		a.insert(t, "new-patient", patient(fmt.Sprintf("Fam%d", i%7), fmt.Sprintf("Giv%d", i%3), drugs[i%3]),
			day.Add(time.Duration(i)*time.Hour), ReviewStatuses[i%4])
	}
	st := a.srv.subs
	force := func(freq map[string]float64, rows float64) {
		st.planner.mu.Lock()
		st.planner.freq, st.planner.minFreq, st.planner.rows, st.planner.at = freq, 0.01, rows, st.now()
		st.planner.mu.Unlock()
	}
	// Every page of a search, as intake ids.
	pages := func(f ListFilter) []string {
		t.Helper()
		f.Limit = 4
		var got []string
		for range 20 {
			page, err := st.List(ctx, f)
			if err != nil {
				t.Fatalf("%+v: %v", f, err)
			}
			for _, r := range page.Rows {
				got = append(got, r.IntakeID)
			}
			if page.Next == nil {
				return got
			}
			f.After = page.Next
		}
		t.Fatalf("%+v: more than 20 pages", f)
		return nil
	}
	plans := []struct {
		name string
		freq map[string]float64
		rows float64
		want string // the plan planSearch picks for "fam1 ibuprofen"
	}{
		{"no statistics: every word is rare", map[string]float64{}, 40, "index"},
		{"every word common: walk", map[string]float64{"fam1": 0.5, "ibuprofen": 0.6, "daily": 0.7, "giv1": 0.5, "needed": 0.3}, 1e6, "walk"},
		{"one common word, checked on the rows the rare one finds", map[string]float64{"ibuprofen": 0.6, "daily": 0.7}, 1e5, "index"},
	}
	filters := []ListFilter{
		{Text: "ibuprofen"},
		{Text: "fam1 ibuprofen", Oldest: true},
		{Text: "fam1 ibuprofen"},
		{Text: "daily giv1", Status: ReviewDone},
		{Text: "ibu", FormID: "new-patient", From: day.Add(24 * time.Hour), To: day.Add(24 * time.Hour)},
		{Text: "needed fam"},
	}
	var first [][]string
	for i, p := range plans {
		force(p.freq, p.rows)
		terms, _ := searchTerms("fam1 ibuprofen")
		if got := map[bool]string{true: "walk", false: "index"}[planSearch(terms, p.freq, 0.01, p.rows, 5).walk()]; got != p.want {
			t.Errorf("%s: planSearch picks %s, want %s", p.name, got, p.want)
		}
		for j, f := range filters {
			got := pages(f)
			if i == 0 {
				if len(got) == 0 {
					t.Fatalf("%+v finds nothing: the comparison would prove nothing", f)
				}
				first = append(first, got)
				continue
			}
			if strings.Join(got, ",") != strings.Join(first[j], ",") {
				t.Errorf("%s: %+v found %v, without statistics %v", p.name, f, got, first[j])
			}
		}
	}
}

// TestPlanSearch: the rarest word decides between the index and a walk, at
// sqrt(page size x rows) matches; a word not in the statistics is rarer
// than every word in them; a common prefix adds up the words it covers.
func TestPlanSearch(t *testing.T) {
	t.Parallel()
	freq := map[string]float64{"daily": 0.3, "giv10": 0.004, "giv11": 0.004, "giv1": 0.004, "dose1": 0.05}
	const minFreq, rows, page = 0.0005, 1e6, 51 // walk above sqrt(51e6) = 7141 matches: a share of 0.71%
	for _, tt := range []struct {
		q     string
		index string // the words in the index condition; "" for a walk
	}{
		{"daily", ""},
		{"smith", "smith"},             // not listed: rare
		{"giv1", ""},                   // a prefix: 0.4% + 0.4% + 0.4% = 1.2%
		{"giv11", "giv11"},             // 0.4%
		{"daily smith", "smith"},       // the common word is checked on the rows smith finds
		{"dose1 giv11", "dose1 giv11"}, // both under indexShare, dose1 under 25 x giv11: both collected
		{"smith giv11", "smith giv11"}, // 0.4% <= 25 x 0.025%
		{"smith giv1", "smith"},        // 1.2% > 25 x 0.025%: checked on smith's rows
	} {
		terms, err := searchTerms(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		p := planSearch(terms, freq, minFreq, rows, page)
		var got []string
		for i, in := range p.index {
			if in {
				got = append(got, terms[i].word)
			}
		}
		if strings.Join(got, " ") != tt.index {
			t.Errorf("%q: index on %q, want %q", tt.q, got, tt.index)
		}
	}
}
