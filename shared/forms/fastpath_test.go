package forms

import (
	"encoding/json"
	"testing"
	"unicode"
)

// TestPlainJSONStringMatchesUnmarshal: the fast path takes only strings
// whose text json.Unmarshal returns unchanged, and returns that text.
func TestPlainJSONStringMatchesUnmarshal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw   string
		plain bool
	}{
		{`""`, true},
		{`"Okonkwo"`, true},
		{`"Zoë مريم 李雷 \u202e"`, false},
		{"\"Zo\u00eb \u0645\u0631\u064a\u0645 \u674e\u96f7\"", true},
		{"\"right\u202eleft\"", true}, // a format character, refused later by checkText
		{`"a\"b"`, false},
		{`"a\\b"`, false},
		{`"a\/b"`, false},
		{`"line\nbreak"`, false},
		{"\"raw\nbreak\"", false},
		{"\"tab\there\"", false},
		{"\"bad \xff utf-8\"", false},
		{"\"\xed\xa0\x80\"", false}, // a surrogate encoded in UTF-8
		{`"a"b"`, false},
		{`"`, false},
		{`"open`, false},
		{`open"`, false},
		{`12`, false},
	} {
		got, ok := plainJSONString([]byte(tc.raw))
		if ok != tc.plain {
			t.Errorf("plainJSONString(%q) ok = %v, want %v", tc.raw, ok, tc.plain)
			continue
		}
		if !ok {
			continue
		}
		var want string
		if err := json.Unmarshal([]byte(tc.raw), &want); err != nil || got != want {
			t.Errorf("plainJSONString(%q) = %q, json.Unmarshal gives %q, %v", tc.raw, got, want, err)
		}
	}
}

// FuzzPlainJSONString: whatever the fast path accepts, json.Unmarshal
// accepts too, with the same text.
func FuzzPlainJSONString(f *testing.F) {
	for _, s := range []string{`"a"`, `""`, `"\u00e9"`, "\"\xc3\xa9\"", `"a\"`, "\"\x7f\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := plainJSONString(raw)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil || got != want {
			t.Fatalf("plainJSONString(%q) = %q, json.Unmarshal gives %q, %v", raw, got, want, err)
		}
	})
}

// TestEscapedJSONStringMatchesUnmarshal: the second fast path takes the
// escapes json.Marshal and browsers write, and returns exactly what
// json.Unmarshal does; anything unusual is left to json.Unmarshal.
func TestEscapedJSONStringMatchesUnmarshal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		fast bool
	}{
		{`"Flat 4\nNorthbridge"`, true},
		{`"A\u0026E \u003cb\u003e"`, true},
		{`"\"quoted\" \\ \/ \b\f\n\r\t"`, true},
		{`"\u00e9\u00C9 \u674e \u0000"`, true},
		{`"\\"`, true},
		{`"plain"`, true},
		{"\"Zo\u00eb \\n\"", true},
		{`"\ud83d\ude00"`, false}, // a surrogate pair: json.Unmarshal decides
		{`"\ud83d"`, false},
		{`"\x41"`, false},
		{`"\u12"`, false},
		{`"\u12g4"`, false},
		{`"\u+123"`, false},
		{`"abc\"`, false}, // the closing quote is escaped
		{`"a"b"`, false},
		{"\"raw\nbreak\"", false},
		{"\"bad \xff \\n\"", false},
		{`"`, false},
		{`12`, false},
	} {
		got, ok := escapedJSONString([]byte(tc.raw))
		if ok != tc.fast {
			t.Errorf("escapedJSONString(%q) ok = %v, want %v", tc.raw, ok, tc.fast)
			continue
		}
		if !ok {
			continue
		}
		var want string
		if err := json.Unmarshal([]byte(tc.raw), &want); err != nil || got != want {
			t.Errorf("escapedJSONString(%q) = %q, json.Unmarshal gives %q, %v", tc.raw, got, want, err)
		}
	}
}

// FuzzEscapedJSONString: whatever the second fast path accepts,
// json.Unmarshal accepts too, with the same text.
func FuzzEscapedJSONString(f *testing.F) {
	for _, s := range []string{`"a\nb"`, `"\u0026"`, `"\ud83d\ude00"`, `"\\"`, `"a\"`, "\"\xc3\xa9\\t\"", `"\u00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := escapedJSONString(raw)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil || got != want {
			t.Fatalf("escapedJSONString(%q) = %q, json.Unmarshal gives %q, %v", raw, got, want, err)
		}
	})
}

// TestNoASCIIFormatChars: checkFormatChars skips ASCII because no ASCII
// character is in Unicode category Cf.
func TestNoASCIIFormatChars(t *testing.T) {
	t.Parallel()
	for r := rune(0); r < 0x80; r++ {
		if unicode.Is(unicode.Cf, r) {
			t.Fatalf("U+%04X is a format character", r)
		}
	}
}

// TestValidateRefusesUnescapedFormatCharacters: a format character typed
// as itself (not as a \u escape, so through the fast path) is refused too.
func TestValidateRefusesUnescapedFormatCharacters(t *testing.T) {
	t.Parallel()
	q := mustParse(t, allTypes)
	for _, c := range []string{"\u202e", "\u2068", "\u200b", "\ufeff", "\u00ad", "\U000E0041"} {
		for _, field := range []string{"tags", "notes", "source"} {
			raw := map[string]json.RawMessage{
				"name": json.RawMessage(`"Ann"`), "ok": json.RawMessage(`false`),
				field: json.RawMessage(`"results_` + c + `fdp.html"`),
			}
			a, errs := q.Validate(raw)
			if a != nil || len(errs) != 1 || errs[0].Field != field || errs[0].Message.Key != MsgFormatCharacters {
				t.Errorf("%U in %s: errors %v", []rune(c)[0], field, errs)
			}
		}
	}
}
