package results

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// Frozen ciphertexts of format version 1 (token bytes 0..31, date of birth
// 1971-07-04). Do not modify: a change that cannot open them would strand
// every link already handed to a patient.
const (
	frozenTitle    = "01be498891be227ccad4a783b1bad4a114bb6f560420c10f68694872b6699834c1b11a11a249a9f6e4f786881f5f564407a7f7"
	frozenDocument = "0159652796d6958f252f354450624badf5a61d658003f4981df0a40d4eb4ca303eea767efbf276fdf167934e092ec029dcad275713f4e7236de45dc73937f95f43f25fc500"
)

func frozenToken() Token {
	var tok Token
	for i := range tok {
		tok[i] = byte(i)
	}
	return tok
}

func TestFrozenVectors(t *testing.T) {
	tok := frozenToken()
	st, _ := hex.DecodeString(frozenTitle)
	if title, err := tok.OpenTitle(st); err != nil || title != "Blood test" {
		t.Errorf("title: %q %v", title, err)
	}
	sd, _ := hex.DecodeString(frozenDocument)
	d, err := tok.OpenDocument(sd, "1971-07-04")
	if err != nil || d.ContentType != "text/plain" || string(d.Data) != "Frozen result v1\n" {
		t.Errorf("document: %+v %v", d, err)
	}
}

func TestSealOpen(t *testing.T) {
	tok := NewToken()
	other := NewToken()
	doc := Document{ContentType: "application/pdf", Data: []byte("%PDF-1.7 secret")}
	plain := tok.SealDocument(doc, "")
	withDOB := tok.SealDocument(doc, "1984-02-29")
	for name, c := range map[string]struct {
		sealed []byte
		tok    Token
		dob    string
		ok     bool
	}{
		"no factor":            {plain, tok, "", true},
		"no factor, dob given": {plain, tok, "1984-02-29", false},
		"other token":          {plain, other, "", false},
		"factor":               {withDOB, tok, "1984-02-29", true},
		"factor missing":       {withDOB, tok, "", false},
		"wrong date":           {withDOB, tok, "1984-03-01", false},
		"factor, other token":  {withDOB, other, "1984-02-29", false},
		"truncated":            {withDOB[:20], tok, "1984-02-29", false},
		"flipped":              {flip(withDOB), tok, "1984-02-29", false},
	} {
		got, err := c.tok.OpenDocument(c.sealed, c.dob)
		if c.ok != (err == nil) || (c.ok && !bytes.Equal(got.Data, doc.Data)) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if bytes.Contains(plain, doc.Data) || bytes.Contains(plain, tok[:]) {
		t.Error("sealed bytes hold the plaintext or the token")
	}
}

func flip(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	return c
}

func TestToken(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b {
		t.Fatal("two tokens are equal")
	}
	s := a.String()
	if len(s) != TokenLen {
		t.Fatalf("token %q has %d characters", s, len(s))
	}
	if p, ok := ParseToken(s); !ok || p != a {
		t.Error("a token does not parse back")
	}
	for _, bad := range []string{"", s[:42], s + "A", strings.Repeat("*", 43), s[:42] + "="} {
		if _, ok := ParseToken(bad); ok {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
	if bytes.Equal(a.Hash(), b.Hash()) || len(a.Hash()) != 32 {
		t.Error("hashes")
	}
}

func TestBirthDate(t *testing.T) {
	for in, want := range map[[3]string]string{
		{"4", "7", "1971"}:     "1971-07-04",
		{" 04 ", "07", "1971"}: "1971-07-04",
		{"29", "2", "1984"}:    "1984-02-29",
		{"29", "2", "1985"}:    "",
		{"31", "4", "1990"}:    "",
		{"", "7", "1971"}:      "",
		{"4", "13", "1971"}:    "",
		{"4", "7", "71"}:       "",
		{"x", "7", "1971"}:     "",
	} {
		got, ok := BirthDateFromParts(in[0], in[1], in[2])
		if got != want || ok != (want != "") {
			t.Errorf("%v: got %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestDetectType(t *testing.T) {
	for in, want := range map[string]string{
		"%PDF-1.4 x":               "application/pdf",
		"\x89PNG\r\n\x1a\n0000":    "image/png",
		"\xff\xd8\xff\xe0 jpeg":    "image/jpeg",
		"Plain words, ünïcode\n":   "text/plain",
		"<html><script>":           "",
		"scan\n<script>alert(1)":   "",
		"value < 5 and x<3":        "text/plain",
		"GIF89a....":               "",
		"text with \x00 NUL":       "",
		"\xff\xfe not utf-8 \xc3(": "",
	} {
		if got := DetectType([]byte(in)); got != want {
			t.Errorf("DetectType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDummyOpen(t *testing.T) {
	for _, n := range []int{0, 1, 64 << 10} {
		DummyOpen(n) // must not panic
	}
}
