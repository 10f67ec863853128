package seal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
)

// Correction is what a correcting submission claims, sealed in its payload:
// the receipt of the submission it corrects and the hash of the correction
// code the submitter presented. intake cannot check the claim (it never
// reads stored data); transfer links the correction only when CodeHash equals
// the hash sealed in the original's payload.
type Correction struct {
	Receipt  string `json:"receipt"`   // ValidReceipt form
	CodeHash string `json:"code_hash"` // HashCorrectionCode of the presented code
}

// Valid reports whether c has the shape intake seals: a receipt of intake's
// form and a hash of 64 lower-case hex digits.
func (c *Correction) Valid() bool {
	return ValidReceipt(c.Receipt) && ValidCodeHash(c.CodeHash)
}

// correctionCodeGroups is the number of four-character groups of a
// correction code: 28 characters of a 32-letter alphabet, 140 bits.
const correctionCodeGroups = 7

// CorrectionCodeLength is the number of characters of a correction code
// without its dashes.
const CorrectionCodeLength = 4 * correctionCodeGroups

// NewCorrectionCode makes a correction code: 140 random bits (crypto/rand)
// as 28 characters of ReceiptAlphabet (no look-alikes) in groups of four,
// e.g. "7KQM-3XWA-PZ9R-HT4N-CV2E-JB8D-M4TX". Only the submitter ever sees it.
func NewCorrectionCode() (string, error) {
	var b [CorrectionCodeLength]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random correction code: %w", err)
	}
	return CorrectionCodeFromBytes(b), nil
}

// CorrectionCodeFromBytes writes 28 uniformly random bytes as a correction
// code, as NewCorrectionCode does; intake uses it for codes derived with an
// HMAC, so a repeated submission shows the code of the first.
func CorrectionCodeFromBytes(b [CorrectionCodeLength]byte) string {
	out := make([]byte, 0, CorrectionCodeLength+correctionCodeGroups-1)
	for i, x := range b {
		if i > 0 && i%4 == 0 {
			out = append(out, '-')
		}
		// 256 is a multiple of 32: every letter is equally likely.
		out = append(out, ReceiptAlphabet[x%32])
	}
	return string(out)
}

// compact upper-cases s and drops dashes and white space, so a code or
// receipt typed in lower case or without its dashes still matches.
func compact(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r == '-' || unicode.IsSpace(r) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// group joins s in dash-separated groups of four.
func group(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

func inAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(ReceiptAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// NormaliseCorrectionCode reads a correction code as a person may type it
// (lower case, without dashes, with spaces) and returns it in the form
// NewCorrectionCode makes, or false if it cannot be one.
func NormaliseCorrectionCode(s string) (string, bool) {
	c := compact(s)
	if len(c) != CorrectionCodeLength || !inAlphabet(c) {
		return "", false
	}
	return group(c), true
}

// NormaliseReceipt reads a receipt as a person may type it and returns it in
// intake's form (ValidReceipt), or false if it cannot be one.
func NormaliseReceipt(s string) (string, bool) {
	c := compact(s)
	if len(c) != 24 || !inAlphabet(c) {
		return "", false
	}
	return group(c), true
}

// HashCorrectionCode is the hash of a correction code that is sealed and
// kept at stage 2: hex SHA-256 of a domain label and the code's 28
// characters (no dashes). A plain hash suffices: the code has 140 random
// bits. code must be normalised (NormaliseCorrectionCode or NewCorrectionCode).
func HashCorrectionCode(code string) string {
	sum := sha256.Sum256([]byte("airlock correction code v1\x00" + compact(code)))
	return hex.EncodeToString(sum[:])
}

// ValidCodeHash reports whether s has the shape of HashCorrectionCode's
// result: 64 lower-case hex digits.
func ValidCodeHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}
