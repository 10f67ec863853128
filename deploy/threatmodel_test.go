package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docs/threat-model.md names the tests that hold each line: every one must exist, so a renamed or
// deleted test cannot leave a line standing on nothing.
func TestThreatModelNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("../docs/threat-model.md")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	err = filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, "_test.go") {
			b, err := os.ReadFile(p)
			src.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile("`(Test[A-Za-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(names) < 20 {
		t.Fatalf("threat-model.md names %d tests; it should name the test behind each line", len(names))
	}
	for _, m := range names {
		if !strings.Contains(src.String(), "func "+m[1]+"(") {
			t.Errorf("threat-model.md names %s, which is no test", m[1])
		}
	}
	// promtool test "NAME" (or tests "A", "B"): a test case of the alert rules' unit tests.
	alertTests, err := os.ReadFile("prometheus/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`promtool tests? ((?:"[^"]+"(?:, )?)+)`).FindAllStringSubmatch(string(doc), -1) {
		for _, q := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(m[1], -1) {
			if !strings.Contains(string(alertTests), "  - name: "+q[1]+"\n") {
				t.Errorf("threat-model.md names promtool test %q, which deploy/prometheus/alerts_test.yaml does not have", q[1])
			}
		}
	}
	script, err := os.ReadFile("test/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("`([a-z]+_side|[a-z]+_checks|e2e|restore)` in make deploy-test").FindAllStringSubmatch(string(doc), -1) {
		if !strings.Contains(string(script), "\n"+m[1]+"() {") || !strings.Contains(string(script), "check "+m[1]+"\n") {
			t.Errorf("threat-model.md names %s in make deploy-test, which deploy/test/run.sh does not check", m[1])
		}
	}
}
