package jsonread

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzAgreesWithJSON: a value Raw accepts is valid JSON to encoding/json,
// and a string or number read alone reads as encoding/json reads it.
func FuzzAgreesWithJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `"a"`, `"\u00e9\ud83d\ude00\n\"\\\/"`, `-0.5e+10`, `0`, `true`, `null`,
		` {"a" : [1, "b", {"c": null}] } `, `"\ud800"`, "\"\xff\"", `01`, `1.`, `[1,]`, `{"a":1,}`, `"a` + "\x01" + `"`,
		`{"a":1}x`, strings.Repeat("[", 1001) + strings.Repeat("]", 1001)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := New(data)
		if _, err := r.Raw(); err == nil && r.End() == nil && !json.Valid(data) {
			t.Fatalf("Raw accepted what encoding/json refuses: %q", data)
		}
		r = New(data)
		if s, err := r.String(); err == nil && r.End() == nil {
			var want string
			if err := json.Unmarshal(data, &want); err != nil || s != want {
				t.Fatalf("String(%q) = %q, encoding/json: %q, %v", data, s, want, err)
			}
		}
		r = New(data)
		if n, err := r.Number(); err == nil && r.End() == nil {
			var want json.Number
			if err := json.Unmarshal(data, &want); err != nil || string(want) != n {
				t.Fatalf("Number(%q) = %q, encoding/json: %q, %v", data, n, want, err)
			}
		}
	})
}

func TestStrictness(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, "\"\xff\"", "\"a\x1fb\"", `"\x"`, `"\u12"`,
		`01`, `1.`, `-`, `1e`, `+1`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `tru`, `nul`, ``, ` `, `{"a":1} 2`,
		strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)} {
		r := New([]byte(bad))
		if _, err := r.Raw(); err == nil && r.End() == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	r := New([]byte(` "a\u00e9\ud83d\ude00\n" `))
	if s, err := r.String(); err != nil || s != "aé😀\n" || r.End() != nil {
		t.Errorf("String = %q, %v", s, err)
	}
	r = New([]byte(`{"x":[1,-2.5e3,true,false,null,"s",{}]}`))
	var got []string
	err := r.Object(func(name []byte) error {
		got = append(got, string(name))
		return r.Array(func() error {
			v, err := r.Raw()
			got = append(got, string(v))
			return err
		})
	})
	if err != nil || strings.Join(got, " ") != `x 1 -2.5e3 true false null "s" {}` || r.End() != nil {
		t.Errorf("got %q, %v", got, err)
	}
}
