package textsearch

import (
	"slices"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
)

func TestWords(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"  ", ""},
		{"Smith-Jones", "smith jones"},
		{"O'Brien", "o brien"},
		{"ann@example.org", "ann example org"},
		{"1980-05-17", "1980 05 17"},
		{"Zoë MÜLLER, Ngāti", "zoë müller ngāti"},
		{"ibuprofen 1,5 mg; twice daily.", "ibuprofen 1 5 mg twice daily"},
		{"fam12 giv3", "fam12 giv3"},
		{"'a' & !b:* | c", "a b c"}, // tsquery syntax is never a word
	}
	for _, tt := range tests {
		if got := strings.Join(Words(tt.in), " "); got != tt.want {
			t.Errorf("Words(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAnswerWords(t *testing.T) {
	t.Parallel()
	s := func(v string) forms.Value { return forms.Value{ValueString: &v} }
	date := "1971-07-04"
	n := int64(42)
	a := forms.Answers{
		"family-name": {s("Smith-Jones")},
		"given-name":  {s("Ann"), s("ann")},
		"birth-date":  {{ValueDate: &date}},
		"severity":    {{ValueCoding: &forms.Coding{System: "http://snomed.info/sct", Code: "6736007", Display: "Moderate"}}},
		"scan":        {{ValueAttachment: &forms.Attachment{Title: "knee_xray.pdf", Data: []byte("secretdata")}}},
		"units":       {{ValueInteger: &n}},
		"long":        {s("short " + strings.Repeat("ü", MaxWordRunes+10) + " " + strings.Repeat("ü", MaxWordRunes) + "y")},
		// A repeating group: the words of each instance count too.
		"meds": {{Instance: forms.Answers{"name": {s("Warfarin")}}}, {Instance: forms.Answers{"name": {s("Zopiclone")}}}},
	}
	got := strings.Join(AnswerWords(a), " ")
	// Sorted and distinct; the code, the system, the attachment's data and
	// numbers are not text; a long word is cut to MaxWordRunes (two that
	// differ only after that are one word).
	want := "04 07 1971 ann jones knee moderate pdf short smith warfarin xray zopiclone " + strings.Repeat("ü", MaxWordRunes)
	if got != want {
		t.Errorf("AnswerWords = %q, want %q", got, want)
	}
	if got := AnswerWords(nil); len(got) != 0 {
		t.Errorf("AnswerWords(nil) = %q", got)
	}
}

func TestAnswerWordsReadsAtMostMaxText(t *testing.T) {
	t.Parallel()
	s := func(v string) forms.Value { return forms.Value{ValueString: &v} }
	// Item "a" fills the budget exactly; "b" comes after it in linkId order.
	a := forms.Answers{
		"a": {s(strings.Repeat("é ", MaxText/3-2) + strings.Repeat("z", MaxText-3*(MaxText/3-2)-4) + " end")},
		"b": {s("beyond")},
	}
	got := strings.Join(AnswerWords(a), " ")
	if strings.Contains(got, "beyond") || !strings.Contains(got, "end") {
		t.Errorf("AnswerWords over the text budget: %.40q...", got)
	}
}

// FuzzWords: Words gives what the general rule (lower-case, then the runs
// of letters and digits) gives, for ASCII text (its fast path) and any
// other.
func FuzzWords(f *testing.F) {
	for _, s := range []string{"", "Ann-Marie O'Neil, 1980-05-17", "ann@example.org", "ÄRZTIN Zoë", "x\x00Y\x7fZ", "İstanbul K", "a\xffb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Words(s), unicodeWords(s); !slices.Equal(got, want) {
			t.Fatalf("Words(%q) = %q, want %q", s, got, want)
		}
	})
}
