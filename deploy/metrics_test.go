package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var metricName = regexp.MustCompile(`\b(?:airlock|intake|transfer|clinical)_[a-z0-9_]+`)

// exportedNames returns every quoted string in the services' non-test Go code: metric names are
// registered as string literals.
func exportedSource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range []string{"../intake", "../transfer", "../clinical", "../shared"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			b.Write(src)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func checkNames(t *testing.T, where string, exprs []string, src string) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if base := strings.TrimSuffix(n, suffix); base != n && strings.Contains(src, `"`+base+`"`) {
					n = base
				}
			}
			seen[n] = true
		}
	}
	if len(seen) == 0 {
		t.Fatalf("%s: no metric names found", where)
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.Contains(src, `"`+n+`"`) {
			t.Errorf("%s uses %s, which no service exports", where, n)
		}
	}
}

// alertRule is one rule of prometheus/alerts.yaml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

// alertRules reads every rule of prometheus/alerts.yaml.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// dashboardExprs reads every panel query of grafana/airlock.json.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("grafana/airlock.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("airlock.json: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

// The alert rules and the dashboard use only metrics the code exports: a renamed metric must
// take its alerts along.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	runbook, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, r := range alertRules(t) {
		exprs = append(exprs, r.Expr)
		// Each alert links to its runbook entry, and the entry names the alert.
		anchor, ok := strings.CutPrefix(r.Annotations["runbook"], "docs/runbook.md#")
		if !ok || !strings.Contains(string(runbook), "`"+r.Alert+"`") {
			t.Errorf("alert %s: runbook annotation %q, or docs/runbook.md does not name it", r.Alert, r.Annotations["runbook"])
			continue
		}
		if !hasHeading(string(runbook), anchor) {
			t.Errorf("alert %s: docs/runbook.md has no heading for #%s", r.Alert, anchor)
		}
	}
	checkNames(t, "alerts.yaml", exprs, exportedSource(t))
}

// hasHeading reports whether markdown has a heading whose GitHub anchor is anchor.
func hasHeading(markdown, anchor string) bool {
	for _, line := range strings.Split(markdown, "\n") {
		h, ok := strings.CutPrefix(line, "## ")
		if !ok {
			continue
		}
		var a strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				a.WriteRune(r)
			case r == ' ':
				a.WriteRune('-')
			}
		}
		if a.String() == anchor {
			return true
		}
	}
	return false
}

func TestDashboardUsesExportedMetrics(t *testing.T) {
	exprs := dashboardExprs(t)
	checkNames(t, "grafana/airlock.json", exprs, exportedSource(t))
}

// Whoever is paged by an alert finds what it watches on the dashboard: every metric an alert rule
// uses is in some panel's query.
func TestEveryAlertedMetricIsOnTheDashboard(t *testing.T) {
	onDashboard := map[string]bool{}
	for _, expr := range dashboardExprs(t) {
		for _, n := range metricName.FindAllString(expr, -1) {
			onDashboard[n] = true
		}
		if strings.Contains(expr, "up{") {
			onDashboard["up"] = true
		}
	}
	for _, r := range alertRules(t) {
		names := metricName.FindAllString(r.Expr, -1)
		if strings.HasPrefix(strings.TrimSpace(r.Expr), "up{") {
			names = append(names, "up")
		}
		for _, n := range names {
			if !onDashboard[n] {
				t.Errorf("alert %s watches %s, which no panel of grafana/airlock.json shows", r.Alert, n)
			}
		}
	}
}
