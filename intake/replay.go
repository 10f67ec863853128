package intake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/nacl/secretbox"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/seal"
	"github.com/labstack/echo/v4"
)

// Sending twice (docs/intake.md): a rendered HTML form, or a JSON/FHIR
// request with an Idempotency-Key, stores at most one submission.
//
// intake cannot look up what it stored (its login may only INSERT), so it
// derives instead of remembering: the submission's row id, receipt and
// correction code are an HMAC, under a key derived from the row key (which
// every replica holds), of
//
//   - the form id,
//   - the token: for HTML, the browser's CSRF cookie and the rendered form's
//     nonce; for the APIs, the client's Idempotency-Key,
//   - a digest of the validated answers and the correction claimed.
//
// A repeat of the same request derives the same row id, which the database
// refuses to store twice, and the same receipt and correction code, which
// are shown again. The replay key (an HMAC of the form and the token alone)
// is stored with the row under a unique constraint, so the same token with
// other answers is refused (migration 000090).
//
// What a replay gives is only what its original poster already had: to be
// shown someone's receipt and correction code one must present their token
// (for HTML: their HttpOnly cookie as well as their form's nonce; for the
// APIs: their key, which must be long and random) and exactly their answers.
// A guessed token with other answers gets a refusal that says only that the
// token is taken, and stores nothing.

const (
	replayLabel        = "airlock intake replay v1"
	receiptCookieLabel = "airlock intake receipt cookie v1"
)

// replayer derives the identity of submissions that may be posted again.
type replayer struct{ key []byte }

func newReplayer(rowKey seal.RowKey) replayer {
	return replayer{key: labelledKey(rowKey, replayLabel)}
}

// labelledKey derives a key from the row key with a distinct label, so the
// row key itself never signs anything but rows.
func labelledKey(rowKey seal.RowKey, label string) []byte {
	m := hmac.New(sha256.New, rowKey[:])
	m.Write([]byte(label))
	return m.Sum(nil)
}

// identity is what a submission is known by: its row id, what its submitter
// is shown, and (for one that may be posted again) its replay key.
type identity struct {
	id string
	Issued
	replayKey []byte // nil: not idempotent
}

// randomIdentity is a submission's identity when nothing identifies a
// repeat of it: a JSON request without an Idempotency-Key.
func randomIdentity() (identity, error) {
	id, err := newUUID()
	if err != nil {
		return identity{}, err
	}
	receipt, err := newReceipt()
	if err != nil {
		return identity{}, err
	}
	code, err := seal.NewCorrectionCode()
	if err != nil {
		return identity{}, err
	}
	return identity{id: id, Issued: Issued{Receipt: receipt, CorrectionCode: code}}, nil
}

// Token kinds, so an HTML form's token can never stand for an API key.
const (
	tokenForm = "form"
	tokenKey  = "idempotency-key"
)

// replayKey is the HMAC of the form id and a token (the parts of a form
// token, or an Idempotency-Key), each length-prefixed so no two inputs run
// together.
func (rp replayer) replayKey(formID, kind string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, rp.key)
	for _, p := range append([][]byte{[]byte("replay key"), []byte(formID), []byte(kind)}, parts...) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// formReplayKey is the replay key of a rendered HTML form.
func (rp replayer) formReplayKey(formID string, t formToken) []byte {
	return rp.replayKey(formID, tokenForm, []byte(t.cookie), t.nonce)
}

// apiReplayKey is the replay key of an Idempotency-Key.
func (rp replayer) apiReplayKey(formID, key string) []byte {
	return rp.replayKey(formID, tokenKey, []byte(key))
}

// derive returns the identity of the submission of answers (and the
// correction it claims) under replayKey: the same inputs always give the
// same id, receipt and correction code.
func (rp replayer) derive(replayKey []byte, answers forms.Answers, corrects *seal.Correction) (identity, error) {
	digest, err := answersDigest(answers, corrects)
	if err != nil {
		return identity{}, err
	}
	m := hmac.New(sha256.New, rp.key)
	m.Write([]byte("submission\x00"))
	m.Write(replayKey)
	m.Write(digest[:])
	seed := m.Sum(nil)
	expand := func(label string) []byte {
		m := hmac.New(sha256.New, seed)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	var idb [16]byte
	copy(idb[:], expand("id"))
	var rb [15]byte
	copy(rb[:], expand("receipt"))
	var cb [seal.CorrectionCodeLength]byte
	copy(cb[:], expand("correction code"))
	return identity{
		id:        uuidFromBytes(idb),
		Issued:    Issued{Receipt: receiptFromBytes(rb), CorrectionCode: seal.CorrectionCodeFromBytes(cb)},
		replayKey: replayKey,
	}, nil
}

// answersDigest is a SHA-256 of the validated answers and the correction
// claimed: what makes two requests "the same submission". Validated answers
// rather than the raw body, so a retry whose encoding differs (another
// multipart boundary, other white space) is still the same.
func answersDigest(answers forms.Answers, corrects *seal.Correction) ([32]byte, error) {
	b, err := json.Marshal(struct {
		Answers  forms.Answers    `json:"answers"`
		Corrects *seal.Correction `json:"corrects"`
	}{answers, corrects})
	if err != nil {
		return [32]byte{}, fmt.Errorf("digest answers: %w", err)
	}
	sum := sha256.Sum256(b)
	clear(b)
	return sum, nil
}

// Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header): the
// client's random key for one submission. It must be long and varied enough
// to be unguessable; a UUID v4 or 16 random bytes in base64 is.
const (
	idempotencyHeader  = "Idempotency-Key"
	minIdempotencyKey  = 22
	maxIdempotencyKey  = 255
	minKeyDistinctRune = 8
)

// errIdempotencyKey explains what a key must be; it never quotes the key.
var errIdempotencyKey = fmt.Errorf("%s must be %d to %d visible ASCII characters with no spaces, random for each submission (a UUID v4 is fine)",
	idempotencyHeader, minIdempotencyKey, maxIdempotencyKey)

// parseIdempotencyKey reads the header: "" when absent. The draft makes the
// value a structured-field string ("..."); a bare token is accepted too.
func parseIdempotencyKey(h http.Header) (string, error) {
	vals := h.Values(idempotencyHeader)
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 {
		return "", errIdempotencyKey
	}
	k := strings.TrimSpace(vals[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if len(k) < minIdempotencyKey || len(k) > maxIdempotencyKey {
		return "", errIdempotencyKey
	}
	seen := map[byte]bool{}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\' {
			return "", errIdempotencyKey
		}
		seen[k[i]] = true
	}
	if len(seen) < minKeyDistinctRune {
		// "aaaa..." or "1111...": long but guessable.
		return "", errIdempotencyKey
	}
	return k, nil
}

// The receipt page after post/redirect/get: the POST answers 303 to
// GET /forms/{id}/sent and hands the receipt over in a cookie sealed with
// nacl/secretbox under a key derived from the row key, so any replica can
// show it and nothing secret is in a URL. It lives receiptCookieTTL, so a
// reload within that time shows the same receipt; the "Done" button, and
// opening the list of forms or any form, clear it at once (a shared
// computer: the next person must not find the last one's receipt).
const (
	receiptCookie    = "__Host-airlock-receipt"
	receiptCookieTTL = 5 * time.Minute
)

// receiptTicket is what the receipt cookie holds, sealed.
type receiptTicket struct {
	Form     string `json:"f"`
	Receipt  string `json:"r"`
	Code     string `json:"c"`
	Corrects bool   `json:"x,omitempty"`
	Expires  int64  `json:"e"`
}

type receiptSealer struct{ key [32]byte }

func newReceiptSealer(rowKey seal.RowKey) receiptSealer {
	var rs receiptSealer
	copy(rs.key[:], labelledKey(rowKey, receiptCookieLabel))
	return rs
}

// set seals t into the receipt cookie.
func (rs receiptSealer) set(w http.ResponseWriter, t receiptTicket) {
	var nonce [24]byte
	rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
	plain, _ := json.Marshal(t)
	box := secretbox.Seal(nonce[:], plain, &nonce, &rs.key)
	clear(plain)
	http.SetCookie(w, &http.Cookie{
		Name: receiptCookie, Value: base64.RawURLEncoding.EncodeToString(box),
		Path: "/", MaxAge: int(receiptCookieTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// get opens the request's receipt cookie: false when there is none, it does
// not open, or it has expired.
func (rs receiptSealer) get(r *http.Request, now time.Time) (receiptTicket, bool) {
	c, err := r.Cookie(receiptCookie)
	if err != nil {
		return receiptTicket{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) < 24+secretbox.Overhead || len(b) > 4096 {
		return receiptTicket{}, false
	}
	var nonce [24]byte
	copy(nonce[:], b)
	plain, ok := secretbox.Open(nil, b[24:], &nonce, &rs.key)
	if !ok {
		return receiptTicket{}, false
	}
	defer clear(plain)
	var t receiptTicket
	if json.Unmarshal(plain, &t) != nil || now.Unix() >= t.Expires {
		return receiptTicket{}, false
	}
	return t, true
}

// clear removes the receipt cookie.
func (rs receiptSealer) clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: receiptCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// forgetReceipt clears the receipt cookie when the request carries one.
func (s *Server) forgetReceipt(c echo.Context) {
	if _, err := c.Request().Cookie(receiptCookie); err == nil {
		s.receipts.clear(c.Response())
	}
}
