package seal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"time"
)

// RowKey is the secret shared by intake and transfer (never by the intake
// database) with which every stored row is authenticated.
type RowKey [32]byte

// NewRowKey makes a random row key.
func NewRowKey() (RowKey, error) {
	var k RowKey
	_, err := io.ReadFull(rand.Reader, k[:])
	return k, err
}

// String is the standard base64 form used in INTAKE_ROW_KEY and TRANSFER_ROW_KEYS.
func (k RowKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// ParseRowKey parses the base64 form (standard or URL alphabet, padded or not).
func ParseRowKey(s string) (RowKey, error) {
	var k RowKey
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawURLEncoding.DecodeString(s)
	}
	if err != nil || len(b) != len(k) {
		return k, errors.New("row key must be 32 bytes in base64 (make one with `transfer keys row-key`)")
	}
	copy(k[:], b)
	return k, nil
}

// Row is what the MAC covers: every column transfer relies on.
type Row struct {
	SubmissionID string
	FormID       string
	FormVersion  string
	KeyID        string
	ReceivedAt   time.Time // microsecond precision, as Postgres stores it
	Envelope     []byte
}

// MAC computes HMAC-SHA256 over a length-prefixed encoding of the row, so no
// two different rows encode alike.
func (k RowKey) MAC(r Row) []byte {
	m := hmac.New(sha256.New, k[:])
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		m.Write(n[:])
		m.Write(b)
	}
	field([]byte("airlock row mac v1"))
	field([]byte(r.SubmissionID))
	field([]byte(r.FormID))
	field([]byte(r.FormVersion))
	field([]byte(r.KeyID))
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(r.ReceivedAt.UnixMicro()))
	field(t[:])
	field(r.Envelope)
	return m.Sum(nil)
}

// VerifyRow reports whether any of keys authenticated the row (constant time per key).
func VerifyRow(keys []RowKey, r Row, mac []byte) bool {
	ok := false
	for _, k := range keys {
		if hmac.Equal(k.MAC(r), mac) {
			ok = true
		}
	}
	return ok
}
