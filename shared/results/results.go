// Package results is the cryptography of one-time result links: the token
// that exists only in the link, the lookup hash the databases keep instead,
// and the sealing of a result (and of its title) under keys derived from the
// token, with the patient's date of birth mixed in when the clinician asks
// for it. Clinical seals; intake opens, only while a patient presents the
// link. Neither database ever holds the token, a key or a plaintext.
package results

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/shared/filetype"
	"golang.org/x/crypto/chacha20poly1305"
)

// TokenSize is the token's length in bytes: 256 bits from crypto/rand.
const TokenSize = 32

// TokenLen is the length of a token as it appears in a link (unpadded
// base64url).
const TokenLen = 43

// MaxSize is the largest result a clinician may publish: intake's default
// attachment limit (INTAKE_MAX_ATTACHMENT), so whatever a patient may send
// the clinic may send back.
const MaxSize = 5 << 20

// MaxTitleLen bounds a result's title, in characters.
const MaxTitleLen = 200

// DefaultExpiry is how long a published link stays usable: 14 days.
const DefaultExpiry = 336 * time.Hour

// MaxExpiry is the longest expiry a clinician may choose.
const MaxExpiry = 90 * 24 * time.Hour

// MaxWrongBirthDates is how many wrong dates of birth use a link up.
const MaxWrongBirthDates = 5

// Token is the secret of one link. It is shown once, in the link, and
// never stored.
type Token [TokenSize]byte

// NewToken draws a fresh token from crypto/rand.
func NewToken() Token {
	var t Token
	rand.Read(t[:]) // crypto/rand.Read never fails (Go 1.24+)
	return t
}

// String is the token as it appears in the link.
func (t Token) String() string { return base64.RawURLEncoding.EncodeToString(t[:]) }

// ParseToken reads a token from a link; ok is false for anything that is
// not exactly a token's encoding.
func ParseToken(s string) (Token, bool) {
	var t Token
	if len(s) != TokenLen {
		return t, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != TokenSize {
		return t, false
	}
	copy(t[:], b)
	return t, true
}

// Hash is the lookup key both databases keep in place of the token:
// SHA-256 of its bytes. The token has 256 bits of entropy, so the hash
// cannot be reversed and needs no salt.
func (t Token) Hash() []byte {
	h := sha256.Sum256(t[:])
	return h[:]
}

// Sealed formats. Both start with a version byte, then a random 24-byte
// XChaCha20-Poly1305 nonce, then the ciphertext and tag.
const (
	version   byte = 1
	headerLen      = 1 + chacha20poly1305.NonceSizeX
)

// Labels bind each key to its purpose, so the title key can never open the
// document and the other way round.
const (
	titleInfo   = "airlock result title v1"
	contentInfo = "airlock result content v1"
	hkdfSalt    = "airlock one-time result"
)

// ErrOpen is every failure to open a sealed result: a wrong date of birth,
// a wrong token, or altered bytes. Callers cannot tell which, by design.
var ErrOpen = errors.New("result does not open")

// key derives one AEAD key from the token. The content key also covers the
// normalised date of birth ("" when none is required), so without it the
// document cannot be opened even by someone holding the link.
func (t Token) key(info, birthDate string) []byte {
	k, err := hkdf.Key(sha256.New, t[:], []byte(hkdfSalt), info+"\x00"+birthDate, chacha20poly1305.KeySize)
	if err != nil {
		panic(err) // only for a length HKDF cannot produce; KeySize is fine
	}
	return k
}

func seal(key, plaintext, aad []byte) []byte {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err) // key is always KeySize
	}
	out := make([]byte, headerLen, headerLen+len(plaintext)+aead.Overhead())
	out[0] = version
	rand.Read(out[1:headerLen])
	return aead.Seal(out, out[1:headerLen], plaintext, aad)
}

func open(key, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < headerLen+chacha20poly1305.Overhead || sealed[0] != version {
		return nil, ErrOpen
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err)
	}
	pt, err := aead.Open(nil, sealed[1:headerLen], sealed[headerLen:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Document is a result as the patient receives it.
type Document struct {
	ContentType string // detected from the bytes; one of AllowedTypes
	Data        []byte
}

// SealTitle seals a result's title: intake opens it to name the document
// on the confirmation page, which needs the link but not the date of birth.
func (t Token) SealTitle(title string) []byte {
	return seal(t.key(titleInfo, ""), []byte(title), []byte(titleInfo))
}

// OpenTitle opens a title sealed by SealTitle.
func (t Token) OpenTitle(sealed []byte) (string, error) {
	b, err := open(t.key(titleInfo, ""), sealed, []byte(titleInfo))
	return string(b), err
}

// SealDocument seals a document under the content key. birthDate is the
// normalised date of birth (NormaliseBirthDate), or "" when none is asked
// for; requireBirthDate is bound into the ciphertext too, so the flag
// stored beside it cannot be flipped to skip the question.
func (t Token) SealDocument(d Document, birthDate string) []byte {
	pt := make([]byte, 0, 1+len(d.ContentType)+len(d.Data))
	pt = append(pt, byte(len(d.ContentType)))
	pt = append(pt, d.ContentType...)
	pt = append(pt, d.Data...)
	return seal(t.key(contentInfo, birthDate), pt, contentAAD(birthDate != ""))
}

// OpenDocument opens a document sealed by SealDocument. It fails with
// ErrOpen for a wrong date of birth.
func (t Token) OpenDocument(sealed []byte, birthDate string) (Document, error) {
	pt, err := open(t.key(contentInfo, birthDate), sealed, contentAAD(birthDate != ""))
	if err != nil {
		return Document{}, err
	}
	n := int(pt[0])
	if len(pt) < 1+n {
		return Document{}, ErrOpen
	}
	return Document{ContentType: string(pt[1 : 1+n]), Data: pt[1+n:]}, nil
}

func contentAAD(withBirthDate bool) []byte {
	if withBirthDate {
		return []byte(contentInfo + " birth-date")
	}
	return []byte(contentInfo)
}

// DummyOpen does the work of opening a title and a document of size bytes
// that are not there, so a request for a token never issued costs what one
// for a real token costs.
func DummyOpen(size int) {
	var t Token
	buf := make([]byte, headerLen+max(size, 256)+chacha20poly1305.Overhead)
	buf[0] = version
	t.OpenTitle(buf[:headerLen+64+chacha20poly1305.Overhead])
	if size > 0 {
		t.OpenDocument(buf, "")
	}
}

// AllowedTypes are the media types a result may have, detected from its
// bytes: the same set intake accepts as attachments by default.
var AllowedTypes = []string{"application/pdf", "image/png", "image/jpeg", "text/plain"}

// extensions name the downloaded file by its type.
var extensions = map[string]string{
	"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "text/plain": ".txt",
}

// DetectType sniffs a document's media type from its bytes (never from a
// file name) by the rule intake applies to attachments (shared/filetype).
// It returns "" for a type results may not have.
func DetectType(data []byte) string {
	mt := filetype.Detect(data)
	if _, ok := extensions[mt]; !ok {
		return ""
	}
	return mt
}

// Filename is the name a downloaded document is saved under: a fixed word
// and the extension of its type, never anything a person typed.
func Filename(contentType string) string {
	ext, ok := extensions[contentType]
	if !ok {
		ext = ".bin"
	}
	return "result" + ext
}

// ContentHeader is the Content-Type header for a document: text is always
// served as UTF-8.
func ContentHeader(contentType string) string {
	if contentType == "text/plain" {
		return "text/plain; charset=utf-8"
	}
	return contentType
}

// NormaliseBirthDate turns a date of birth into the form both sides mix
// into the key: YYYY-MM-DD. It takes a FHIR date (as stored with a
// submission) or day, month and year as a patient types them; ok is false
// for anything that is not a real calendar date.
func NormaliseBirthDate(s string) (string, bool) {
	s = strings.TrimSpace(s)
	d, err := time.Parse("2006-01-02", s)
	if err != nil || d.Year() < 1850 {
		return "", false
	}
	return d.Format("2006-01-02"), true
}

// BirthDateFromParts builds the normalised date from the three fields of
// intake's form; ok is false when they do not make a real date.
func BirthDateFromParts(day, month, year string) (string, bool) {
	num := func(s string, max int) (int, bool) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		return n, err == nil && n >= 1 && n <= max
	}
	d, ok1 := num(day, 31)
	m, ok2 := num(month, 12)
	y, ok3 := num(year, 9999)
	if !ok1 || !ok2 || !ok3 {
		return "", false
	}
	return NormaliseBirthDate(fmt.Sprintf("%04d-%02d-%02d", y, m, d))
}
