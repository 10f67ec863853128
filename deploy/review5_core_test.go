package deploy

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestReview5ComposeForbidsCoreDumps (review5, item 5): 523a2fb sets
// LimitCORE=0 in the systemd units so a crash writes no core dump of
// answers or keys, and docs/threat-model.md says "the units forbid core
// dumps"; compose.yaml (the same topology) should say so too
// (ulimits: core: 0) for the services that hold answers or keys.
func TestReview5ComposeForbidsCoreDumps(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Ulimits map[string]any `yaml:"ulimits"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"intake", "transfer", "clinical"} {
		core, ok := c.Services[name].Ulimits["core"]
		if !ok || (core != 0 && core != "0") {
			if m, isMap := core.(map[string]any); !isMap || m["soft"] != 0 || m["hard"] != 0 {
				t.Errorf("compose service %s: ulimits.core = %v, want 0 (no core dumps, as the systemd units' LimitCORE=0)", name, core)
			}
		}
	}
}
