package locale

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/text/language"
)

// keyPattern finds catalogue keys quoted in code and templates: every key
// is written out in full where it is used (no keys built by concatenation),
// so this finds them all.
var keyPattern = regexp.MustCompile(`"((?:forms|intake)\.[a-z0-9_]+(?:\.[a-z0-9_]+)*)"`)

// usedKeys returns every key quoted in the non-test Go files and the
// templates of the packages whose strings the catalogue holds, with a
// place each is used.
func usedKeys(t *testing.T) map[string]string {
	t.Helper()
	used := map[string]string{}
	for _, dir := range []string{"../../intake", "../forms"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || d.Name() == "cmd" && dir == "../forms" {
					return filepath.SkipDir
				}
				return nil
			}
			name := d.Name()
			if strings.HasSuffix(name, "_test.go") || !(strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".html")) {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range keyPattern.FindAllStringSubmatch(string(b), -1) {
				if _, ok := used[m[1]]; !ok {
					used[m[1]] = path
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(used) < 50 {
		t.Fatalf("found only %d keys in use: the scan is broken", len(used))
	}
	return used
}

// TestBuiltinCatalogueComplete: every key the code and templates use has a
// text in every shipped language, and every text is used.
func TestBuiltinCatalogueComplete(t *testing.T) {
	c, err := Load(builtin)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Languages(); len(got) < 2 || got[0] != language.English || !slices.Contains(got, language.Spanish) {
		t.Fatalf("languages = %v, want English first and Spanish", got)
	}
	used := usedKeys(t)
	for key, where := range used {
		for _, tag := range c.Languages() {
			if !c.Has(tag, key) {
				t.Errorf("%s uses %q, which has no text in messages/%s.json", where, key, tag)
			}
		}
	}
	for _, key := range c.Keys() {
		if _, ok := used[key]; !ok {
			t.Errorf("messages/%s.json: %q is used nowhere", Base, key)
		}
	}
}

// TestLoadRefusesHalfALanguage: a language missing a key, carrying one the
// base does not have, or placing other parameters is refused, naming it.
func TestLoadRefusesHalfALanguage(t *testing.T) {
	en := `{"a.one": "One %d.", "a.two": "Two %s."}`
	for name, es := range map[string]string{
		"missing key":     `{"a.one": "Uno %d."}`,
		"extra key":       `{"a.one": "Uno %d.", "a.two": "Dos %s.", "a.three": "Tres."}`,
		"other parameter": `{"a.one": "Uno %s.", "a.two": "Dos %s."}`,
		"bad plural":      `{"a.one": {"one": "Uno %d."}, "a.two": "Dos %s."}`,
	} {
		_, err := Load(fstest.MapFS{"messages/en.json": {Data: []byte(en)}, "messages/es.json": {Data: []byte(es)}})
		if err == nil || !strings.Contains(err.Error(), "catalogue es") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := Load(fstest.MapFS{"messages/en.json": {Data: []byte(en)}, "messages/es.json": {Data: []byte(`{"a.one": "Uno %d.", "a.two": "Dos %s."}`)}}); err != nil {
		t.Errorf("complete language refused: %v", err)
	}
}

func TestPrinter(t *testing.T) {
	c := Default()
	es := c.Printer(language.MustParse("es-MX"))
	if got := es.T("forms.required"); got != "Esta pregunta es obligatoria." {
		t.Errorf("es-MX falls back to es: %q", got)
	}
	if got := c.Printer(language.French).T("forms.required"); got != "This question is required." {
		t.Errorf("a language without catalogue reads the base: %q", got)
	}
	// Plural forms, nested messages, reordered parameters.
	if got := es.T("forms.max_length", 1); got != "Escriba como máximo 1 carácter." {
		t.Errorf("plural one: %q", got)
	}
	if got := es.Sprint(New("forms.answer_n", 2, New("forms.required"))); got != "Respuesta 2: Esta pregunta es obligatoria." {
		t.Errorf("nested: %q", got)
	}
	if got := New("forms.max_length", 3).String(); got != "Enter at most 3 characters." {
		t.Errorf("String: %q", got)
	}
}

func TestMatch(t *testing.T) {
	offered := []language.Tag{language.English, language.Spanish}
	for _, tc := range []struct{ query, header, want string }{
		{"", "", "en"},
		{"es", "", "es"},
		{"es", "en", "es"},
		{"fr", "es-MX,es;q=0.9,en;q=0.5", "es"},
		{"", "de, en;q=0.1", "en"},
		{"", "de", "en"},
		{"", "not a header;;;", "en"},
		{"xx-!!", "es", "es"},
		{"es-MX", "en", "es"},
		{"pt", "en", "en"},
	} {
		if got := Match(offered, tc.query, tc.header).String(); got != tc.want {
			t.Errorf("Match(%q, %q) = %s, want %s", tc.query, tc.header, got, tc.want)
		}
	}
}
