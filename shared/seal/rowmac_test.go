package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

func testRowKey(seed string) RowKey { return RowKey(sha256.Sum256([]byte(seed))) }

func testRow() Row {
	return Row{
		SubmissionID: "0b0d6f4e-3c2a-4f7e-9a51-6d2c1b0e8f73",
		FormID:       "adult-intake",
		FormVersion:  "2",
		KeyID:        "0123456789abcdef",
		ReceivedAt:   time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC),
		Envelope:     append([]byte{EnvelopeV1}, bytes.Repeat([]byte{0x5A}, 8+box.AnonymousOverhead+10)...),
	}
}

func TestRowMAC(t *testing.T) {
	t.Parallel()
	key := testRowKey("row key")
	row := testRow()
	mac := key.MAC(row)
	if len(mac) != sha256.Size {
		t.Fatalf("MAC is %d bytes, want %d", len(mac), sha256.Size)
	}
	if !VerifyRow([]RowKey{key}, row, mac) {
		t.Fatal("the row's own MAC does not verify")
	}

	// The same row as Postgres hands it back: another time zone, and (for
	// safety) nanoseconds below the stored microsecond do not matter.
	same := []struct {
		name string
		edit func(*Row)
	}{
		{"received_at in another zone", func(r *Row) { r.ReceivedAt = r.ReceivedAt.In(time.FixedZone("UTC+5", 5*3600)) }},
		{"received_at with sub-microsecond noise", func(r *Row) { r.ReceivedAt = r.ReceivedAt.Add(999 * time.Nanosecond) }},
		{"envelope copied", func(r *Row) { r.Envelope = bytes.Clone(r.Envelope) }},
	}
	for _, tt := range same {
		t.Run("verifies/"+tt.name, func(t *testing.T) {
			t.Parallel()
			r := testRow()
			tt.edit(&r)
			if !VerifyRow([]RowKey{key}, r, mac) {
				t.Fatal("MAC does not verify")
			}
		})
	}

	changed := []struct {
		name string
		edit func(*Row)
	}{
		{"submission id", func(r *Row) { r.SubmissionID = "0b0d6f4e-3c2a-4f7e-9a51-6d2c1b0e8f74" }},
		{"submission id empty", func(r *Row) { r.SubmissionID = "" }},
		{"form id", func(r *Row) { r.FormID = "child-intake" }},
		{"form version", func(r *Row) { r.FormVersion = "3" }},
		{"key id", func(r *Row) { r.KeyID = "0123456789abcdee" }},
		{"received_at +1µs", func(r *Row) { r.ReceivedAt = r.ReceivedAt.Add(time.Microsecond) }},
		{"received_at -1µs", func(r *Row) { r.ReceivedAt = r.ReceivedAt.Add(-time.Microsecond) }},
		{"received_at +1 year", func(r *Row) { r.ReceivedAt = r.ReceivedAt.AddDate(1, 0, 0) }},
		{"envelope first byte", func(r *Row) { r.Envelope[0] ^= 1 }},
		{"envelope one byte in the middle", func(r *Row) { r.Envelope[len(r.Envelope)/2] ^= 0x80 }},
		{"envelope last byte", func(r *Row) { r.Envelope[len(r.Envelope)-1]++ }},
		{"envelope truncated", func(r *Row) { r.Envelope = r.Envelope[:len(r.Envelope)-1] }},
		{"envelope extended", func(r *Row) { r.Envelope = append(r.Envelope, 0) }},
		{"envelope empty", func(r *Row) { r.Envelope = nil }},
		// Length prefixes keep field boundaries: moving a character from one
		// field to its neighbour changes the MAC.
		{"boundary submission id / form id", func(r *Row) { r.SubmissionID += r.FormID[:1]; r.FormID = r.FormID[1:] }},
		{"boundary form id / form version", func(r *Row) { r.FormID += r.FormVersion; r.FormVersion = "" }},
		{"boundary form version / key id", func(r *Row) { r.FormVersion += r.KeyID[:1]; r.KeyID = r.KeyID[1:] }},
		{"form id and version swapped", func(r *Row) { r.FormID, r.FormVersion = r.FormVersion, r.FormID }},
	}
	for _, tt := range changed {
		t.Run("fails/"+tt.name, func(t *testing.T) {
			t.Parallel()
			r := testRow()
			tt.edit(&r)
			if VerifyRow([]RowKey{key}, r, mac) {
				t.Fatal("MAC still verifies after the change")
			}
			// ...and a MAC made for the changed row does not verify the original.
			if VerifyRow([]RowKey{key}, testRow(), key.MAC(r)) {
				t.Fatal("changed row's MAC verifies the original row")
			}
		})
	}

	badMAC := []struct {
		name string
		keys []RowKey
		mac  []byte
	}{
		{"wrong key", []RowKey{testRowKey("another row key")}, mac},
		{"zero key", []RowKey{{}}, mac},
		{"no keys", nil, mac},
		{"empty MAC", []RowKey{key}, nil},
		{"truncated MAC", []RowKey{key}, mac[:16]},
		{"extended MAC", []RowKey{key}, append(bytes.Clone(mac), 0)},
		{"MAC with a flipped bit", []RowKey{key}, func() []byte { m := bytes.Clone(mac); m[31] ^= 1; return m }()},
		{"several keys, none right", []RowKey{testRowKey("a"), testRowKey("b"), testRowKey("c")}, mac},
	}
	for _, tt := range badMAC {
		t.Run("fails/"+tt.name, func(t *testing.T) {
			t.Parallel()
			if VerifyRow(tt.keys, testRow(), tt.mac) {
				t.Fatal("MAC verifies")
			}
		})
	}
}

// TestVerifyRowRotation: transfer holds the old and the new row key while
// rows under both are in flight; the right key anywhere in the list verifies.
func TestVerifyRowRotation(t *testing.T) {
	t.Parallel()
	old, current, spare := testRowKey("old"), testRowKey("current"), testRowKey("spare")
	row := testRow()
	tests := []struct {
		name string
		keys []RowKey
	}{
		{"right key first", []RowKey{current, old, spare}},
		{"right key in the middle", []RowKey{old, current, spare}},
		{"right key last", []RowKey{old, spare, current}},
		{"right key twice", []RowKey{current, current}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !VerifyRow(tt.keys, row, current.MAC(row)) {
				t.Fatal("MAC under a listed key does not verify")
			}
		})
	}
	if current.MAC(row) == nil || bytes.Equal(current.MAC(row), old.MAC(row)) {
		t.Fatal("two row keys give the same MAC")
	}
}

func TestParseRowKey(t *testing.T) {
	t.Parallel()
	key := testRowKey("parse row key")
	std := key.String()
	if !strings.HasSuffix(std, "=") || len(std) != 44 {
		t.Fatalf("RowKey.String() = %q, want padded standard base64", std)
	}
	url := base64.URLEncoding.EncodeToString(key[:])
	good := []struct{ name, in string }{
		{"standard, padded", std},
		{"standard, unpadded", strings.TrimRight(std, "=")},
		{"URL alphabet, padded", url},
		{"URL alphabet, unpadded", strings.TrimRight(url, "=")},
		{"surrounding whitespace", " \t" + std + "\n"},
	}
	for _, tt := range good {
		t.Run("accepts/"+tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRowKey(tt.in)
			if err != nil {
				t.Fatalf("ParseRowKey(%q): %v", tt.in, err)
			}
			if got != key {
				t.Fatalf("ParseRowKey(%q) = %x, want %x", tt.in, got, key)
			}
		})
	}
	bad := []struct{ name, in string }{
		{"empty", ""},
		{"padding only", "===="},
		{"not base64", "!!!!" + std[4:]},
		{"space inside", std[:20] + " " + std[20:]},
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16])},
		{"31 bytes", base64.StdEncoding.EncodeToString(key[:31])},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(key[:], 0))},
		{"64 bytes", base64.StdEncoding.EncodeToString(append(key[:], key[:]...))},
		{"hex instead of base64", strings.Repeat("ab", 32)},
		{"truncated by one character", std[:42]},
	}
	for _, tt := range bad {
		t.Run("refuses/"+tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRowKey(tt.in)
			if err == nil {
				t.Fatalf("ParseRowKey(%q) = %x, want an error", tt.in, got)
			}
			if strings.Contains(err.Error(), tt.in) && tt.in != "" {
				t.Fatal("error message repeats the secret")
			}
		})
	}
	fresh, err := NewRowKey()
	if err != nil {
		t.Fatal(err)
	}
	if fresh == (RowKey{}) {
		t.Fatal("NewRowKey returned the zero key")
	}
	if again, err := ParseRowKey(fresh.String()); err != nil || again != fresh {
		t.Fatalf("String/ParseRowKey round trip: %v", err)
	}
}
