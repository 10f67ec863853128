// Package textsearch is the one definition of the words a stage-2
// submission is found by. transfer computes a submission's words when it
// delivers it (clinical stores them as the tsvector `search`), and clinical's
// list splits what staff type with the same function, so a document and a
// query are cut into words the same way: lower-cased runs of letters and
// digits. "Smith-Jones" is found by "smith" and by "jones",
// "ann@example.org" by "example", "1980-05-17" by "05".
//
// Doing this in Go rather than with Postgres' to_tsvector takes the parser
// off the clinical database's insert path, where it was most of the cost of
// delivering a submission (about 40 µs a row for 1.2 KB of answer text,
// 100 µs for prose; docs/transfer.md).
package textsearch

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/airlockhq/airlock/shared/forms"
)

// MaxWordRunes is the longest word a search may type, and the length a
// document's longer words are cut to. Both together keep every match: a
// typed word of three or more runes matches as a prefix, and a prefix of
// at most MaxWordRunes runes is a prefix of a word exactly when it is a
// prefix of the word's first MaxWordRunes runes; a shorter typed word must
// equal a whole word, which a cut word (MaxWordRunes long) never does. Cut
// words keep the stored vector, its index entries and the row small.
const MaxWordRunes = 64

// MaxText bounds, in bytes, the answer text one submission's words are taken
// from (attachment data is never searched, only its title).
const MaxText = 100_000

// Words returns the lower-cased runs of letters and digits in s, in order,
// repeats included.
func Words(s string) []string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return unicodeWords(s)
		}
	}
	// All ASCII (most answers): the letters and digits are [A-Za-z0-9],
	// lower-casing is per byte, and a word already in lower case is a
	// slice of s. transfer takes the words of every submission it moves.
	var words []string
	for i := 0; i < len(s); {
		if !asciiWordByte(s[i]) {
			i++
			continue
		}
		start, upper := i, false
		for ; i < len(s) && asciiWordByte(s[i]); i++ {
			upper = upper || 'A' <= s[i] && s[i] <= 'Z'
		}
		w := s[start:i]
		if upper {
			w = strings.ToLower(w)
		}
		words = append(words, w)
	}
	return words
}

func asciiWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// unicodeWords is Words for any text.
func unicodeWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// AnswerWords returns the distinct words of a submission's text answers, sorted:
// free text, the display of chosen codes, dates and attachment titles, those
// inside the instances of repeating groups too, from at most MaxText bytes
// of them (items in linkId order), each cut to MaxWordRunes.
func AnswerWords(a forms.Answers) []string {
	var words []string
	budget := MaxText
	answerWords(a, &words, &budget)
	slices.Sort(words)
	return slices.Compact(words)
}

// answerWords adds the words of a's answers, and of the answers within each
// instance of a repeating group (Value.Instance), while budget lasts.
func answerWords(a forms.Answers, words *[]string, budget *int) {
	ids := make([]string, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, v := range a[id] {
			for _, t := range texts(v) {
				if *budget <= 0 {
					return
				}
				if len(t) > *budget {
					t = t[:*budget]
					for !utf8.ValidString(t) { // do not cut a character in two
						t = t[:len(t)-1]
					}
				}
				*budget -= len(t)
				for _, w := range Words(t) {
					*words = append(*words, cut(w))
				}
			}
			if len(v.Instance) > 0 {
				answerWords(v.Instance, words, budget)
			}
		}
	}
}

// cut returns w's first MaxWordRunes runes.
func cut(w string) string {
	n := 0
	for i := range w {
		if n == MaxWordRunes {
			return w[:i]
		}
		n++
	}
	return w
}

// texts returns the searchable text of one answer.
func texts(v forms.Value) []string {
	var out []string
	for _, p := range []*string{v.ValueString, v.ValueDate} {
		if p != nil {
			out = append(out, *p)
		}
	}
	if v.ValueCoding != nil && v.ValueCoding.Display != "" {
		out = append(out, v.ValueCoding.Display)
	}
	if v.ValueAttachment != nil && v.ValueAttachment.Title != "" {
		out = append(out, v.ValueAttachment.Title)
	}
	return out
}
