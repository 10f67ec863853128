package forms_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/forms/formstest"
)

const corpusDir = "testdata/corpus"

func loadCorpus(t *testing.T) *forms.Registry {
	t.Helper()
	reg, err := forms.LoadDirWith(corpusDir, forms.LoadOptions{BaseURL: formstest.CorpusBaseURL})
	if err != nil {
		t.Fatalf("corpus does not load: %v", err)
	}
	return reg
}

// TestCorpus takes every public Questionnaire in testdata/corpus (see
// SOURCE.md) through load, a complete answer set, the FHIR round trip and
// transfer's calculation, and checks the QuestionnaireResponse strictly
// against the form.
func TestCorpus(t *testing.T) {
	t.Parallel()
	reg := loadCorpus(t)
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.json"))
	if len(reg.List()) != len(files) || len(files) < 25 {
		t.Fatalf("%d forms loaded from %d files; the corpus needs at least 25", len(reg.List()), len(files))
	}
	for _, q := range reg.List() {
		t.Run(q.ID, func(t *testing.T) {
			sample, err := formstest.Sample(q)
			if err != nil {
				t.Fatal(err)
			}
			answers, errs := q.Validate(formstest.RawJSON(sample))
			if len(errs) > 0 {
				t.Fatalf("complete answers refused: %v", errs)
			}
			// The FHIR way in: the response the form nests, flattened and
			// validated again, gives the same answers.
			items := q.ResponseItems(answers)
			if problems := q.CheckResponse(items); len(problems) > 0 {
				t.Fatalf("response does not fit the form: %v", problems)
			}
			raw, err := q.AnswersFromResponseItems(items)
			if err != nil {
				t.Fatal(err)
			}
			again, errs := q.Validate(raw)
			if len(errs) > 0 {
				t.Fatalf("FHIR round trip refused: %v", errs)
			}
			a, _ := json.Marshal(answers)
			b, _ := json.Marshal(again)
			if string(a) != string(b) {
				t.Fatalf("FHIR round trip changed the answers:\n%s\n%s", a, b)
			}
			calculated, err := q.Calculate(again)
			if err != nil {
				t.Fatalf("Calculate: %v", err)
			}
			if problems := q.CheckResponse(q.ResponseItems(calculated)); len(problems) > 0 {
				t.Fatalf("calculated response does not fit the form: %v", problems)
			}
			// Each repeating group answered twice appears twice, each
			// occurrence holding its own instance's answers.
			for _, it := range q.Members() {
				if it.RepeatingGroup() && len(answers[it.LinkID]) > 0 {
					n := 0
					for _, ri := range q.ResponseItems(answers) {
						if ri.LinkID == it.LinkID {
							n++
						}
					}
					if n != formstest.Instances {
						t.Errorf("repeating group %q: %d response items, want %d", it.LinkID, n, formstest.Instances)
					}
				}
			}
			if !q.NamedBy(q.Canonical(q.FormVersion())) {
				t.Errorf("the form does not accept its own canonical %s", q.Canonical(q.FormVersion()))
			}
		})
	}
}

// TestCorpusFormsCheck runs `intake forms check` on the corpus (exit 0) and
// on a directory of broken forms (exit 1, every problem listed).
func TestCorpusFormsCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the intake binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "intake")
	if out, err := exec.Command("go", "build", "-o", bin, "../../intake/cmd/intake").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "forms", "check", corpusDir)
	cmd.Env = append(os.Environ(), "INTAKE_FORMS_BASE_URL="+formstest.CorpusBaseURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("forms check on the corpus: %v\n%s", err, out)
	}
	bad := t.TempDir()
	for name, body := range map[string]string{
		"a.json": `{"resourceType":"Questionnaire","id":"a","url":"http://x/a","item":[{"linkId":"t","type":"question"},{"linkId":"r","type":"reference","answerValueSet":"http://x/vs"}]}`,
		"b.json": `{"resourceType":"Questionnaire","id":"b","url":"http://x/b","item":[{"linkId":"c","type":"choice","answerValueSet":"http://example.org/vs"}]}`,
	} {
		if err := os.WriteFile(filepath.Join(bad, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd = exec.Command(bin, "forms", "check", bad)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("forms check on broken forms: %v, want exit 1", err)
	}
	for _, want := range []string{`a.json: item "t" (t): unsupported type "question"`, `a.json: item "r" (r): answerValueSet on a reference item`, `b.json: item "c" (c): answerValueSet http://example.org/vs is unknown`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
