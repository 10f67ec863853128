package forms

import "unicode"

// MsgFormatCharacters is the field error for text holding Unicode format
// characters.
const MsgFormatCharacters = "must not contain invisible formatting characters (such as right-to-left overrides, isolates, zero-width characters or byte order marks)"

// checkFormatChars refuses text holding a Unicode format character
// (general category Cf): bidi overrides, embeddings and isolates
// (U+202A–U+202E, U+2066–U+2069), zero-width characters (U+200B–U+200F),
// the byte order mark (U+FEFF), soft hyphens and the like. They draw
// nothing, or reorder what is drawn, so a value can display as something it
// is not: a right-to-left override makes "results_fdp.html" display as
// "resultslmth.pdf". Nothing a patient types needs them. It returns the
// field error, or "".
func checkFormatChars(s string) string {
	for _, r := range s {
		if unicode.Is(unicode.Cf, r) {
			return MsgFormatCharacters
		}
	}
	return ""
}
