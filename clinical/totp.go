package clinical

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTPIssuer names Airlock in authenticator apps.
const TOTPIssuer = "Airlock clinic"

// totpPeriod is the RFC 6238 time step.
const totpPeriod = 30

// TOTPBox encrypts TOTP secrets at rest with AES-256-GCM under a key derived
// from CLINICAL_SECRET_KEY, which the clinical database never sees. The
// staff id is the additional data, so a ciphertext copied onto another
// account does not open.
type TOTPBox struct {
	aead cipher.AEAD
}

// NewTOTPBox derives the TOTP encryption key.
func NewTOTPBox(secret SecretKey) *TOTPBox {
	block, err := aes.NewCipher(secret.derive("totp v1"))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &TOTPBox{aead: aead}
}

func staffAD(staffID int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("airlock totp staff "), uint64(staffID))
}

// Seal encrypts a base32 TOTP secret for one staff member.
func (b *TOTPBox) Seal(staffID int64, secret string) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return b.aead.Seal(nonce, nonce, []byte(secret), staffAD(staffID)), nil
}

// errTOTPSecret is a stored TOTP secret that does not open: the wrong
// CLINICAL_SECRET_KEY, or a row edited in the database.
var errTOTPSecret = errors.New("stored TOTP secret does not decrypt (wrong CLINICAL_SECRET_KEY or an edited row)")

// Open decrypts a sealed TOTP secret.
func (b *TOTPBox) Open(staffID int64, sealed []byte) (string, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n {
		return "", errTOTPSecret
	}
	pt, err := b.aead.Open(nil, sealed[:n], sealed[n:], staffAD(staffID))
	if err != nil {
		return "", errTOTPSecret
	}
	return string(pt), nil
}

// NewTOTPKey makes a fresh secret (160 bits, SHA-1, 6 digits, 30 s: what
// every authenticator app understands) for an account.
func NewTOTPKey(email string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{Issuer: TOTPIssuer, AccountName: email, Period: totpPeriod, SecretSize: 20})
}

// TOTPURI is the otpauth URI of a base32 secret, as authenticator apps
// read it from a QR code.
func TOTPURI(email, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", TOTPIssuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", fmt.Sprint(totpPeriod))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + TOTPIssuer + ":" + email, RawQuery: v.Encode()}
	return u.String()
}

// matchTOTP returns the time step whose code equals code, trying the
// current step and one either side for clock drift, or 0 when none does.
// The caller must still record the step so the code works only once.
func matchTOTP(secret, code string, now time.Time) int64 {
	if len(code) != 6 {
		return 0
	}
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	var found int64
	for _, skew := range []int64{-1, 0, 1} {
		t := now.Add(time.Duration(skew*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, opts)
		if err != nil {
			return 0
		}
		// Compare every candidate in constant time; keep the latest match.
		if hmac.Equal([]byte(want), []byte(code)) {
			found = t.Unix() / totpPeriod
		}
	}
	return found
}
