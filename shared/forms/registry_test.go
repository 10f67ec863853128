package forms

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// builtinForm returns a built-in form for tests.
func builtinForm(t testing.TB, id string) *Questionnaire {
	t.Helper()
	q, ok := Builtin().Get(id)
	if !ok {
		t.Fatalf("no built-in form %q", id)
	}
	return q
}

func TestBuiltin(t *testing.T) {
	t.Parallel()
	r := Builtin()
	var ids []string
	for _, q := range r.List() {
		ids = append(ids, q.ID)
	}
	if got := strings.Join(ids, ","); got != "new-patient,symptoms" {
		t.Fatalf("List() = %s", got)
	}
	linkID := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	for _, q := range r.List() {
		if q.URL != "https://airlock.dev/fhir/Questionnaire/"+q.ID || q.Version == "" || q.Title == "" || q.Status != "active" {
			t.Errorf("%s: header %q %q %q %q", q.ID, q.URL, q.Version, q.Title, q.Status)
		}
		for _, it := range q.all {
			if !linkID.MatchString(it.LinkID) {
				t.Errorf("%s: linkId %q is not short, lowercase and hyphenated", q.ID, it.LinkID)
			}
			if strings.TrimSpace(it.Text) == "" {
				t.Errorf("%s: %s has no text", q.ID, it.LinkID)
			}
		}
		// A valid submission with nothing optional shows the form works.
		if _, errs := q.Validate(nil); len(errs) == 0 {
			t.Errorf("%s: empty submission accepted; the form has no required items", q.ID)
		}
	}
	if _, ok := r.Get("nope"); ok {
		t.Error("Get(nope) found a form")
	}

	np := builtinForm(t, "new-patient")
	for id, carried := range map[string]bool{"consent": false, "family-name": true, "allergy-details": true} {
		if it := np.Item(id); it == nil || it.Carried != carried {
			t.Errorf("new-patient %s: %+v, want carried=%v", id, it, carried)
		}
	}
	// Corrections go by the correction code (intake's corrections fieldset
	// and the $corrects key), not by an answer with a magic linkId.
	if it := np.Item("corrects-receipt"); it != nil {
		t.Errorf("new-patient still asks for the receipt it corrects as an answer: %+v", it)
	}
	sym := builtinForm(t, "symptoms")
	if it := sym.Item("heard-about"); it.Carried || it.Type != TypeOpenChoice {
		t.Errorf("heard-about = %+v", it)
	}
	if it := sym.Item("documents"); !it.Repeats || it.Required || it.Type != TypeAttachment {
		t.Errorf("documents = %+v", it)
	}
}

func TestLoadDir(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile(filepath.Join("examples", "new-patient.json"))
	if err != nil {
		t.Fatal(err)
	}
	other := []byte(`{"resourceType":"Questionnaire","id":"other","url":"http://x/other","title":"Other","item":[{"linkId":"a","type":"string","text":"A"}]}`)
	bad := []byte(`{"resourceType":"Questionnaire","id":"bad","url":"http://x/bad","title":"Bad","item":[{"linkId":"g","type":"group","item":[{"linkId":"q","type":"question","text":"Q"},{"linkId":"r","type":"reference","answerValueSet":"http://x/vs"}]}]}`)
	noURL := []byte(`{"resourceType":"Questionnaire","id":"nourl","item":[{"linkId":"a","type":"string"}]}`)
	bom := append([]byte("\xef\xbb\xbf"), other...)

	tests := []struct {
		name  string
		files map[string][]byte
		want  string // error substring; "" for success
		ids   string
	}{
		{name: "ok", files: map[string][]byte{"b.json": good, "a.json": other, "README.md": []byte("not a form")}, ids: "new-patient,other"},
		{name: "invalid file", files: map[string][]byte{"a.json": good, "broken.json": bad}, want: `broken.json: item "q" (g/q): unsupported type "question" (an STU3 type; R4 has no such type) (and 1 more problem; `},
		{name: "byte-order mark", files: map[string][]byte{"a.json": bom}, ids: "other"},
		{name: "no url without base URL", files: map[string][]byte{"a.json": noURL}, want: `a.json: has no url, and no base URL for forms is configured`},
		{name: "duplicate id", files: map[string][]byte{"a.json": good, "b.json": good}, want: `b.json: id "new-patient" is already used by`},
		{name: "no forms", files: map[string][]byte{"notes.txt": good}, want: "no *.json forms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, err := LoadDir(dir)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("LoadDir error = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, q := range r.List() {
				ids = append(ids, q.ID)
			}
			if got := strings.Join(ids, ","); got != tt.ids {
				t.Errorf("ids = %s, want %s", got, tt.ids)
			}
		})
	}
}

func TestLoadDirMissing(t *testing.T) {
	t.Parallel()
	if _, err := LoadDir(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("LoadDir of a missing directory succeeded")
	}
}

func TestNewRegistry(t *testing.T) {
	t.Parallel()
	a := builtinForm(t, "symptoms")
	b := builtinForm(t, "new-patient")
	r, err := NewRegistry(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if list := r.List(); len(list) != 2 || list[0] != b {
		t.Errorf("List() not sorted")
	}
	if _, err := NewRegistry(a, a); err == nil {
		t.Error("duplicate ids accepted")
	}
}
