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
// Secure, __Host- prefixed so no subdomain can plant one), and the form
// carries an HMAC of that value under a key derived from the row key. A
// cross-site page can neither read the cookie nor compute the token, and
// every intake replica derives the same key, so the pair works behind a
// load balancer without shared state.
const (
	csrfCookie = "__Host-airlock-csrf"
	csrfField  = "_csrf"
	// honeypotField is a text input hidden from people; bots fill it.
	honeypotField = "contact_website"
	csrfLabel     = "airlock intake csrf v1"
)

// reservedFieldNames are HTML form names a linkId may not use.
var reservedFieldNames = []string{csrfField, honeypotField}

// csrfKey derives the token key from the row key with a distinct label, so
// the row key itself never signs anything but rows.
func csrfKey(rowKey seal.RowKey) []byte {
	m := hmac.New(sha256.New, rowKey[:])
	m.Write([]byte(csrfLabel))
	return m.Sum(nil)
}

type csrfGuard struct{ key []byte }

// token returns the form token for a cookie value.
func (g csrfGuard) token(cookie string) string {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
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

// check reports whether the submitted token matches the request's cookie.
func (g csrfGuard) check(r *http.Request, submitted string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validCookieValue(c.Value) || submitted == "" {
		return false
	}
	return hmac.Equal([]byte(g.token(c.Value)), []byte(submitted))
}
