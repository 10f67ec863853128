package forms

import (
	"unicode"
	"unicode/utf8"

	"github.com/airlockhq/airlock/shared/locale"
)

// MsgFormatCharacters is the key of the field error for text holding
// Unicode format characters.
const MsgFormatCharacters = "forms.format_characters"

// checkFormatChars refuses text holding a Unicode format character
// (general category Cf): bidi overrides, embeddings and isolates
// (U+202A–U+202E, U+2066–U+2069), zero-width characters (U+200B–U+200F),
// the byte order mark (U+FEFF), soft hyphens and the like. They draw
// nothing, or reorder what is drawn, so a value can display as something it
// is not: a right-to-left override makes "results_fdp.html" display as
// "resultslmth.pdf". Nothing a patient types needs them. It returns the
// field error, or the zero Message.
func checkFormatChars(s string) locale.Message {
	for _, r := range s {
		// No ASCII character is a format character (TestNoASCIIFormatChars).
		if r >= utf8.RuneSelf && unicode.Is(unicode.Cf, r) {
			return locale.New(MsgFormatCharacters)
		}
	}
	return locale.Message{}
}
