package intake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/airlockhq/airlock/shared/seal"
)

// CSRF protection for the HTML form is a signed double-submit token: the
// browser holds a random value in a cookie (HttpOnly, SameSite=Lax,
// Secure, __Host- prefixed so no subdomain can plant one), and each rendered
// form carries a fresh random nonce with an HMAC of the cookie and that
// nonce under a key derived from the row key. A cross-site page can neither
// read the cookie nor compute a token, and every intake replica derives the
// same key, so the pair works behind a load balancer without shared state.
//
// The nonce makes every rendered form distinct: it is what lets a form be
// stored at most once however often it is posted (replay.go).
const (
	csrfCookie = "__Host-airlock-csrf"
	csrfField  = "_csrf"
	// honeypotField is a text input hidden from people; bots fill it.
	honeypotField = "contact_website"
	csrfLabel     = "airlock intake csrf v1"
)

// reservedFieldNames are HTML form names a linkId may not use.
var reservedFieldNames = []string{csrfField, honeypotField, repeatActionField, langSwitchField}

// csrfKey derives the token key from the row key with a distinct label, so
// the row key itself never signs anything but rows.
func csrfKey(rowKey seal.RowKey) []byte {
	m := hmac.New(sha256.New, rowKey[:])
	m.Write([]byte(csrfLabel))
	return m.Sum(nil)
}

type csrfGuard struct{ key []byte }

// tokenNonceSize is the random part of a form token: 128 bits.
const tokenNonceSize = 16

// formToken is a verified form token: the browser's CSRF cookie and the
// nonce of the rendered form it came from.
type formToken struct {
	cookie string
	nonce  []byte
}

// token returns a new form token for a cookie value: a fresh nonce from
// crypto/rand and the HMAC of cookie and nonce.
func (g csrfGuard) token(cookie string) string {
	nonce := make([]byte, tokenNonceSize, tokenNonceSize+sha256.Size)
	rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(append(nonce, g.mac(cookie, nonce)...))
}

func (g csrfGuard) mac(cookie string, nonce []byte) []byte {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write(nonce)
	return m.Sum(nil)
}

// cookieValue returns the request's CSRF cookie when it is well formed, or
// a new one (and a Set-Cookie for it).
func (g csrfGuard) cookieValue(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validCookieValue(c.Value) {
		return c.Value
	}
	var b [32]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    v,
		Path:     "/",
		MaxAge:   12 * 3600,
		Secure:   true,
		HttpOnly: true,
		// Lax, not Strict: a patient arriving from a link in an email
		// must not get a fresh cookie that breaks a form open in another tab.
		SameSite: http.SameSiteLaxMode,
	})
	return v
}

func validCookieValue(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// check reports whether the submitted token was made for the request's
// cookie, and returns the token's parts.
func (g csrfGuard) check(r *http.Request, submitted string) (formToken, bool) {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validCookieValue(c.Value) || submitted == "" {
		return formToken{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(submitted)
	if err != nil || len(b) != tokenNonceSize+sha256.Size {
		return formToken{}, false
	}
	nonce, mac := b[:tokenNonceSize], b[tokenNonceSize:]
	if !hmac.Equal(g.mac(c.Value, nonce), mac) {
		return formToken{}, false
	}
	return formToken{cookie: c.Value, nonce: nonce}, true
}
